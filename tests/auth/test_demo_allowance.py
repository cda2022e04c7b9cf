"""`ris demo` runs with no login (its users set up in its own database), and every `ris` command pointed at
the demo's folder accepts `--by` one of the demo's radiologists, and no one else, with the checks on."""

from __future__ import annotations

import json

import pytest

from tests.cli_process import isolated_env, run_ris
from tests.conftest import DemoRun

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the shared demo run (tests/conftest.py)


def test_the_demo_runs_without_login_and_its_folder_accepts_its_radiologists(demo_run: DemoRun):
    assert "demo users:        10001234567, 10001234568 (`--by` accepted in" in demo_run.stdout
    env = isolated_env(demo_run.folder)  # no RIS_DECLARED_ACTORS: refused, as on a site
    shown = run_ris(env, "identity", "show", "DEMO00001", "--json", "--by", "10001234568")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["ins_matricule"]  # a radiologist reads the INS (ins.read)
    stranger = run_ris(env, "identity", "show", "DEMO00001", "--json", "--by", "10009876541")
    assert stranger.returncode == 1
    assert stranger.stderr == "error: nobody is logged in: log in with `ris login` (this site refuses --by)\n"
    listed = {u["id"]: u["roles"] for u in json.loads(run_ris(env, "user", "list", "--json").stdout)}
    assert listed == {
        "10001234567": ["administrator", "identity-referent", "radiologist"],
        "10001234568": ["radiologist"],
    }
