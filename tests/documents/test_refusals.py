"""Bad input is refused before any document exists, naming the field and the rule, not the values."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from ris import documents
from ris.documents import DocumentError
from ris.site.settings import SiteSettings
from ris.store.models import IdentityStatus
from ris.store.reports import load_bundle
from tests import factories


def refused(session: Session, settings: SiteSettings, match: str, **kw) -> str:
    bundle = load_bundle(session, factories.validated_report(session).report.id)
    return refused_bundle(bundle, settings, match, **kw)


def refused_bundle(bundle, settings: SiteSettings, match: str, **kw) -> str:
    with pytest.raises(DocumentError, match=match) as caught:
        documents.build(bundle, settings, **kw)
    message = str(caught.value)
    for health_data in ("PAT-TROIS", "DOMINIQUE", "279035121518989", "1979"):
        assert health_data not in message
    return message


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("birth_given_names", None, r"patient\.birth_given_names: required with the INS"),
        ("birth_place_code", "", r"patient\.birth_place_code: .*COG"),
        ("ins_oid", "1.2.250.1.213.1.4.2", r"patient\.ins_oid: not an INS authority OID"),
        ("ins_matricule", "27903512151898X", r"patient\.ins_matricule: must be 13 characters"),
        ("sex", "U", r"patient\.sex: a qualified identity is F or M"),
        ("birth_name", " ", r"patient\.birth_name: missing identity trait"),
    ],
)
def test_qualified_identity_with_missing_or_bad_ins_traits(
    session: Session, settings: SiteSettings, field: str, value, match: str
) -> None:
    bundle = factories.validated_report(session)
    setattr(bundle.patient, field, value)
    refused_bundle(bundle, settings, match)


def test_qualified_status_without_matricule(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session)
    bundle.patient.ins_matricule = None
    bundle.patient.ins_oid = None
    refused_bundle(bundle, settings, r"patient\.ins_matricule: a qualified identity needs")


def test_unqualified_identity_when_the_ins_is_required(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session, qualified=False)
    refused_bundle(bundle, settings, r"patient\.status: identity is PROV, not QUAL.*28", require_ins=True)
    assert documents.build(bundle, settings).document_id == bundle.version.document_id  # rule 28: traits only


def test_missing_validator(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session)
    refused_bundle(
        bundle.__class__(**{**bundle.__dict__, "validator": None}),
        settings,
        r"version\.validator_rpps: .*RIS\.CRR\.01",
    )


def test_validator_without_rpps(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session)
    bundle.validator.rpps = None
    refused_bundle(bundle, settings, r"validator\.rpps: the 11-digit RPPS is required")


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("accession_number", "", r"exam\.accession_number: missing exam data"),
        ("study_instance_uid", "", r"exam\.study_instance_uid: missing exam data"),
        ("study_instance_uid", "1.2.abc", r"exam\.study_instance_uid: must be a DICOM UID"),
        ("exam_code", "CT-HEAD", r"exam\.exam_code: must be a LOINC code"),
        ("modality", "OT", r"exam\.modality: not an imaging modality"),
        ("order_id", " ", r"exam\.order_id: missing exam data"),
    ],
)
def test_missing_or_bad_exam_data(session: Session, settings: SiteSettings, field: str, value, match) -> None:
    bundle = factories.validated_report(session)
    setattr(bundle.exam, field, value)
    refused_bundle(bundle, settings, match)


def test_replacement_without_the_replaced_version(session: Session, settings: SiteSettings) -> None:
    bundle = factories.validated_report(session)
    bundle.version.version = 2
    refused_bundle(bundle, settings, r"version\.previous: .*RPLC")


def test_unqualified_status_values_build_without_ins(session: Session, settings: SiteSettings) -> None:
    for status in (IdentityStatus.PROV, IdentityStatus.RECUP, IdentityStatus.VALI):
        bundle = factories.validated_report(session, qualified=False)
        bundle.patient.status = status
        bundle.patient.ins_matricule = "279035121518989"  # known but not qualified: must not leave
        bundle.patient.ins_oid = "1.2.250.1.213.1.4.10"
        built = documents.build(bundle, settings)
        assert b"279035121518989" not in built.cda
