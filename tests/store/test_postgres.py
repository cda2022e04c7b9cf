"""The same schema and constraints on PostgreSQL, the path for real sites (private cluster on loopback)."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

from ris.store import db
from tests import factories

pytestmark = pytest.mark.slow


def test_migrations_match_the_models_on_postgresql(pg_url):
    with db.get_engine(pg_url).connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), SQLModel.metadata) == []


def test_constraints_hold_on_postgresql(pg_url):
    with db.session_scope(pg_url) as session:
        bundle = factories.validated_report(session)
        assert bundle.version.version == 1
    with pytest.raises(IntegrityError, match="ins_matricule_with_oid"), db.session_scope(pg_url) as session:
        factories.patient(session, qualified=False, ins_matricule="279035121518989")


def test_refusal_migration_round_trip_on_postgresql(pg_url):
    """0007: report refusals become overrides, and a downgrade folds patient refusals back (none lost)."""
    from tests.store.test_refusal_migration import round_trip

    round_trip(pg_url)
