"""A realistic sample worklist for the demo and the tests (fictitious people, INS on the test OID).

Identity traits are written as INSi returns them (upper case, no diacritics, INS lexical rules); the
accents live in the report texts and the professionals' names.

The mix covers what a radiology site sees in a day: qualified and unqualified identities, an announcement
to make before the patient may read the report, several recipients, a patient's refusal, a user block
of the DMP feed, a correspondent without MSSanté address, and reports left provisional.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ris.identity.nir import OID_TEST, with_key

RADIOLOGISTS = [
    {
        "rpps": "10001234567",
        "family": "LEFÈVRE",
        "given": "Émile",
        "title": "Dr",
        "mss_address": "emile.lefevre@imagerie-demo.mssante.fr",
        "specialty_code": "G15_10/SM74",
        "organisation": "Centre d'Imagerie Médicale Démo",
    },
    {
        "rpps": "10001234568",
        "family": "NGUYỄN",
        "given": "Thérèse",
        "title": "Dr",
        "mss_address": "therese.nguyen@imagerie-demo.mssante.fr",
        "organisation": "Centre d'Imagerie Médicale Démo",
    },
]
REQUESTERS = [
    {
        "rpps": "10009876541",
        "family": "FRANÇOIS",
        "given": "Hélène",
        "title": "Dr",
        "mss_address": "helene.francois@medecin-demo.mssante.fr",
        "organisation": "Cabinet médical des Lilas",
    },
    {
        "rpps": "10009876542",
        "family": "BOUCHER",
        "given": "Jérôme",
        "title": "Dr",
        "mss_address": "jerome.boucher@medecin-demo.mssante.fr",
        "organisation": "Maison de santé Sainte-Cécile",
    },
    {
        "rpps": "10009876543",
        "family": "LÉGER",
        "given": "Anaïs",
        "title": "Dr",
        "mss_address": None,
        "organisation": "Cabinet du Dr Léger",
    },
]
SPECIALISTS = [
    {
        "rpps": "10005550001",
        "family": "MOREAU",
        "given": "Clémence",
        "title": "Pr",
        "mss_address": "clemence.moreau@chu-demo.mssante.fr",
        "organisation": "CHU Démo — Neurologie",
    },
    {
        "rpps": "10005550002",
        "family": "GARÇON",
        "given": "Benoît",
        "title": "Dr",
        "mss_address": "benoit.garcon@chu-demo.mssante.fr",
        "organisation": "CHU Démo — Pneumologie",
    },
]
PATIENTS = [
    ("MARTINEAU", "ELODIE", "ELODIE MARIE", "F", dt.date(1984, 4, 12), "63113"),
    ("DUPRE-LAMBERT", "FRANCOIS", "FRANCOIS JOSEPH", "M", dt.date(1957, 11, 3), "75056"),
    ("N'DIAYE", "AISSATOU", "AISSATOU", "F", dt.date(1992, 7, 30), "99341"),
    ("LEBRETON", "GAEL", "GAEL YVES", "M", dt.date(1971, 1, 19), "29019"),
    ("ROUSSEAU", "CHLOE", "CHLOE ANNE", "F", dt.date(2001, 9, 5), "69123"),
    ("PEREZ", "JOSE", "JOSE LUIS", "M", dt.date(1966, 2, 24), "2A004"),
    ("FONTAINE", "MAELLE", "MAELLE", "F", dt.date(1979, 12, 8), "33063"),
    ("OLIVIER", "NOEL", "NOEL PIERRE", "M", dt.date(1948, 12, 25), "59350"),
]
EXAMS = [
    (
        "CT",
        "24727-0",
        "Scanner cérébral avec injection",
        "ACQH002",
        "Céphalées inhabituelles depuis dix jours.",
        "Pas d'anomalie encéphalique décelée.",
        "Acquisition hélicoïdale avant et après injection de produit de contraste iodé. Pas de prise de "
        "contraste anormale. Ventricules de taille et de morphologie normales. Pas d'hématome ni d'œdème.",
    ),
    (
        "MR",
        "24590-2",
        "IRM cérébrale",
        "ACQN001",
        "Vertiges récidivants.",
        "IRM cérébrale sans anomalie significative.",
        "Séquences T1, T2, FLAIR et diffusion. Quelques hypersignaux punctiformes de la substance blanche, "
        "aspécifiques à cet âge. Pas de lésion de l'angle ponto-cérébelleux.",
    ),
    (
        "US",
        "24558-9",
        "Échographie abdominale",
        "ZCQM001",
        "Douleurs de l'hypocondre droit.",
        "Lithiase vésiculaire non compliquée.",
        "Foie de taille normale, d'échostructure homogène. Vésicule contenant plusieurs calculs mobiles "
        "sans épaississement pariétal. Voies biliaires non dilatées. Reins et rate sans particularité.",
    ),
    (
        "DX",
        "36643-5",
        "Radiographie du thorax (deux incidences)",
        "ZBQK002",
        "Toux persistante chez un fumeur.",
        "Opacité nodulaire du lobe supérieur droit : scanner conseillé.",
        "Opacité nodulaire de 12 mm du lobe supérieur droit, à contours spiculés. Pas d'épanchement "
        "pleural. Silhouette cardiaque normale.",
    ),
    (
        "MG",
        "26346-7",
        "Mammographie bilatérale de diagnostic",
        "QEQK004",
        "Masse palpable du sein gauche.",
        "Lésion classée ACR 4 du sein gauche : biopsie recommandée.",
        "Seins de densité de type B. Opacité irrégulière de 9 mm du quadrant supéro-externe gauche. "
        "Pas de microcalcification suspecte. Pas d'adénopathie axillaire.",
    ),
    (
        "CT",
        "24627-2",
        "Scanner thoracique",
        "ZBQH001",
        "Bilan d'un nodule pulmonaire.",
        "Nodule spiculé du lobe supérieur droit, à explorer.",
        "Nodule de 13 mm du segment apical du lobe supérieur droit, spiculé. Pas d'adénopathie médiastinale. "
        "Pas d'épanchement. Emphysème centrolobulaire modéré.",
    ),
]


@dataclass(frozen=True)
class Profile:
    """What a sample case exercises."""

    status: str  # identity status
    with_ins: bool
    requester: int
    copies: tuple[int, ...] = ()
    report_status: str = "draft"
    flags: tuple[str, ...] = ()


PROFILES = [
    Profile("QUAL", True, 0, (0,)),
    Profile("QUAL", True, 1, (1,), flags=("announcement_required",)),
    Profile("RECUP", True, 0),
    Profile("PROV", False, 1, (0,)),
    Profile("QUAL", True, 0, (), flags=("refuse_mss_patient",)),
    Profile("VALI", False, 2, (1,)),
    Profile("QUAL", True, 1, (0, 1), flags=("dmp_blocked",)),
    Profile("QUAL", True, 0, (), report_status="provisional"),
]


def _matricule(index: int, sex: str, birth: dt.date, place: str) -> str:
    # The order number has three digits (001-999): 100, 101... for the first 900 cases, then round again
    # from 001; with the patients' traits cycling too, matricules stay unique up to 7 992 cases.
    order = (index + 99) % 999 + 1
    n13 = f"{1 if sex == 'M' else 2}{birth:%y%m}{place}{order:03d}"
    return with_key(n13)


def sample_worklist(reports: int = 8, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """`reports` cases cycling through PROFILES; ids are stable so the output is reproducible."""
    now = now or dt.datetime.now(dt.UTC)
    patients, exams, items = [], [], []
    for i in range(reports):
        profile = PROFILES[i % len(PROFILES)]
        family, first, given_names, sex, birth, place = PATIENTS[i % len(PATIENTS)]
        ipp = f"DEMO{i + 1:05d}"
        patient: dict[str, Any] = {
            "ipp": ipp,
            "birth_name": family,
            "first_birth_given_name": first,
            "birth_given_names": given_names,
            "birth_date": birth.isoformat(),
            "sex": sex,
            "birth_place_code": place,
            "status": profile.status,
            "used_name": family,
            "used_given_name": first,
            "street": f"{3 + i} rue des Tilleuls",
            "postal_code": "75011",
            "city": "PARIS",
        }
        if profile.with_ins:
            patient["ins"] = {"matricule": _matricule(i, sex, birth, place), "oid": OID_TEST}
        patients.append(patient)
        modality, loinc, label, ccam, indication, conclusion, findings = EXAMS[i % len(EXAMS)]
        started = now - dt.timedelta(days=3 if profile.report_status == "provisional" else 0, hours=2 + i)
        accession = f"ACC{now:%Y%m%d}{i + 1:04d}"
        exams.append(
            {
                "order_id": f"CMD{now:%Y%m%d}{i + 1:04d}",
                "accession_number": accession,
                "study_instance_uid": f"1.2.250.1.999.2.{now:%Y%m%d}.{i + 1}",
                "ipp": ipp,
                "requester_rpps": REQUESTERS[profile.requester]["rpps"],
                "modality": modality,
                "exam_code": loinc,
                "exam_label": label,
                "ccam_code": ccam,
                "started_at": started.isoformat(),
                "ended_at": (started + dt.timedelta(minutes=20)).isoformat(),
            }
        )
        item: dict[str, Any] = {
            "id": f"CR-{now:%Y%m%d}-{i + 1:04d}",
            "accession_number": accession,
            "title": label,
            "body": f"Indication : {indication}\nRésultats : {findings}",
            "conclusion": conclusion,
            "author_rpps": RADIOLOGISTS[i % len(RADIOLOGISTS)]["rpps"],
            "status": profile.report_status,
            "recipients": [SPECIALISTS[k]["rpps"] for k in profile.copies],
        }
        if profile.report_status == "provisional":
            item["provisional_since"] = (now - dt.timedelta(hours=72)).isoformat()
        item.update({flag: True for flag in profile.flags})
        items.append(item)
    return {
        "correspondents": [dict(c) for c in (*RADIOLOGISTS, *REQUESTERS, *SPECIALISTS)],
        "patients": patients,
        "exams": exams,
        "reports": items,
    }


def validator_for(report: dict[str, Any]) -> str:
    """The demo's radiologist validates her own reports."""
    return report["author_rpps"]


CORRECTION = "\nAddendum : mesure corrigée après relecture ; conclusion inchangée."


def follow_ups(data: dict[str, Any]) -> tuple[str | None, str | None]:
    """What the demo does after the first wave: (the report whose announcement it records, the report it
    replaces with a corrected text): the first announcement case, and the first case (PROFILES[0], a
    qualified identity with a copy to a specialist, so the replacement reaches every channel)."""
    items = data["reports"]
    announced = next((item["id"] for item in items if item.get("announcement_required")), None)
    return announced, items[0]["id"] if items else None
