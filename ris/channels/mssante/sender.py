"""Which mailbox a report mail leaves from, and its label (RIS.MSS.13, RIS.MSS.23, RIS.MSS.24).

A structure with an ORG certificate (FINESS or SIRET) sends from its BAL applicative, labelled with its
functional entity. An SCM whose radiologists each hold an RPPS-Rang certificate may send from the
validating radiologist's personal mailbox instead (site setting `mssante.sender_mailbox`): `From` and the
envelope sender are then that mailbox, labelled `<Titre>_<Prénom>_<NOM>_<Entité fonctionnelle>` as the
MSSanté client reference asks (only the name and given name are mandatory).

The personal mailbox is, in this order: the `mailbox` of the radiologist's entry in the site's RPPS-Rang
certificate pool; the one personal (PER) mailbox the imported Annuaire Santé lists for their RPPS; the
MSSanté address of the radiologist's own record in the RIS. None of them, or several in the directory,
and the mail is not sent: one line says what to set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, select

from ris.site.settings import MssanteSending
from ris.store.models import DirectoryMailbox, DirectoryPerson
from ris.store.reports import correspondent_by_rpps

PERSONAL = "PER"  # Type de BAL of the directory's MSSanté extraction


class SenderUnavailable(ValueError):
    """No personal mailbox can be chosen for the validating radiologist (names the RPPS and what to set)."""


@dataclass(frozen=True)
class SenderBox:
    address: str
    label: str
    personal: bool


def application_box(mss: MssanteSending) -> SenderBox:
    return SenderBox(mss.application_mailbox, mss.sender_label, personal=False)


def personal_label(*, title: str | None, given: str | None, family: str, unit: str = "") -> str:
    """RIS.MSS.13 `Intitulé_BAL` of a personal mailbox: its parts joined by `_` (inside a part, spaces
    become `-`), the family name in capitals, absent parts left out."""
    parts = [title, given, family.upper(), unit]
    return "_".join("-".join(part.split()) for part in parts if part and part.strip())


def _title(civility: str | None) -> str | None:
    """The directory's civility code (DR, PR) as a title (Dr, Pr)."""
    return civility.strip().capitalize() if civility and civility.strip() else None


def _mailbox(session: Session, rpps: str, mailboxes: Mapping[str, str]) -> str:
    if address := mailboxes.get(rpps):
        return address
    listed = session.exec(
        select(DirectoryMailbox.address).where(
            DirectoryMailbox.rpps == rpps, DirectoryMailbox.kind == PERSONAL
        )
    ).all()
    if len(listed) > 1:
        raise SenderUnavailable(
            f"RPPS {rpps} has {len(listed)} personal MSSanté mailboxes in the directory: set `mailbox` in "
            "their entry of the RIS RPPS-Rang Certificates block"
        )
    if listed:
        return listed[0]
    own = correspondent_by_rpps(session, rpps)
    if own is not None and own.mss_address:
        return own.mss_address
    raise SenderUnavailable(
        f"no personal MSSanté mailbox for RPPS {rpps} (RIS.MSS.24): set `mailbox` in their entry of the RIS "
        "RPPS-Rang Certificates block, or import the directory (`ris directory import`)"
    )


def radiologist_box(
    session: Session, rpps: str, mss: MssanteSending, mailboxes: Mapping[str, str]
) -> SenderBox:
    """The validating radiologist's personal mailbox and its label; `mailboxes`: RPPS -> mailbox of the
    certificate pool."""
    address = _mailbox(session, rpps, mailboxes)
    person = session.exec(select(DirectoryPerson).where(DirectoryPerson.rpps == rpps)).first()
    if person is not None:
        title, given, family = _title(person.civility), person.given, person.family
    elif (own := correspondent_by_rpps(session, rpps)) is not None:
        title, given, family = own.title, own.given, own.family
    else:
        raise SenderUnavailable(
            f"RPPS {rpps}: neither the directory nor the RIS knows the radiologist's name, which labels "
            "their mailbox (RIS.MSS.13)"
        )
    label = personal_label(title=title, given=given, family=family, unit=mss.functional_unit)
    return SenderBox(address, label, personal=True)


def sender_for(
    session: Session, validator_rpps: str, mss: MssanteSending, mailboxes: Mapping[str, str]
) -> SenderBox:
    """The mailbox the site's setting chooses for a version validated by `validator_rpps`."""
    if mss.sender_mailbox == "radiologist":
        return radiologist_box(session, validator_rpps, mss, mailboxes)
    return application_box(mss)
