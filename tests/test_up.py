"""`ris up` brings the single box up and Ctrl-C (or SIGTERM) stops all of it, the Prefect server included;
it runs the site's saved configuration, and only `--sandbox` starts the sandbox peers."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time

import httpx
import pytest

from ris.hl7v2 import mllp
from ris.lifecycle import reports
from ris.operations.demo import sample_worklist
from ris.store import db
from ris.worklist import loader as worklist
from tests.cli_process import isolated_env, run_ris, start_up
from tests.identity.test_pam import message as pam_message

pytestmark = pytest.mark.slow


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _site_users(env, radiologist: str) -> dict[str, str]:
    """A site without Pro Santé Connect (declared actors allowed): its first administrator by the explicit
    bootstrap, who adds the radiologist; the environment their commands run with."""
    env = {**env, "RIS_DECLARED_ACTORS": "allowed"}
    assert run_ris(env, "user", "bootstrap", "admin.site", "--reason", "installation").returncode == 0
    added = run_ris(
        env, "user", "add", radiologist, "--role", "radiologist", "--reason", "staff", "--by", "admin.site"
    )
    assert added.returncode == 0, added.stderr
    return env


def _validate_from_another_terminal(tmp_path, env) -> tuple[dict[str, str], str]:
    """Other `ris` commands find the running box by its data folder: validation starts a served run."""
    data = sample_worklist(1)
    report = data["reports"][0]
    env = _site_users(env, report["author_rpps"])
    (tmp_path / "worklist.json").write_text(json.dumps(data), encoding="utf-8")
    loaded = run_ris(env, "worklist", "load", str(tmp_path / "worklist.json"), "--by", "admin.site")
    assert loaded.returncode == 0, loaded.stderr
    validated = run_ris(env, "report", "validate", report["id"], "--by", report["author_rpps"])
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert f"started: report-{report['id']}-v1" in validated.stdout
    _wait_until_published(env, report["id"])
    return env, report["author_rpps"]


def _foreign_ins_is_verified(output: str, env, rpps: str) -> None:
    """`ris up` wires the INSi verification: an A28 from another domain carrying a CNAM test INS, sent to
    its PAM-FR listener, ends récupérée once the sandbox INSi answered (a run of its own)."""
    port = int(re.search(r"PAM-FR listener:\s+mllp://127\.0\.0\.1:(\d+)", output).group(1))
    ack = asyncio.run(mllp.exchange("127.0.0.1", port, pam_message(app="HOPY"), timeout=10))
    assert ack.split("\r")[1].split("|")[1] == "AA"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shown = run_ris(env, "identity", "show", "000003", "--json", "--by", rpps)
        if shown.returncode == 0 and json.loads(shown.stdout)["status"] == "RECUP":
            assert json.loads(shown.stdout)["ins_matricule"] == "279035121518989"
            return
        time.sleep(2)
    pytest.fail(f"the foreign INS was not verified: {shown.stdout} {shown.stderr}")


def _validate_while_down(tmp_path) -> str:
    """A report validated while no engine runs: `ris up` starts its lifecycle when it comes up."""
    url = f"sqlite:///{tmp_path / 'ris.db'}"
    db.upgrade(url)
    data = sample_worklist(1)
    with db.session_scope(url) as session:
        worklist.load(session, data)
        reports.validate(session, data["reports"][0]["id"], data["reports"][0]["author_rpps"])
    db.clear_engines()
    return data["reports"][0]["id"]


def _wait_until_published(env, report_id: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shown = json.loads(run_ris(env, "report", "show", report_id, "--json").stdout)
        if shown["channels"]["hl7"] == "acknowledged":
            return
        time.sleep(2)
    pytest.fail(f"the served lifecycle run did not publish the report: {shown}")


def _ui(output: str) -> tuple[str, int]:
    ui = re.search(r"Prefect UI:\s+(http://127\.0\.0\.1:(\d+))", output)
    assert ui, output
    return ui.group(1), int(ui.group(2))


def test_up_runs_the_site_configuration_and_says_what_is_missing(tmp_path):
    """A fresh site: no sandbox peer is started and no block is saved for it; `ris up` says which blocks
    to create. The UI on a port other than 4200 calls its own API."""
    process, output = start_up(isolated_env(tmp_path), "--prefect-port", "4393", patience_s=120)
    try:
        url, port = _ui(output)
        assert httpx.get(f"{url}/ui-settings", timeout=5).json()["api_url"] == f"http://127.0.0.1:{port}/api"
        assert "sandbox PFI" not in output and "sandbox INSi" not in output
        assert "not configured:    the RIS Site Settings block 'default' is not saved" in output
        assert "engine worker:     single-box-" in output
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_up_serves_until_stopped_and_leaves_nothing_behind(tmp_path, stop):
    env = isolated_env(tmp_path)
    if stop is signal.SIGTERM:
        caught_up = _validate_while_down(tmp_path)
    process, output = start_up(env, "--sandbox", "--prefect-port", "4391", patience_s=120)
    try:
        url, port = _ui(output)
        assert httpx.get(f"{url}/api/health", timeout=5).json() is True
        assert "sandbox PFI:       mllp://127.0.0.1:" in output
        if stop is signal.SIGINT:
            _foreign_ins_is_verified(output, *_validate_from_another_terminal(tmp_path, env))
        else:
            assert "1 reports validated while the engine was down" in output
            _wait_until_published(env, caught_up)
        process.send_signal(stop)
        code, after = process.wait(timeout=60), process.stdout.read()
        assert code == 0 and "stopped" in after, after[-3000:]
        assert not _port_open(port), "the Prefect server outlived `ris up`"
    finally:
        if process.poll() is None:
            process.kill()
