"""reliability: the audit trail becomes append-only in the database and hash-chained, with the OS user
and host beside the declared actor

Existing entries are chained in id order with the digest of ris.store.audit_chain before the triggers
are created. A later migration that recreates `auditentry` (SQLite batch mode) must create the triggers
again.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from ris.store.audit_chain import GENESIS, entry_digest

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit trail is append-only"
SQLITE_TRIGGERS = [
    f"CREATE TRIGGER auditentry_no_{verb.lower()} BEFORE {verb} ON auditentry "
    f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
    for verb in ("UPDATE", "DELETE")
]
POSTGRES_TRIGGERS = [
    "CREATE FUNCTION ris_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN RAISE EXCEPTION '{REFUSAL}'; END $$",
    "CREATE TRIGGER auditentry_append_only BEFORE UPDATE OR DELETE ON auditentry "
    "FOR EACH ROW EXECUTE FUNCTION ris_audit_append_only()",
    "CREATE TRIGGER auditentry_no_truncate BEFORE TRUNCATE ON auditentry "
    "FOR EACH STATEMENT EXECUTE FUNCTION ris_audit_append_only()",
]
COLUMNS = {"os_user": 64, "host": 128, "prev_hash": 64, "entry_hash": 64}


def upgrade() -> None:
    with op.batch_alter_table("auditentry") as batch:
        for name, length in COLUMNS.items():
            batch.add_column(sa.Column(name, sqlmodel.sql.sqltypes.AutoString(length=length), nullable=True))
    _chain_existing_entries()
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRES_TRIGGERS if postgres else SQLITE_TRIGGERS:
        op.execute(statement)


def _chain_existing_entries() -> None:
    table = sa.table(
        "auditentry",
        *(sa.column(c) for c in ("id", "actor", "action", "object_type", "object_id", *COLUMNS)),
        sa.column("at", sa.DateTime()),
        sa.column("detail", sa.JSON()),
    )
    connection = op.get_bind()
    prev = GENESIS
    for row in connection.execute(sa.select(table).order_by(table.c.id)).mappings().all():
        digest = entry_digest(
            prev,
            at=row["at"],
            actor=row["actor"],
            action=row["action"],
            object_type=row["object_type"],
            object_id=row["object_id"],
            detail=row["detail"],
            os_user=None,
            host=None,
        )
        connection.execute(
            table.update().where(table.c.id == row["id"]).values(prev_hash=prev, entry_hash=digest)
        )
        prev = digest


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER auditentry_no_truncate ON auditentry")
        op.execute("DROP TRIGGER auditentry_append_only ON auditentry")
        op.execute("DROP FUNCTION ris_audit_append_only()")
    else:
        op.execute("DROP TRIGGER auditentry_no_update")
        op.execute("DROP TRIGGER auditentry_no_delete")
    with op.batch_alter_table("auditentry") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
