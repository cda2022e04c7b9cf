"""Searching a correspondent's MSSanté address in the imported directory (RIS.ANN.05), from the command
line as a person runs it, and the worklist taking the directory address when it gives none."""

from __future__ import annotations

import io
import json

import pytest

from ris.directory import search
from ris.directory.importer import import_mailboxes, import_persons
from ris.directory.synthetic import SAMPLE_MAILBOXES, SAMPLE_PERSONS, rpps_number
from ris.store.reports import correspondent_by_rpps
from ris.worklist import loader as worklist
from tests.cli_process import isolated_env, run_ris


@pytest.fixture
def imported(session):
    import_persons(session, io.BytesIO(SAMPLE_PERSONS.read_bytes()), what="test")
    import_mailboxes(session, io.BytesIO(SAMPLE_MAILBOXES.read_bytes()), what="test")
    return session


def test_search_by_name_ignores_accents_case_apostrophes_and_takes_a_beginning(imported):
    (found,) = search.find(imported, name="d exemple", given="bere")
    assert found["rpps"] == rpps_number(2)
    assert [b["address"] for b in found["mss_addresses"]] == ["berenice.dexemple@chu-demo.mssante.fr"]
    assert [p["rpps"] for p in search.find(imported, name="Lé")] == ["10001234567", "10009876543"]
    assert search.find(imported, name="essai", city="marseille") == []
    assert [p["rpps"] for p in search.find(imported, name="essai", city="69003")] == [rpps_number(1)]


def test_search_refuses_a_malformed_rpps_and_an_empty_name(imported):
    with pytest.raises(search.SearchRefused, match="--rpps '123': an RPPS number is 11 digits"):
        search.find(imported, rpps="123")
    with pytest.raises(search.SearchRefused, match="--name"):
        search.find(imported, name=" ")


def test_a_worklist_correspondent_without_address_gets_the_directory_one(imported):
    data = {"correspondents": [{"rpps": rpps_number(1), "family": "ESSAI-FICTIF"}]}
    assert worklist.load(imported, data).ok
    person = correspondent_by_rpps(imported, rpps_number(1))
    assert person.mss_address == "aurele.essai-fictif@medecin-demo.mssante.fr"


def test_cli_imports_then_finds_by_rpps_and_reports_refused_lines(tmp_path):
    env = isolated_env(tmp_path, RIS_DECLARED_ACTORS="allowed")  # a site without Pro Santé Connect
    assert run_ris(env, "db", "upgrade").returncode == 0
    assert run_ris(env, "user", "bootstrap", "admin.site", "--reason", "installation").returncode == 0
    by = ("--by", "admin.site")  # configure: the administrator
    broken = tmp_path / "ps.txt"
    broken.write_bytes(SAMPLE_PERSONS.read_bytes() + b"8|123|\n")
    done = run_ris(env, "directory", "import", str(broken), "--mss", str(SAMPLE_MAILBOXES), *by)
    assert done.returncode == 2, done.stderr
    assert "created 5, updated 0, unchanged 0, refused 1" in done.stdout
    assert "line 9: 3 fields, the header has 56" in done.stdout
    found = run_ris(env, "directory", "find", "--rpps", rpps_number(1), "--json")
    (person,) = json.loads(found.stdout)
    assert person["mss_addresses"][0]["address"] == "aurele.essai-fictif@medecin-demo.mssante.fr"
    assert [s["city"] for s in person["structures"]] == ["PARIS", "LYON"]
    adopted = run_ris(env, "directory", "adopt", rpps_number(2), *by)
    assert adopted.returncode == 0 and "created: D'EXEMPLE Bérénice" in adopted.stdout
    refused = run_ris(env, "directory", "import", str(tmp_path / "absent.txt"), *by)
    assert (
        refused.returncode == 1 and refused.stderr.startswith("error: ") and "Traceback" not in refused.stderr
    )
