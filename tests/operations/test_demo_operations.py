"""On the demo worklist, end to end: nothing the Prefect API holds (flow runs, task runs, logs, artifacts,
events, variables, block documents, deployments) carries a patient's name, NIR, birth date or address;
`ris dashboard --format json` agrees with `ris report show`; and an export of the demo re-read by
`ris import-export` gives back the same counts and checksums."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, create_engine, select

from cli.prefect_server import PrefectServer
from ris.store.models import Patient, Report
from tests.cli_process import isolated_env, run_ris
from tests.conftest import DemoRun

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the demo runs in the fixture
PAGE = 200
EVENT_PAGE = 50  # the most /events/filter returns per page
FILTERS = ("flow_runs", "task_runs", "logs", "artifacts", "variables", "deployments", "work_pools")


@pytest.fixture(scope="module")
def demo(demo_run: DemoRun) -> Path:
    """The demo's folder (engine database, Prefect home), from the run the suite shares."""
    return demo_run.folder


def engine_env(demo: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return isolated_env(tmp_path, RIS_DATABASE_URL=f"sqlite:///{demo / 'ris.db'}", **extra)


def health_data_patterns(demo: Path) -> list[tuple[str, re.Pattern[str]]]:
    """What must never leave the engine's database for the operations plane, per patient of the
    worklist: name words, NIR (with and without its key), birth date as written anywhere, street."""
    with Session(create_engine(f"sqlite:///{demo / 'ris.db'}")) as session:
        patients = list(session.exec(select(Patient)))
    assert len(patients) == 8
    found = []
    for p in patients:
        words = {
            w
            for text in (
                p.birth_name,
                p.used_name,
                p.birth_given_names,
                p.first_birth_given_name,
                p.used_given_name,
            )
            for w in re.split(r"[\s]+", text or "")
            if len(w) >= 3
        }
        for word in words:
            found.append(
                (f"name of patient {p.id}", re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.IGNORECASE))
            )
        if p.ins_matricule:
            nir = re.escape(p.ins_matricule[:13])
            found.append((f"NIR of patient {p.id}", re.compile(rf"(?<!\d){nir}")))
        b = p.birth_date
        for text in (b.isoformat(), f"{b:%Y%m%d}", f"{b:%d/%m/%Y}", f"{b:%d%m%Y}"):
            found.append((f"birth date of patient {p.id}", re.compile(rf"(?<!\d){re.escape(text)}(?!\d)")))
        if p.street:
            found.append((f"address of patient {p.id}", re.compile(re.escape(p.street), re.IGNORECASE)))
    return found


async def everything(api: str) -> AsyncIterator[tuple[str, Any]]:
    """Every object of the Prefect API a user or an integration can read, page by page."""
    async with httpx.AsyncClient(base_url=api, timeout=60) as client:
        for kind in FILTERS:
            offset = 0
            while True:
                response = await client.post(f"/{kind}/filter", json={"limit": PAGE, "offset": offset})
                response.raise_for_status()
                page = response.json()
                for item in page:
                    yield kind, item
                if len(page) < PAGE:
                    break
                offset += PAGE
        offset = 0
        while True:
            body = {"limit": PAGE, "offset": offset, "include_secrets": True}
            response = await client.post("/block_documents/filter", json=body)
            response.raise_for_status()
            for item in response.json():
                yield "block_documents", item
            if len(response.json()) < PAGE:
                break
            offset += PAGE
        since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()
        response = await client.post(
            "/events/filter", json={"filter": {"occurred": {"since": since}}, "limit": EVENT_PAGE}
        )
        while True:
            assert response.status_code == 200, response.text
            page = response.json()
            for event in page["events"]:
                yield "events", event
            if not page.get("next_page"):
                break
            response = await client.get(page["next_page"])


async def scan(demo: Path) -> tuple[dict[str, int], list[str]]:
    patterns = health_data_patterns(demo)
    server = await PrefectServer(demo / "prefect", 4396).start()
    seen: dict[str, int] = {}
    leaks = []
    try:
        async for kind, item in everything(server.api_url):
            seen[kind] = seen.get(kind, 0) + 1
            text = json.dumps(item, ensure_ascii=False)
            for what, pattern in patterns:
                if match := pattern.search(text):
                    leaks.append(f"{kind} {item.get('id')}: {what} ({match.group(0)!r})")
    finally:
        server.stop()
    return seen, leaks


def test_the_patterns_find_every_trait_where_it_is(demo):
    """The scan's own check: on the patients' rows, every kind of trait is found."""
    with Session(create_engine(f"sqlite:///{demo / 'ris.db'}")) as session:
        rows = " ".join(p.model_dump_json() for p in session.exec(select(Patient)))
    found = {what.split(" of ")[0] for what, pattern in health_data_patterns(demo) if pattern.search(rows)}
    assert found == {"name", "NIR", "birth date", "address"}


def test_the_prefect_api_holds_no_health_data_of_the_worklist(demo):
    seen, leaks = asyncio.run(scan(demo))
    # The scan read what the demo produced: its runs, their task runs, logs, events, the saved blocks,
    # and the report artifacts when the engine publishes them.
    assert seen.get("flow_runs", 0) >= 9 and seen.get("task_runs", 0) > 9 * 3
    assert seen.get("logs", 0) > 0 and seen.get("events", 0) > 0 and seen.get("block_documents", 0) >= 4
    assert leaks == []


def test_the_dashboard_agrees_with_report_show(demo, tmp_path):
    env = engine_env(demo, tmp_path)
    dashboard = run_ris(env, "dashboard", "--period", "year", "--format", "json", "--finess", "750000001")
    assert dashboard.returncode == 0, dashboard.stderr
    totals = [row for row in json.loads(dashboard.stdout) if row["rpps"] == "all"]
    assert len(totals) == 1  # the demo ran today
    with Session(create_engine(f"sqlite:///{demo / 'ris.db'}")) as session:
        report_ids = [r.id for r in session.exec(select(Report))]
    shown = []
    for report_id in report_ids:
        result = run_ris(env, "report", "show", report_id, "--json")
        assert result.returncode == 0, result.stderr
        shown.append(json.loads(result.stdout))
    done = ("acknowledged", "read")

    def count(channel: str) -> int:
        return sum(1 for s in shown if s["channels"][channel] in done)

    def failed(channel: str) -> int:
        return sum(
            1 for s in shown for d in s["deliveries"] if d["channel"] == channel and d["status"] == "failed"
        )

    (row,) = totals
    assert row["dmp_fed"] == count("dmp") > 0
    assert row["mss_ps_sent"] == count("mss-ps") > 0
    assert row["mss_patient_sent"] == count("mss-patient") > 0
    assert row["dmp_failed"] >= failed("dmp") and row["mss_ps_failed"] >= failed("mss-ps")
    assert row["dmp_fed_ins_qualified"] + row["dmp_fed_ins_not_qualified"] == row["dmp_fed"]
    per_radiologist = [r for r in json.loads(dashboard.stdout) if r["rpps"] != "all"]
    assert sum(r["dmp_fed"] for r in per_radiologist) == row["dmp_fed"]


def test_an_export_of_the_demo_re_reads_with_the_same_counts_and_checksums(demo, tmp_path):
    # In the demo's own folder: its allowance accepts `--by` for the demo's administrator.
    env = {**engine_env(demo, tmp_path), "RIS_DATA_DIR": str(demo)}
    out = tmp_path / "export"
    written = run_ris(env, "export", "--out", str(out), "--by", "10001234567")
    assert written.returncode == 0, written.stderr
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["patients"] == 8 and manifest["counts"]["reports"] == 8
    assert manifest["counts"]["document_files"] == 2 * manifest["counts"]["documents"] > 0

    reread = run_ris(env, "import-export", str(out), "--json")
    assert reread.returncode == 0, reread.stderr
    assert json.loads(reread.stdout)["counts"] == manifest["counts"]
    for path, listed in manifest["files"].items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == listed["sha256"]
