"""A worklist of any size for the concurrency tests and the load benchmark: one patient (PROV, no INS),
one exam and one draft report per case, a few correspondents. Ids are stable (prefix + number)."""

from __future__ import annotations

import datetime as dt
from typing import Any

RADIOLOGIST = {"rpps": "10000000001", "family": "RADIO", "given": "ANNE", "specialty_code": "G15_10/SM44"}
REQUESTER = {"rpps": "10000000002", "family": "MEDECIN", "given": "PAUL"}
NAMES = ("MARTIN", "BERNARD", "DUBOIS", "THOMAS", "ROBERT", "RICHARD", "PETIT", "DURAND")
GIVEN = ("JEANNE", "PIERRE", "MARIE", "LOUIS", "CLAIRE", "HUGO")


def big_worklist(cases: int, *, prefix: str = "W") -> dict[str, Any]:
    """3 × `cases` + 2 records."""
    start = dt.datetime(2026, 11, 20, 8, 0, tzinfo=dt.UTC)
    patients, exams, reports = [], [], []
    for i in range(cases):
        ipp = f"{prefix}{i:07d}"
        patients.append(
            {
                "ipp": ipp,
                "birth_name": NAMES[i % len(NAMES)],
                "first_birth_given_name": GIVEN[i % len(GIVEN)],
                "birth_date": (dt.date(1940, 1, 1) + dt.timedelta(days=i % 25_000)).isoformat(),
                "sex": "F" if i % 2 else "M",
                "birth_place_code": "75056",
                "street": f"{i % 200 + 1} rue des Lilas",
                "postal_code": "75011",
                "city": "PARIS",
            }
        )
        accession = f"{prefix}ACC{i:07d}"
        exams.append(
            {
                "order_id": f"{prefix}CMD{i:07d}",
                "accession_number": accession,
                "study_instance_uid": f"1.2.250.1.999.3.{i + 1}",
                "ipp": ipp,
                "requester_rpps": REQUESTER["rpps"],
                "modality": "CT",
                "exam_code": "24627-2",
                "exam_label": "Scanner thoracique",
                "started_at": (start + dt.timedelta(minutes=i)).isoformat(),
            }
        )
        reports.append(
            {
                "id": f"{prefix}CR{i:07d}",
                "accession_number": accession,
                "title": "Scanner thoracique",
                "body": "Indication : toux.\nRésultats : pas d'anomalie.",
                "author_rpps": RADIOLOGIST["rpps"],
            }
        )
    return {
        "correspondents": [RADIOLOGIST, REQUESTER],
        "patients": patients,
        "exams": exams,
        "reports": reports,
    }
