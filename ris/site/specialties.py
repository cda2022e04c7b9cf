"""Specialties of the radiologists who author and validate reports: JDV_J01 XdsAuthorSpecialty codes
(codeSystem TRE_R38 `1.2.250.1.213.1.1.4.5`), the imaging subset with their official display names."""

from __future__ import annotations

IMAGING = {
    "G15_10/SM44": "Médecin - Radio-diagnostic (SM)",
    "G15_10/SM55": "Médecin - Radio-diagnostic et Radio-Thérapie (SM)",
    "G15_10/SM74": "Médecin - Radiologie et imagerie médicale (SM)",
    "G15_10/SM80": "Médecin - Médecine cardiovasculaire option imagerie cardio d'expert (SM)",
    "G15_10/SM94": "Médecin - Radiologie imagerie médicale option radiologie interventionnelle avancée (SM)",
}
DEFAULT = "G15_10/SM44"  # when a radiologist's specialty was not recorded
