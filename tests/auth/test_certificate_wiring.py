"""The RPPS-Rang pool wired into what leaves (RIS.AUTH.01–02, RIS.MSS.24), over the real sandboxes: the
MSSanté operator and the DMP (mutual TLS) see the validating radiologist's certificate in the handshake (and
the DMP under the VIHF signature), the INSi
teleservice sees the acting radiologist's; a missing or expired one fails the delivery (or refuses the call)
with its reason and nothing leaves; without a pool the operator block's own certificate goes, as before."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ssl
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blocks import DEFAULT_NAME
from blocks.certificates import RppsRangCertificates
from blocks.insi import InsiEndpoint
from blocks.site import SiteSettingsBlock
from cli.main import app
from ris.auth.certificates import CertificateUnavailable
from ris.identity.insi_client import TraitsQuery
from ris.store.db import session_scope
from ris.store.models import Channel, Delivery, DeliveryStatus
from sandbox.dmp import DmpSandbox
from sandbox.insi import InsiSandbox, TlsFiles
from sandbox.mssante import MssSandbox
from tasks.dmp import send_dmp
from tasks.mssante import send_mss
from tests import factories
from tests.auth.pki import OrgAuthority, certificate, org_authority, sha256
from tests.conftest import add_user
from tests.dmp.conftest import direct_settings as dmp_direct_settings
from tests.dmp.conftest import dmp_rows, save_dmp_endpoint
from tests.dmp.conftest import with_documents as dmp_with_documents
from tests.mssante.conftest import direct_settings, planned, save_operator, with_documents

LEFEVRE, NGUYEN = factories.RADIOLOGIST_RPPS, "10001234568"
ADRTROIS = TraitsQuery("ADRTROIS", ("DOMINIQUE",), "F", dt.date(1997, 2, 26))


class ScmOperator(MssSandbox):
    """The sandbox operator, also trusting the ORG authority that signed the SCM's RPPS-Rang certificates."""

    def __init__(self, authority: Path, **kwargs) -> None:
        super().__init__(**kwargs)
        self.authority = authority

    def _tls_context(self) -> ssl.SSLContext:
        context = super()._tls_context()
        context.load_verify_locations(cafile=str(self.authority))
        return context


@pytest.fixture
def ca(tmp_path: Path) -> OrgAuthority:
    return org_authority(tmp_path)


async def _save_pool(entries: list[dict]) -> None:
    await RppsRangCertificates(certificates=entries).asave(DEFAULT_NAME, overwrite=True)


@pytest.fixture
async def pool_block(prefect_server):
    """Saves the site's pool (a list of entries); deleted afterwards: the other tests share the server."""
    yield _save_pool
    with contextlib.suppress(ValueError):
        await RppsRangCertificates.adelete(DEFAULT_NAME)


def _entry(rpps: str, files: tuple[Path, Path], passphrase: str | None = None) -> dict:
    return {"rpps": rpps, "cert_path": files[0], "key_path": files[1], "passphrase": passphrase}


@pytest.fixture
async def scm_site(prefect_server, db_url, tmp_path: Path, ca: OrgAuthority):
    """A site routing MSSanté direct through the sandbox operator, whose block holds the structure's own
    certificate. Yields the operator."""
    with ScmOperator(ca.pem, folder=tmp_path / "mss-received", tls_dir=tmp_path / "mss-tls") as operator:
        await SiteSettingsBlock(settings=direct_settings()).asave(DEFAULT_NAME, overwrite=True)
        await save_operator(operator)
        yield operator


def _mss_deliveries() -> list[int]:
    """A report validated by Dr Lefèvre, documents built: ids of its direct MSSanté deliveries."""
    settings = direct_settings()
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=0)
        with_documents(session, bundle, settings)
        rows = planned(session, bundle, settings)
        return [r.id for r in rows if r.channel in (Channel.mss_ps, Channel.mss_patient)]


def _row(delivery_id: int) -> Delivery:
    with session_scope() as session:
        return session.get(Delivery, delivery_id)


async def test_the_operator_sees_the_validating_radiologists_certificate(scm_site, pool_block, ca, tmp_path):
    lefevre = certificate(ca, tmp_path, "lefevre", cn="DR LEFEVRE RPPS-RANG", passphrase="s3cret")
    nguyen = certificate(ca, tmp_path, "nguyen", cn="DR NGUYEN RPPS-RANG")
    await pool_block([_entry(NGUYEN, nguyen), _entry(LEFEVRE, lefevre, "s3cret")])
    ids = _mss_deliveries()
    assert [await send_mss(i) for i in ids] == ["sent", "sent"]
    assert [e.client_subject.split("commonName=")[1] for e in scm_site.envelopes] == [
        "DR LEFEVRE RPPS-RANG",
        "DR LEFEVRE RPPS-RANG",
    ]


async def test_without_a_usable_certificate_the_delivery_fails_and_nothing_leaves(
    scm_site, pool_block, ca, tmp_path
):
    nguyen = certificate(ca, tmp_path, "nguyen", cn="DR NGUYEN RPPS-RANG")
    await pool_block([_entry(NGUYEN, nguyen)])
    [missing, *_] = _mss_deliveries()
    assert await send_mss(missing) == "failed"
    row = _row(missing)
    assert row.status is DeliveryStatus.failed
    assert row.reason.startswith(
        "certificate: no RPPS-Rang certificate for the acting radiologist (RPPS 10001234567)"
    )
    expired = certificate(ca, tmp_path, "lefevre-old", days=(-400, -2))
    await pool_block([_entry(LEFEVRE, expired)])
    [late, *_] = _mss_deliveries()
    assert await send_mss(late) == "failed"
    assert _row(late).reason.startswith("certificate: RPPS-Rang 10001234567: the certificate expired on")
    assert scm_site.received == []  # nothing reached the operator


async def test_without_a_pool_the_operator_blocks_own_certificate_goes(scm_site, pool_block):
    [delivery, *_] = _mss_deliveries()
    assert await send_mss(delivery) == "sent"
    assert "BAL APPLICATIVE SANDBOX" in scm_site.envelopes[0].client_subject


@pytest.fixture
async def insi_tls(tmp_path: Path, ca: OrgAuthority):
    server = certificate(ca, tmp_path, "insi-server", cn="insi.sandbox", server_ip="127.0.0.1")
    async with InsiSandbox(tls=TlsFiles(*server, ca.pem)) as sandbox:
        yield sandbox


async def test_insi_is_called_with_the_acting_radiologists_certificate(
    insi_tls, pool_block, ca, tmp_path, db_url, monkeypatch
):
    # INSi accepts only the CN INSI-AUTO / INSI-MANU: the radiologists' certificates differ by their key.
    lefevre = certificate(ca, tmp_path, "lefevre", cn="INSI-AUTO", passphrase="s3cret")
    nguyen = certificate(ca, tmp_path, "nguyen", cn="INSI-AUTO")
    own = certificate(ca, tmp_path, "structure", cn="INSI-MANU")
    endpoint = InsiEndpoint(
        url=insi_tls.url, idam="RIS-IDAM-TEST", cert_path=own[0], key_path=own[1], ca_path=ca.pem
    )
    await pool_block([_entry(LEFEVRE, lefevre, "s3cret"), _entry(NGUYEN, nguyen)])
    await endpoint.asave(DEFAULT_NAME, overwrite=True)  # for `ris identity insi-lookup`
    for who in (NGUYEN, LEFEVRE):
        async with await endpoint.client_for(who) as client:
            call = await client.search_traits(ADRTROIS)
        assert call.error is None and call.result.code == "00"
    assert [r["client_sha256"] for r in insi_tls.received] == [sha256(nguyen[0]), sha256(lefevre[0])]

    with pytest.raises(CertificateUnavailable, match=r"\(RPPS 10009876541\) in the pool"):
        await endpoint.client_for("10009876541")
    traits = ["--name", "ADRTROIS", "--given", "DOMINIQUE", "--sex", "F", "--birth-date", "1997-02-26"]
    monkeypatch.setenv("RIS_DECLARED_ACTORS", "allowed")  # a site without Pro Santé Connect
    add_user(db_url, "10009876541", "radiologist")  # may call INSi; no certificate in the pool
    lookup = ["identity", "insi-lookup", "--by", "10009876541", *traits]
    result = await asyncio.to_thread(CliRunner().invoke, app, lookup)  # the CLI runs its own loop
    assert result.exit_code == 1
    assert "no RPPS-Rang certificate for the acting radiologist (RPPS 10009876541)" in result.stderr
    assert len(insi_tls.received) == 2  # the refused calls never reached INSi
    await InsiEndpoint.adelete(DEFAULT_NAME)

    await RppsRangCertificates.adelete(DEFAULT_NAME)  # not an SCM: the endpoint's own certificate
    async with await endpoint.client_for(None) as client:
        await client.search_traits(ADRTROIS)
    assert insi_tls.received[-1]["client_sha256"] == sha256(own[0])


@pytest.fixture
async def scm_dmp(prefect_server, db_url, tmp_path: Path, ca: OrgAuthority):
    """A site feeding the DMP directly; the DMP trusts the ORG authority of the radiologists' certificates
    and its endpoint block holds the structure's own certificate."""
    dmp = DmpSandbox(folder=tmp_path / "dmp-received", tls_dir=tmp_path / "dmp-tls", trusted_cas=(ca.pem,))
    with dmp:
        await SiteSettingsBlock(settings=dmp_direct_settings()).asave(DEFAULT_NAME, overwrite=True)
        await save_dmp_endpoint(dmp)
        yield dmp


def _dmp_feed() -> int:
    """A report validated by Dr Lefèvre, documents built: the id of its direct DMP feed."""
    settings = dmp_direct_settings()
    with session_scope() as session:
        bundle = factories.validated_report(session, copies=0)
        dmp_with_documents(session, bundle, settings)
        [feed] = [r.id for r in dmp_rows(session, bundle, settings) if r.status is DeliveryStatus.pending]
        return feed


async def test_the_dmp_is_fed_with_the_validating_radiologists_certificate(scm_dmp, pool_block, ca, tmp_path):
    """RIS.AUTH.01: TLS client certificate and VIHF signature are the validating radiologist's (the DMP
    checks the assertion against the certificate of the TLS session); none usable: nothing leaves."""
    lefevre = certificate(ca, tmp_path, "lefevre", cn="DR LEFEVRE RPPS-RANG", passphrase="s3cret")
    await pool_block(
        [_entry(NGUYEN, certificate(ca, tmp_path, "nguyen")), _entry(LEFEVRE, lefevre, "s3cret")]
    )
    assert await send_dmp(_dmp_feed()) == "acknowledged"
    [received] = scm_dmp.received
    assert received.outcome == "Success" and "DR LEFEVRE RPPS-RANG" in received.client_subject

    await pool_block([_entry(NGUYEN, certificate(ca, tmp_path, "nguyen"))])
    missing = _dmp_feed()
    assert await send_dmp(missing) == "failed"
    assert _row(missing).reason.startswith("certificate: no RPPS-Rang certificate for the acting radiologist")
    assert len(scm_dmp.received) == 1  # the refused feed never reached the DMP
