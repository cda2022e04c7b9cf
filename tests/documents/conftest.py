"""Report variants for the documents tests (ANS / CNDA test identities, ins.md §13)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlmodel import Session

from ris.lifecycle import reports
from ris.site.settings import SiteSettings
from ris.store.models import IdentityStatus
from ris.store.reports import ReportBundle, load_bundle
from tests import factories

JAVA_JARS = ("preflight", "pdfbox2", "fontbox2", "xmpbox", "commons-logging", "javax.activation", "jaxb-api")

ADRUN_ZOE = dict(
    birth_name="ADRUN",
    birth_given_names="ZOÉ",
    first_birth_given_name="ZOÉ",
    used_name=None,
    used_given_name=None,
    birth_date=dt.date(1975, 12, 31),
    sex="F",
    birth_place_code="63220",
    ins_matricule="275126322074974",
    ins_oid="1.2.250.1.213.1.4.8",
)
PROVISOIRE_MATRICULE = dict(
    birth_name="PROVISOIRE",
    birth_given_names="MATRICULE",
    first_birth_given_name="MATRICULE",
    used_name=None,
    used_given_name=None,
    birth_date=dt.date(2009, 7, 1),
    sex="M",
    birth_place_code="63220",
    ins_matricule="109076322088835",
    ins_oid="1.2.250.1.213.1.4.9",
)


@pytest.fixture
def settings() -> SiteSettings:
    return SiteSettings(paper_extra_traits=["used_name", "used_given_name", "birth_place_code"])


def replace(session: Session, bundle: ReportBundle, *, body: str | None = None) -> ReportBundle:
    """Edit the validated report and validate it again: version n+1 replaces version n."""
    report = bundle.report
    text = body or report.body + "\nAddendum : contrôle à 3 mois conseillé."
    reports.replace(session, report.id, text, None, factories.RADIOLOGIST_RPPS)
    session.commit()
    return load_bundle(session, report.id)


def variants(session: Session) -> dict[str, ReportBundle]:
    """Qualified NIR (.8), NIA (.9), test NIR (.10) with 3 copies, unqualified, replacement v2."""
    nir = factories.patient(session, **ADRUN_ZOE)
    nia = factories.patient(session, **PROVISOIRE_MATRICULE)
    test = factories.validated_report(session, copies=3)
    return {
        "nir": factories.validated_report(session, patient_row=nir),
        "nia": factories.validated_report(session, patient_row=nia, copies=0),
        "test": test,
        "unqualified": factories.validated_report(
            session, patient_row=factories.patient(session, qualified=False, status=IdentityStatus.VALI)
        ),
        "replacement": replace(session, factories.validated_report(session)),
    }


def preflight_command(pdf: Path) -> list[str] | None:
    """Apache PDFBox Preflight (library-notes.md §2); None when java or the jars are absent."""
    java = shutil.which("java")
    jars = [Path("/usr/share/java") / f"{name}.jar" for name in JAVA_JARS]
    if java is None or not all(jar.is_file() for jar in jars):
        return None
    return [java, "-cp", ":".join(map(str, jars)), "org.apache.pdfbox.preflight.Validator_A1b", str(pdf)]


def pdftotext(pdf: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True, text=True
    ).stdout
