"""The listeners' limits, charset, TLS and allowlists are site settings (`SiteSettings.listeners`), read by
`ris up` and `ris identity listen`: checked with the setting's name, applied over real sockets. What an
allowlist leaves empty is the configured PFI's: its application^facility on the ZAM listener, its address,
or its certificate when the listener asks for one; this machine only when no PFI is configured."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select
from typer.testing import CliRunner

from blocks.pfi import PfiEndpoint
from cli.main import app
from ris.channels.hl7.listener import ZamListener
from ris.hl7v2 import mllp
from ris.hl7v2.inbound import Allowlist
from ris.site.listeners import ListenerSettings, ListenerSettingsError
from ris.site.settings import SiteSettings
from ris.store import db
from ris.store.models import Patient
from sandbox.pki import Authority, write_cert
from tests import factories
from tests.cli_process import RIS, isolated_env, run_ris
from tests.conftest import ROOT
from tests.reliability.pam_messages import err, msa, pam
from tests.reliability.test_forged_zam import z01
from tests.reliability.tls_link import tls_exchange, write_issued

PFI_BLOCK = PfiEndpoint(host="127.0.0.1", port=2575, application="PFI", facility="PFI-DEMO")


def test_the_defaults_are_the_mllp_defaults_and_only_the_configured_pfi_may_send() -> None:
    options = ListenerSettings().for_pam(None)
    loopback = Allowlist(peers=("127.0.0.0/8", "::1/128"))
    assert options == {"limits": mllp.Limits(), "tls": None, "allowlist": loopback, "charset": "utf-8"}
    pfi = Allowlist(frozenset({"PFI^PFI-DEMO"}), ("127.0.0.1/32",))
    assert ListenerSettings().for_zam(PFI_BLOCK.peer())["allowlist"] == pfi
    assert ListenerSettings().for_pam(PFI_BLOCK.peer())["allowlist"] == Allowlist(peers=("127.0.0.1/32",))
    explicit = ListenerSettings.model_validate(
        {"zam": {"allow": {"senders": ["EAI"], "peers": ["10.1.2.0/24"]}}}
    )
    assert explicit.for_zam(PFI_BLOCK.peer())["allowlist"] == Allowlist(frozenset({"EAI"}), ("10.1.2.0/24",))


def test_a_zam_listener_without_a_configured_pfi_does_not_start() -> None:
    unnamed = PfiEndpoint(host="127.0.0.1", port=2575)
    for peer in (None, unnamed.peer()):
        with pytest.raises(
            ListenerSettingsError, match=r"^listeners.zam.allow.senders: empty, and .* no sender: set the PFI"
        ):
            ListenerSettings().for_zam(peer)


def test_with_client_certificates_the_certificate_not_the_address_names_the_peer(tmp_path: Path) -> None:
    tls = {"cert": str(tmp_path / "c.pem"), "key": str(tmp_path / "k.pem"), "client_ca": str(tmp_path / "ca")}
    settings = ListenerSettings.model_validate({"zam": {"tls": tls}})
    with pytest.raises(
        ListenerSettingsError, match=r"^listeners.zam.allow.certificate_cns: empty, and the PFI"
    ):
        settings.zam.allowlist("listeners.zam", PFI_BLOCK.peer(), senders_required=True)
    named = PFI_BLOCK.model_copy(update={"certificate_cn": "pfi.chu-x.fr"})
    allowed = settings.zam.allowlist("listeners.zam", named.peer(), senders_required=True)
    assert allowed == Allowlist(frozenset({"PFI^PFI-DEMO"}), (), frozenset({"pfi.chu-x.fr"}))


@pytest.mark.parametrize(
    ("pam", "place", "message"),
    [
        ({"allow": {"peers": ["10.0.0.300"]}}, "listeners.pam.allow.peers", "not an IP address or a CIDR"),
        ({"allow": {"senders": [" "]}}, "listeners.pam.allow.senders", "an empty name allows nobody"),
        ({"max_conections": 3}, "listeners.pam.max_conections", "Extra inputs are not permitted"),
        ({"max_connections": 0}, "listeners.pam.max_connections", "greater than or equal to 1"),
        ({"charset": "EBCDIC"}, "listeners.pam.charset", "Input should be 'UNICODE UTF-8'"),
    ],
)
def test_a_bad_listener_setting_is_refused_with_its_name(pam: dict, place: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SiteSettings.model_validate({"listeners": {"pam": pam}})
    [error] = caught.value.errors()
    assert ".".join(str(p) for p in error["loc"] if not isinstance(p, int)) == place
    assert message in error["msg"]


def test_a_missing_certificate_is_named_when_the_listener_starts(tmp_path: Path) -> None:
    settings = ListenerSettings.model_validate(
        {"zam": {"tls": {"cert": str(tmp_path / "absent.pem"), "key": str(tmp_path / "k.pem")}}}
    )
    assert settings.for_pam(None)["tls"] is None  # saved from anywhere, checked only where it is used
    with pytest.raises(
        ListenerSettingsError, match=r"^listeners.zam.tls.cert: .*absent.pem is not a readable"
    ):
        settings.for_zam(PFI_BLOCK.peer())


async def test_the_zam_listener_applies_its_site_settings(db_url: str) -> None:
    site = SiteSettings.model_validate(
        {"listeners": {"zam": {"allow": {"senders": ["PFI"]}, "max_message_mb": 0.001}}}
    )
    options = site.listeners.for_zam(PFI_BLOCK.peer())
    async with ZamListener(me=factories.SITE_PARTY, database_url=db_url, **options) as zam:
        forged = await mllp.exchange("127.0.0.1", zam.port, z01("ATTACKER", "F1", "x"), timeout=10)
        big = await mllp.exchange("127.0.0.1", zam.port, z01("PFI", "B1", "x" * 2000), timeout=10)
    assert msa(forged)[1] == "AR" and "not allowed on this listener" in err(forged)
    assert msa(big)[1] == "AR" and "larger than 1048 bytes" in err(big)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["--allow-peer", "nope"], "error: --allow-peer: 'nope' is not an IP address or a CIDR network"),
        (["--tls-cert", "c.pem"], "error: --tls-cert and --tls-key: give both"),
    ],
)
def test_ris_identity_listen_refuses_bad_options_in_one_line(db_url: str, args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, ["identity", "listen", "--port", "0", *args])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0].startswith(line) and "Traceback" not in result.output


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("listener-pki")
    ca = Authority.create("Test CA", "RIS tests")
    files = {"ca": folder / "ca.pem"}
    write_cert(files["ca"], ca.cert)
    issued = {"server": ca.server(("127.0.0.1",)), "client": ca.client("GAM-CHU-X")}
    return write_issued(folder, issued, files)


@pytest.mark.slow  # the listener as a process
def test_ris_identity_listen_serves_tls_with_client_certificates_and_its_allowlist(
    tmp_path: Path, pki: dict[str, Path]
) -> None:
    env = isolated_env(tmp_path)
    assert run_ris(env, "db", "upgrade").returncode == 0
    command = [*RIS, "identity", "listen", "--port", "0", "--own-domain", "GAM", "--allow-sender", "GAM"]
    command += ["--allow-certificate-cn", "GAM-CHU-X"]
    command += ["--tls-cert", str(pki["server"]), "--tls-key", str(pki["server_key"])]
    command += ["--tls-client-ca", str(pki["ca"])]
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("PAM listener on"), proc.stderr.read() if proc.poll() is not None else line
        port = int(line.rsplit(":", 1)[1])
        context = ssl.create_default_context(cafile=pki["ca"])
        anonymous = ssl.create_default_context(cafile=pki["ca"])
        context.load_cert_chain(pki["client"], pki["client_key"])

        async def scenario() -> tuple[str | None, str | None, str | None]:
            genuine = await tls_exchange(port, pam(1), context)
            forged = await tls_exchange(port, pam(2, app="ATTACKER"), context)
            try:  # TLS 1.3: the server drops the link once it finds no certificate
                return genuine, forged, await tls_exchange(port, pam(3), anonymous)
            except (ssl.SSLError, ConnectionError, mllp.MllpError) as exc:
                return genuine, forged, f"not served: {type(exc).__name__}"

        genuine, forged, refused = asyncio.run(scenario())
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert msa(genuine)[1] == "AA"
    assert msa(forged)[1] == "AR" and "is not allowed on this listener" in err(forged)
    assert refused is None or refused.startswith("not served"), "no certificate, no service"
    with Session(db.get_engine(f"sqlite:///{tmp_path / 'ris.db'}")) as s:
        assert s.exec(select(Patient.ipp)).all() == ["R00001"]
    db.clear_engines()
