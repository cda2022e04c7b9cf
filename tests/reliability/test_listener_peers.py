"""The ZAM listener, built as the engine builds it from the site's PFI block (`PfiEndpoint.peer`,
`ListenerSettings.for_zam`), hears only the PFI, over real sockets: another sender is refused AR and audited,
the PFI's name from another address too, and when the link asks for client certificates, the certificate
names the peer: a claimed MSH-3 under another certificate is refused."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from sqlmodel import Session, select

from blocks.pfi import PfiEndpoint
from ris.channels.hl7.listener import ZamListener
from ris.hl7v2 import mllp
from ris.site.listeners import ListenerSettings
from ris.store import db
from ris.store.models import AuditEntry, Channel, Delivery, DeliveryStatus
from sandbox.pki import Authority, write_cert
from tests import factories
from tests.hl7.conftest import hl7_row, plan
from tests.reliability.pam_messages import err, msa
from tests.reliability.test_receipt_rules import zam
from tests.reliability.tls_link import tls_exchange, write_issued

PFI = PfiEndpoint(host="127.0.0.1", port=2575, application="PFI", facility="PFI-DEMO")


@pytest.fixture
def sent(session: Session) -> tuple[str, int]:
    """A version's message acknowledged by the PFI and its DMP copy sent: (MSH-10, copy id)."""
    rows = plan(session, factories.validated_report(session))
    for row in rows:
        row.status, row.attempts = DeliveryStatus.sent, 1
        session.add(row)
    session.commit()
    return hl7_row(rows).idempotency_key, next(r.id for r in rows if r.channel is Channel.dmp)


def dmp_status(db_url: str, copy_id: int) -> DeliveryStatus:
    with Session(db.get_engine(db_url)) as s:
        return s.get(Delivery, copy_id).status


def refusals(db_url: str) -> list[str]:
    with Session(db.get_engine(db_url)) as s:
        return [
            e.detail["reason"] for e in s.exec(select(AuditEntry).where(AuditEntry.action == "hl7.refused"))
        ]


async def test_only_the_pfi_block_s_application_over_its_address_is_heard(db_url: str, sent) -> None:
    key, copy = sent
    options = ListenerSettings().for_zam(PFI.peer())
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, **options) as listener:
        other = await mllp.exchange("127.0.0.1", listener.port, zam("Z01", key, sender="EAI-X"), timeout=10)
        assert msa(other)[1] == "AR" and "sender EAI-X\\S\\PFI-DEMO is not allowed" in err(other)
        assert dmp_status(db_url, copy) is DeliveryStatus.sent
    elsewhere = PFI.model_copy(update={"host": "192.0.2.10"}).peer()  # the PFI is another machine
    options = ListenerSettings().for_zam(elsewhere)
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, **options) as listener:
        moved = await mllp.exchange("127.0.0.1", listener.port, zam("Z01", key), timeout=10)
        assert msa(moved)[1] == "AR" and "peer address is not allowed" in err(moved)
        assert dmp_status(db_url, copy) is DeliveryStatus.sent
    options = ListenerSettings().for_zam(PFI.peer())
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, **options) as listener:
        genuine = await mllp.exchange("127.0.0.1", listener.port, zam("Z01", key), timeout=10)
    assert msa(genuine)[1] == "AA" and dmp_status(db_url, copy) is DeliveryStatus.acknowledged
    assert refusals(db_url) == [
        "sender EAI-X^PFI-DEMO is not allowed on this listener",
        "peer address is not allowed on this listener",
    ]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("zam-pki")
    ca = Authority.create("Test CA", "RIS tests")
    files = {"ca": folder / "ca.pem"}
    write_cert(files["ca"], ca.cert)
    issued = {
        "server": ca.server(("127.0.0.1",)),
        "pfi": ca.client("pfi.chu-x.fr"),
        "other": ca.client("eai"),
    }
    return write_issued(folder, issued, files)


def client(pki: dict[str, Path], name: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki["ca"])
    context.load_cert_chain(pki[name], pki[f"{name}_key"])
    return context


async def test_with_client_certificates_a_claimed_msh3_under_another_certificate_is_refused(
    db_url: str, sent, pki: dict[str, Path]
) -> None:
    key, copy = sent
    tls = {"cert": str(pki["server"]), "key": str(pki["server_key"]), "client_ca": str(pki["ca"])}
    settings = ListenerSettings.model_validate({"zam": {"tls": tls}})
    # The PFI's certificate, not its address: the PFI block names another host, which no longer matters.
    pfi = PFI.model_copy(update={"host": "192.0.2.10", "certificate_cn": "pfi.chu-x.fr"})
    async with ZamListener(
        me=factories.SITE_PARTY, database_url=db_url, **settings.for_zam(pfi.peer())
    ) as listener:
        forged = await tls_exchange(listener.port, zam("Z01", key), client(pki, "other"))
        assert msa(forged)[1] == "AR" and "client certificate is not allowed" in err(forged)
        assert dmp_status(db_url, copy) is DeliveryStatus.sent
        genuine = await tls_exchange(listener.port, zam("Z01", key), client(pki, "pfi"))
    assert msa(genuine)[1] == "AA" and dmp_status(db_url, copy) is DeliveryStatus.acknowledged
