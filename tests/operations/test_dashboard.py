"""RIS.TBB.01–03: the dashboard counts reports fed / sent per channel from the delivery timelines, per
period (site time zone), FINESS géographique and validating radiologist, with and without a qualified
INS at the time of the send, the failures and the cases; `ris dashboard` prints them as table, CSV, JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlmodel import Session

from ris.operations import dashboard
from ris.store import deliveries
from ris.store.models import Channel, DeliveryStatus, IdentityStatus, IdentityStatusChange, Patient
from ris.store.models import Delivery as DeliveryRow
from tests import factories
from tests.cli_process import isolated_env, run_ris

FINESS = "750000001"
OTHER_RPPS = "10001234568"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def delivery(session: Session, bundle, channel: Channel, recipient: str, *timeline, action: str = "initial"):
    """A delivery of the bundle's version whose timeline is `timeline`: (status, UTC time) pairs."""
    row = DeliveryRow(
        report_id=bundle.report.id,
        version=bundle.version.version,
        action=action,
        channel=channel,
        recipient=recipient,
        status=DeliveryStatus.pending,
        idempotency_key=f"{bundle.report.id}-{channel.value}-{recipient}-{action}",
    )
    session.add(row)
    session.flush()
    for status, when in timeline:
        deliveries.set_status(session, row, status)
        session.flush()
        event = deliveries.timeline(session, row.id)[-1]
        event.at = at(when)
        session.add(event)
    session.commit()
    return row


def figures(session: Session, period: str, **kw) -> dict[tuple[str, str], dict]:
    rows = dashboard.compute(session, period=period, finess_geo=FINESS, **kw)
    return {(r["period"], r["rpps"]): r for r in rows}


def test_counts_follow_the_timelines_per_period_radiologist_and_ins(session):
    ok, read, failed = DeliveryStatus.acknowledged, DeliveryStatus.read, DeliveryStatus.failed
    sent = DeliveryStatus.sent
    # A: qualified INS; DMP acknowledged at 23:30 UTC on 31 January = 1 February in Paris; two
    # professionals read it (one report sent), the patient's mailbox too.
    a = factories.validated_report(session, copies=1)
    delivery(session, a, Channel.dmp, "dmp", (sent, "2026-01-31T23:00"), (ok, "2026-01-31T23:30"))
    delivery(
        session, a, Channel.mss_ps, "req@x.mssante.fr", (sent, "2026-02-02T08:00"), (read, "2026-02-02T09:00")
    )
    delivery(
        session, a, Channel.mss_ps, "cc@x.mssante.fr", (sent, "2026-02-02T08:00"), (ok, "2026-02-02T08:05")
    )
    delivery(session, a, Channel.mss_patient, "patient", (ok, "2026-02-03T10:00"))
    # B: identity not qualified; sent to a professional in January; its DMP feed was blocked (not counted).
    b = factories.validated_report(session, qualified=False)
    delivery(session, b, Channel.mss_ps, "req@y.mssante.fr", (ok, "2026-01-15T10:00"))
    delivery(session, b, Channel.dmp, "dmp", (DeliveryStatus.blocked, "2026-01-15T10:00"))
    # C: validated by another radiologist; the DMP refused it (failure), an administrator's retry got it
    # through the next day; an SMTP failure was never recovered. Its deletion is not a feed.
    c = factories.validated_report(session, mask_ps=True)
    c.version.validator_rpps = OTHER_RPPS
    session.add(c.version)
    delivery(session, c, Channel.dmp, "dmp", (failed, "2026-02-10T10:00"), (ok, "2026-02-11T10:00"))
    delivery(session, c, Channel.mss_ps, "z@z.mssante.fr", (failed, "2026-02-10T10:00"))
    delivery(session, c, Channel.dmp, "dmp", (ok, "2026-02-20T10:00"), action="delete")
    # The HL7 message to the PFI is transport, not a recipient.
    delivery(session, c, Channel.hl7, "pfi", (ok, "2026-02-10T09:00"))

    months = figures(session, "month")
    assert set(months) == {
        ("2026-02", "all"),
        ("2026-02", factories.RADIOLOGIST_RPPS),
        ("2026-02", OTHER_RPPS),
        ("2026-01", "all"),
        ("2026-01", factories.RADIOLOGIST_RPPS),
    }
    feb = months[("2026-02", "all")]
    assert (feb["dmp_fed"], feb["dmp_fed_ins_qualified"], feb["dmp_fed_ins_not_qualified"]) == (2, 2, 0)
    assert (feb["mss_ps_sent"], feb["mss_patient_sent"]) == (1, 1)
    assert (feb["dmp_failed"], feb["mss_ps_failed"], feb["mss_patient_failed"]) == (1, 1, 0)
    # Cases are patients: A's and C's patients got DMP feeds, only A's got all three channels.
    assert (feb["cases_dmp"], feb["cases_mss_ps"], feb["cases_mss_patient"], feb["cases_all_three"]) == (
        2,
        1,
        1,
        1,
    )
    assert (feb["cases_any"], feb["dmp_fed_masked_ps"]) == (2, 1)  # C was masked to professionals
    assert feb["finess_geo"] == FINESS
    assert months[("2026-02", OTHER_RPPS)]["dmp_fed"] == 1
    assert months[("2026-02", OTHER_RPPS)]["mss_ps_failed"] == 1
    jan = months[("2026-01", "all")]
    assert (jan["mss_ps_sent"], jan["mss_ps_sent_ins_not_qualified"], jan["dmp_fed"]) == (1, 1, 0)

    # The periods the DSR asks for: per year, per ISO week, per day (Paris days).
    years = figures(session, "year")
    assert years[("2026", "all")]["dmp_fed"] == 2 and years[("2026", "all")]["mss_ps_sent"] == 2
    assert figures(session, "day")[("2026-02-01", "all")]["dmp_fed"] == 1
    assert figures(session, "week")[("2026-W05", "all")]["dmp_fed"] == 1  # Sunday 1 February 2026
    # Bounded days (inclusive, local).
    assert set(figures(session, "month", since=dt.date(2026, 2, 1))) == {
        ("2026-02", "all"),
        ("2026-02", factories.RADIOLOGIST_RPPS),
        ("2026-02", OTHER_RPPS),
    }


def test_ins_qualified_is_the_status_at_the_time_of_the_send(session):
    bundle = factories.validated_report(session, qualified=False)
    patient = session.get(Patient, bundle.patient.id)
    # VALI when the DMP got it (the history says it became QUAL only on 1 March).
    session.add(
        IdentityStatusChange(
            patient_id=patient.id,
            previous=IdentityStatus.VALI,
            new=IdentityStatus.QUAL,
            reason="INSi",
            by="x",
            at=at("2026-03-01T00:00"),
        )
    )
    patient.status = IdentityStatus.QUAL
    session.add(patient)
    delivery(session, bundle, Channel.dmp, "dmp", (DeliveryStatus.acknowledged, "2026-02-15T10:00"))
    delivery(session, bundle, Channel.mss_patient, "patient", (DeliveryStatus.read, "2026-03-02T10:00"))
    months = figures(session, "month")
    assert months[("2026-02", "all")]["dmp_fed_ins_not_qualified"] == 1
    assert months[("2026-03", "all")]["mss_patient_sent_ins_qualified"] == 1


def test_cli_prints_the_same_figures_as_csv_json_and_table(session, db_url, tmp_path):
    bundle = factories.validated_report(session)
    delivery(session, bundle, Channel.dmp, "dmp", (DeliveryStatus.acknowledged, "2026-02-15T10:00"))
    expected = dashboard.compute(session, period="month", finess_geo=FINESS)
    env = isolated_env(tmp_path, RIS_DATABASE_URL=db_url)

    as_json = run_ris(env, "dashboard", "--period", "month", "--format", "json", "--finess", FINESS)
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == expected

    as_csv = run_ris(env, "dashboard", "--format", "csv", "--finess", FINESS)
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [{k: str(v) for k, v in r.items()} for r in expected] == rows

    table = run_ris(env, "dashboard", "--format", "table", "--finess", FINESS)
    assert table.returncode == 0 and "2026-02" in table.stdout and "DMP INSq" in table.stdout

    wrong = run_ris(env, "dashboard", "--period", "fortnight", "--finess", FINESS)
    assert wrong.returncode == 2 and "fortnight" in wrong.stderr


def test_the_markdown_of_the_daily_artifact_holds_ids_and_counts_only(session):
    bundle = factories.validated_report(session)
    delivery(session, bundle, Channel.dmp, "dmp", (DeliveryStatus.acknowledged, "2026-02-15T10:00"))
    markdown = dashboard.to_markdown(
        dashboard.compute(session, period="month", finess_geo=FINESS), "Per month"
    )
    assert "| 2026-02 | 750000001 | all | 1 | 1 | 0 |" in markdown
    for trait in ("PAT-TROIS", "DOMINIQUE", "1979", "279035121518989", "Breteuil"):
        assert trait not in markdown


@pytest.mark.slow
async def test_the_daily_deployment_publishes_the_markdown_artifact(session, saved_site):
    from prefect.client.orchestration import get_client

    from flows.dashboard import publish_dashboard_figures

    bundle = factories.validated_report(session)
    today = dt.datetime.now(dt.UTC).isoformat(timespec="minutes")[:16]
    delivery(session, bundle, Channel.dmp, "dmp", (DeliveryStatus.acknowledged, today))
    result = await publish_dashboard_figures()
    assert result["rows"] == 2  # this month: the radiologist and the `all` row
    async with get_client() as client:
        artifact = await client.read_latest_artifacts(limit=50)
    (latest,) = [a for a in artifact if a.key == "ris-dashboard"]
    assert f"| {saved_site.facility.finess_geo} | all | 1 | 1 | 0 |" in latest.data
    assert "PAT-TROIS" not in latest.data and "279035121518989" not in latest.data
