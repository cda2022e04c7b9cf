"""Synthetic extractions in the exact format of annuaire.sante.fr, for the tests, the demo and the benchmark:
invented people only, with RPPS numbers in the valid format (11 digits, « 10 » prefix, Luhn key)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

DATA = Path(__file__).with_name("data")
SAMPLE_PERSONS = DATA / "PS_LibreAcces_Personne_activite_synthetique.txt"
SAMPLE_MAILBOXES = DATA / "Extraction_Correspondance_MSSante_synthetique.txt"

# The columns of « PS_LibreAcces_Personne_activite », in the order of the DSFT [ANN1].
PS_HEADER = [
    "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP", "Code civilité d'exercice",
    "Libellé civilité d'exercice", "Code civilité", "Libellé civilité", "Nom d'exercice", "Prénom d'exercice",
    "Code profession", "Libellé profession", "Code catégorie professionnelle",
    "Libellé catégorie professionnelle", "Code type savoir-faire", "Libellé type savoir-faire",
    "Code savoir-faire", "Libellé savoir-faire", "Code mode exercice", "Libellé mode exercice",
    "Numéro SIRET site", "Numéro SIREN site", "Numéro FINESS site", "Numéro FINESS établissement juridique",
    "Identifiant technique de la structure", "Raison sociale site", "Enseigne commerciale site",
    "Complément destinataire (coord. structure)", "Complément point géographique (coord. structure)",
    "Numéro Voie (coord. structure)", "Indice répétition voie (coord. structure)",
    "Code type de voie (coord. structure)", "Libellé type de voie (coord. structure)",
    "Libellé Voie (coord. structure)", "Mention distribution (coord. structure)",
    "Bureau cedex (coord. structure)", "Code postal (coord. structure)", "Code commune (coord. structure)",
    "Libellé commune (coord. structure)", "Code pays (coord. structure)", "Libellé pays (coord. structure)",
    "Téléphone (coord. structure)", "Téléphone 2 (coord. structure)", "Télécopie (coord. structure)",
    "Adresse e-mail (coord. structure)", "Code Département (structure)", "Libellé Département (structure)",
    "Ancien identifiant de la structure", "Autorité d'enregistrement", "Code secteur d'activité",
    "Libellé secteur d'activité", "Code section tableau pharmaciens", "Libellé section tableau pharmaciens",
    "Code rôle", "Libellé rôle", "Code genre activité", "Libellé genre activité",
]  # fmt: skip
MSS_HEADER = [
    "Type de BAL", "Adresse BAL", "Type d'identifiant PP", "Identifiant PP", "Identification nationale PP",
    "Type d'identifiant structure", "Service de rattachement", "Civilité exercice", "Nom d'exercice",
    "Prénom d'exercice", "Catégorie professionnelle", "Libellé catégorie professionnelle", "Code profession",
    "Libellé profession", "Code savoir-faire", "Libellé savoir-faire", "Dématérialisation",
    "Raison sociale structure BAL", "Enseigne commerciale structure BAL", "Code postal structure BAL",
    "Commune structure BAL",
]  # fmt: skip
SYLLABLES = ["BA", "LO", "RU", "MI", "TA", "VE", "NO", "ZI", "CA", "DU", "PE", "RI", "SO", "GA", "LE"]
GIVEN = [
    "Aurèle",
    "Bérénice",
    "Côme",
    "Delphine",
    "Eudes",
    "Faustine",
    "Gaspard",
    "Héloïse",
    "Ivan",
    "Joëlle",
]
CITIES = [("75011", "PARIS"), ("69003", "LYON"), ("13005", "MARSEILLE"), ("63000", "CLERMONT-FERRAND")]
SPECIALTIES = [("SM44", "Radio-diagnostic"), ("SM54", "Médecine générale"), ("SM04", "Cardiologie")]


def luhn_key(digits: str) -> str:
    total = 0
    for i, char in enumerate(reversed(digits)):
        value = int(char) * (2 if i % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


def rpps_number(serial: int) -> str:
    body = f"10{serial:08d}"
    return body + luhn_key(body)


def person_line(
    rpps: str,
    family: str,
    given: str,
    specialty: tuple[str, str],
    city: tuple[str, str],
    structure: int,
    civility: str = "DR",
) -> str:
    values = dict.fromkeys(PS_HEADER, "")
    values.update(
        {
            "Type d'identifiant PP": "8",
            "Identifiant PP": rpps,
            "Identification nationale PP": "8" + rpps,
            "Code civilité d'exercice": civility,
            "Libellé civilité d'exercice": "Docteur" if civility == "DR" else "Professeur",
            "Nom d'exercice": family,
            "Prénom d'exercice": given,
            "Code profession": "10",
            "Libellé profession": "Médecin",
            "Code catégorie professionnelle": "C",
            "Libellé catégorie professionnelle": "Civil",
            "Code type savoir-faire": "S",
            "Libellé type savoir-faire": "Spécialité ordinale",
            "Code savoir-faire": specialty[0],
            "Libellé savoir-faire": specialty[1],
            "Code mode exercice": "L",
            "Libellé mode exercice": "Libéral,indépendant,artisan,commerçant",
            "Numéro SIRET site": f"9{structure:013d}",
            "Identifiant technique de la structure": f"R10{structure:09d}",
            "Raison sociale site": f"CABINET SYNTHETIQUE {structure}",
            "Numéro Voie (coord. structure)": str(structure % 90 + 1),
            "Libellé type de voie (coord. structure)": "Rue",
            "Libellé Voie (coord. structure)": "de l'Exemple",
            "Code postal (coord. structure)": city[0],
            "Libellé commune (coord. structure)": city[1],
            "Code pays (coord. structure)": "99000",
            "Libellé pays (coord. structure)": "France",
            "Autorité d'enregistrement": "CNOM/CNOM/CNOM",
        }
    )
    return "|".join(values[name] for name in PS_HEADER) + "|\n"


def mailbox_line(kind: str, address: str, rpps: str | None, organisation: str) -> str:
    values = dict.fromkeys(MSS_HEADER, "")
    values.update(
        {
            "Type de BAL": kind,
            "Adresse BAL": address,
            "Type d'identifiant PP": "8" if rpps else "",
            "Identifiant PP": rpps or "",
            "Identification nationale PP": "8" + rpps if rpps else "",
            "Dématérialisation": "O",
            "Raison sociale structure BAL": organisation,
        }
    )
    return "|".join(values[name] for name in MSS_HEADER) + "|\n"


def generated_people(count: int, seed: int = 14) -> Iterator[tuple[str, str, str, int]]:
    """(rpps, family, given, activities) of `count` invented professionals."""
    rng = random.Random(seed)
    for serial in range(count):
        family = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        yield rpps_number(50_000_000 + serial), family, rng.choice(GIVEN), rng.choice((1, 1, 1, 2))


def write_generated(out: TextIO, rows: int, seed: int = 14) -> int:
    """About `rows` lines of invented professionals (some with two activities); the number written."""
    out.write("|".join(PS_HEADER) + "|\n")
    written = 0
    rng = random.Random(seed)
    for index, (rpps, family, given, activities) in enumerate(generated_people(rows, seed)):
        for activity in range(activities):
            out.write(
                person_line(
                    rpps, family, given, rng.choice(SPECIALTIES), rng.choice(CITIES), index * 2 + activity
                )
            )
            written += 1
            if written >= rows:
                return written
    return written
