from tests import factories


def test_factory_builds_a_validated_bundle(session):
    bundle = factories.validated_report(session, copies=2)
    assert bundle.version.version == 1
    assert bundle.version.document_id.startswith("2.25.")
    assert len(bundle.recipients) == 3
