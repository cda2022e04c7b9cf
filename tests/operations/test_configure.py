"""`ris configure site.toml`: the site settings and endpoint blocks written from the documented TOML file,
validated as a whole first (refusals name the setting and the rule; nothing saved); and every block of the
engine passes Prefect's standard block checks, secrets included as SecretStr."""

from __future__ import annotations

import pytest
from prefect.blocks.core import Block
from prefect.settings import PREFECT_API_URL
from prefect.testing.standard_test_suites import BlockStandardTestSuite
from pydantic import SecretStr

from blocks.certificates import RppsRangCertificates
from blocks.dmp import DmpEndpoint
from blocks.insi import InsiEndpoint
from blocks.mail import MailSender
from blocks.mssante import MssanteOperator
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from cli.configure import InvalidConfiguration, parse
from tests.cli_process import isolated_env, run_ris
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "site.example.toml"


class TestEveryBlock(BlockStandardTestSuite):
    # PfiEndpoint has its own run in tests/hl7/test_block.py; the others are checked here.
    @pytest.fixture(
        params=[
            SiteSettingsBlock,
            InsiEndpoint,
            MailSender,
            MssanteOperator,
            DmpEndpoint,
            RppsRangCertificates,
        ]
    )
    def block(self, request) -> type[Block]:
        return request.param

    def test_has_a_valid_image(self, block: type[Block]) -> None:
        # The suite fetches the logo over the network; the engine's blocks carry none, on purpose.
        assert block._logo_url is None


def test_the_documented_example_gives_every_block_with_secrets_hidden():
    blocks = parse(EXAMPLE.read_text(encoding="utf-8"), "site.toml")
    assert [type(b) for b in blocks.values()] == [
        SiteSettingsBlock,
        PfiEndpoint,
        InsiEndpoint,
        MailSender,
        MssanteOperator,
        DmpEndpoint,
        RppsRangCertificates,
    ]
    assert blocks["site"].settings.dmp.route == "pfi" and blocks["site"].settings.mssante.route_ps == "pfi"
    assert isinstance(blocks["dmp"].key_passphrase, SecretStr) and "change-me" not in repr(blocks["dmp"])
    assert isinstance(blocks["certificates"].certificates[0].passphrase, SecretStr)
    assert blocks["site"].settings.facility.finess_geo == "750000001"
    assert blocks["pfi"].port == 2575
    assert isinstance(blocks["insi"].key_password, SecretStr) and "change-me" not in repr(blocks["insi"])
    assert isinstance(blocks["mail"].key_passphrase, SecretStr)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            '[pfi]\nhost = "pfi"\nport = 70000\n',
            "site.toml: pfi.port: Input should be less than or equal to 65535",
        ),
        ("[pfi]\nport = 2575\n", "site.toml: pfi.host: Field required"),
        (
            '[site.facility]\nfiness_geo = "12"\n',
            "site.toml: site.facility.finess_geo: String should match pattern",
        ),
        (
            '[site.facility]\nfiness = "750000001"\n',
            "site.toml: site.facility.finess: unknown setting (known here: name",
        ),
        (
            "[mdm]\nport = 1\n",
            "site.toml: [mdm]: unknown section (known: site, pfi, insi, mail, mssante, dmp, certificates)",
        ),
        (
            '[mail]\nhost = "smtp.example.org"\nsecurity = "none"\nfrom_address = "ris@example.org"\n',
            "site.toml: mail: Value error, security 'none' is allowed for a loopback host only",
        ),
        ("[pfi\n", "site.toml: not valid TOML"),
        ("", "site.toml: no section"),
    ],
)
def test_a_wrong_setting_is_refused_with_its_place_and_the_rule(toml, problem):
    with pytest.raises(InvalidConfiguration) as caught:
        parse(toml, "site.toml")
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


def test_every_problem_of_the_file_is_listed_at_once():
    toml = '[pfi]\nhost = "pfi"\nport = 0\n[site.facility]\nfiness_geo = "12"\n'
    with pytest.raises(InvalidConfiguration) as caught:
        parse(toml, "site.toml")
    assert [p.split(":")[1].strip() for p in caught.value.problems] == [
        "pfi.port",
        "site.facility.finess_geo",
    ]


@pytest.mark.slow
def test_cli_writes_the_blocks_and_refuses_a_wrong_file_without_saving(prefect_server, tmp_path):
    env = isolated_env(tmp_path, PREFECT_API_URL=str(PREFECT_API_URL.value()), RIS_DECLARED_ACTORS="allowed")
    assert run_ris(env, "db", "upgrade").returncode == 0
    assert run_ris(env, "user", "bootstrap", "admin.site", "--reason", "installation").returncode == 0
    by = ("--by", "admin.site")  # configure: the site's administrator
    written = run_ris(env, "configure", str(EXAMPLE), "--name", "configure-test", *by)
    assert written.returncode == 0, written.stderr
    assert "RIS PFI Endpoint 'configure-test'" in written.stdout

    pfi = PfiEndpoint.load("configure-test")
    assert (pfi.host, pfi.port) == ("pfi.example.org", 2575)
    assert SiteSettingsBlock.load("configure-test").settings.facility.finess_legal == "750000002"
    assert InsiEndpoint.load("configure-test").key_password.get_secret_value() == "change-me"
    assert MailSender.load("configure-test").from_address == "ris@imagerie-demo.mssante.fr"

    wrong = tmp_path / "site.toml"
    wrong.write_text('[pfi]\nhost = "elsewhere"\nport = 2575\n[site.facility]\nfiness_geo = "75"\n')
    refused = run_ris(env, "configure", str(wrong), "--name", "configure-test", *by)
    assert refused.returncode == 1
    assert f"{wrong}: site.facility.finess_geo: String should match pattern" in refused.stderr
    assert PfiEndpoint.load("configure-test").host == "pfi.example.org"  # nothing saved

    checked = run_ris(env, "configure", str(EXAMPLE), "--check")
    assert checked.returncode == 0 and "is valid: site, pfi, insi, mail" in checked.stdout
