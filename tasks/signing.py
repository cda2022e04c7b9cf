"""The certificate a direct delivery leaves with (RIS.AUTH.01 for the DMP, RIS.MSS.24 for MSSanté): on an
SCM site, which keeps a pool of RPPS-Rang certificates, the validating radiologist's
(`ris.auth.certificates`); when none is usable the delivery fails with the reason and nothing leaves. Logs
carry delivery ids only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ris.auth.certificates import CertificateUnavailable, RppsRangCertificate, delivery_certificate
from ris.store import deliveries
from ris.store.db import unit_of_work
from ris.store.models import DeliveryStatus
from tasks.run_context import run_logger


@dataclass(frozen=True)
class CertificateChoice:
    """The choice for one delivery: a certificate, none (no pool: the endpoint block's own goes), or the
    delivery's status once refused for want of a usable one."""

    certificate: RppsRangCertificate | None = None
    refused: DeliveryStatus | None = None


async def choose_certificate(
    pool: Sequence[RppsRangCertificate] | None, delivery_id: int, what: str
) -> CertificateChoice:
    """Choose the certificate `what` (the delivery named by its id) leaves with, from the site's pool
    (`blocks.certificates.load_certificate_pool`)."""
    if not pool:
        return CertificateChoice()
    try:
        return CertificateChoice(certificate=await unit_of_work(delivery_certificate, pool, delivery_id))
    except CertificateUnavailable as exc:
        run_logger(__name__).warning("%s: no usable RPPS-Rang certificate, nothing sent", what)
        status = await unit_of_work(deliveries.record_refused, delivery_id, f"certificate: {exc}")
        return CertificateChoice(refused=status)
