"""The MSSanté combination matrix (TRANS IG `regles-gestion-mssante.md`, hl7v2-transport.md §6).

« Le tableau présente une liste exhaustive des combinaisons possibles des OBX pour l'échange MSSANTE. Les
cas non représentés génèrent un message d'erreur. » It only concerns messages with an MSSanté destination.
"""

from __future__ import annotations

from collections.abc import Sequence

from ris.channels.hl7.vocabulary import METADATA
from ris.hl7v2.datatypes import yes_no
from ris.lifecycle.routing import DistributionFlags

# One allowed-values string per metadata flag, in METADATA order.
ROWS: tuple[tuple[str, ...], ...] = (
    ("N", "N", "N", "NY", "NY", "NY", "Y", "Y"),  # 1: mail to PS / organisation / BAL and patient
    ("N", "Y", "N", "NY", "NY", "NY", "Y", "N"),  # 2: mail to PS / organisation / BAL applicative
    ("NY", "N", "NY", "N", "NY", "N", "N", "Y"),  # 3: mail to the patient
)


def flag_values(flags: DistributionFlags) -> tuple[str, ...]:
    """The eight Y/N values in the order of the metadata OBX."""
    return tuple(
        yes_no(v)
        for v in (
            flags.mask_ps,
            flags.invisible_patient,
            flags.invisible_legal_reps,
            flags.secret_connection,
            flags.modif_conf_code,
            flags.dest_dmp,
            flags.dest_mss_ps,
            flags.dest_mss_patient,
        )
    )


def _fits(values: tuple[str, ...], row: tuple[str, ...]) -> bool:
    return all(v in allowed for v, allowed in zip(values, row, strict=True))


def matrix_row(values: tuple[str, ...]) -> int | None:
    return next((number for number, row in enumerate(ROWS, start=1) if _fits(values, row)), None)


def agreed_row(combination: str) -> tuple[str, ...]:
    """A site's agreed combination (`NN****YN`: Y, N or * per flag) in the form of ROWS."""
    return tuple("NY" if c == "*" else c for c in combination)


def matrix_violation(flags: DistributionFlags, agreed: Sequence[str] = ()) -> str | None:
    """Why the flags are outside the matrix and the combinations agreed with the PFI, or None (also None
    when no MSSanté destination is Y)."""
    if not (flags.dest_mss_ps or flags.dest_mss_patient):
        return None
    values = flag_values(flags)
    if matrix_row(values) is not None or any(_fits(values, agreed_row(c)) for c in agreed):
        return None
    shown = " ".join(f"{code}={v}" for (code, _), v in zip(METADATA, values, strict=True))
    return (
        f"metadata OBX {shown}: combination outside the MSSanté matrix (TRANS IG regles-gestion-mssante) "
        "and the combinations agreed with the PFI"
    )
