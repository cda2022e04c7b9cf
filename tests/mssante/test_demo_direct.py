"""`ris demo --routes direct`: the same sample worklist, the MSSanté copies sent by the engine itself
through the sandbox MSSanté operator (mutual TLS), each mail kept as an .eml under mss-received/, and the
DMP fed directly (ITI-41 over mutual TLS), each request kept under dmp-received/."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from tests.cli_process import isolated_env, run_ris

# The whole demo (up, worklist, announcement, replacement, receipts) runs beyond the suite's 300 s default
# on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_demo_with_direct_routes_sends_the_mails_itself(tmp_path, shared):
    out = tmp_path / "summary.json"
    env = isolated_env(tmp_path / "data", RIS_SHARED_DIR=str(shared))
    args = [
        "demo",
        "--exit",
        "--reports",
        "8",
        "--prefect-port",
        "4397",
        "--json",
        str(out),
        "--routes",
        "direct",
    ]
    result = run_ris(env, *args, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "route direct" in result.stdout
    rows = list(json.loads(out.read_text(encoding="utf-8"))["reports"])
    first, announced, recup, _prov, refused, *_ = rows
    # DSN then MDN read over IMAP by the mss-receipts flow: acknowledged, then read.
    assert first["version"] == 2 and first["channels"]["mss-ps"] == "read"
    assert first["channels"]["hl7"] == "acknowledged"  # the PFI still gets the report (ORU/MDM)
    # The registry's Success acknowledges the direct DMP copy; an identity not qualified is never fed.
    assert first["channels"]["dmp"] == "acknowledged"
    assert recup["channels"]["dmp"] == "blocked"
    dmp = tmp_path / "data" / "demo" / "dmp-received"
    assert list(dmp.glob("*-iti41.mime")) and list(dmp.glob("*.xml"))
    assert announced["channels"]["mss-patient"] == "read"
    assert refused["channels"]["mss-patient"] == "blocked" and "refused" in refused["reasons"]["mss-patient"]
    received = tmp_path / "data" / "demo" / "mss-received"
    mails = [message_from_bytes(p.read_bytes(), policy=default_policy) for p in received.glob("*.eml")]
    xdm = [m for m in mails if str(m["Subject"]).startswith("XDM/1.0/DDM+")]
    assert xdm and all(any(p.get_filename() == "IHE_XDM.zip" for p in m.iter_attachments()) for m in xdm)
    assert any("ANNULE ET REMPLACE" in m.get_body(("plain",)).get_content() for m in xdm)
