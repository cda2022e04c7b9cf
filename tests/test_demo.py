"""The README's main command: `ris demo` brings up a Prefect server, the sandbox peers and the served
deployments, drives a sample worklist through the lifecycle and prints the UI address and a summary."""

from __future__ import annotations

import pytest

from tests.conftest import DemoRun

# The whole demo (up, worklist, announcement, replacement, receipts) runs beyond the suite's 300 s default
# on a loaded 2-core machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_demo_runs_the_sample_worklist_end_to_end(demo_run: DemoRun):
    summary = demo_run.summary
    assert summary["ui"].startswith("http://127.0.0.1:")
    assert f"Prefect UI: {summary['ui']}" in demo_run.stdout
    rows = {r["id"]: r for r in summary["reports"]}
    assert len(rows) == 8
    statuses = [r["channels"] for r in rows.values()]
    first, announced, recup, _prov, refused, _vali, blocked_dmp, provisional = rows.values()
    assert first["version"] == 2  # replaced ("annule et remplace") after its first version went out
    assert first["channels"] == {
        "dmp": "acknowledged",
        "mss-ps": "read",
        "mss-patient": "read",
        "hl7": "acknowledged",
    }
    assert "version 2 replaces version 1" in demo_run.stdout
    # The shipped synthetic Annuaire Santé extractions were imported beside the worklist (RIS.ANN.04).
    assert "directory (synthetic PS_LibreAcces_Personne_activite_synthetique.txt): created" in demo_run.stdout
    # The announcement was recorded: the patient's copy left, the DMP copy was made visible.
    assert announced["channels"]["mss-patient"] == "read" and announced["channels"]["dmp"] == "acknowledged"
    assert any((demo_run.folder / "pfi-received").iterdir())
    assert recup["channels"]["dmp"] == "blocked" and "INS rule 28" in recup["reasons"]["dmp"]
    assert refused["channels"]["mss-patient"] == "blocked" and "refused" in refused["reasons"]["mss-patient"]
    assert blocked_dmp["channels"]["dmp"] == "blocked" and "RIS.DMP.03" in blocked_dmp["reasons"]["dmp"]
    assert provisional["status"] == "provisional" and provisional["version"] == 0
    assert all(s["hl7"] == "acknowledged" for s in statuses[:7])
