"""audit seals: the hash chain leaves the entries for an insert-only seal table, extended by a sealer

Writers no longer chain an entry when they write it (a global lock inside business transactions, which
deadlocked on PostgreSQL): they only insert it, stamped on PostgreSQL with its transaction's id (column
default), and the sealer of ris.store.audit chains it afterwards. The existing chain moves as it is: one
seal per entry, in id order, with the hashes the entries carried (never recomputed, so a chain broken
before the migration stays broken after it). The seal table gets the append-only triggers of the entries;
on SQLite, dropping the two hash columns recreates `auditentry`, whose triggers are created again.

The downgrade chains every entry again in id order with the same digest (the shape of 0010): verify the
trail before downgrading, the recomputed chain no longer shows what was changed before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-12 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from ris.store.audit_chain import GENESIS, entry_digest

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit trail is append-only"  # the text of 0010's refusals
HASHES = ("prev_hash", "entry_hash")
XACT_ID = "pg_current_xact_id()::text::bigint"  # the writing transaction, for the sealer's order


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        for verb in ("UPDATE", "DELETE")
    ]


def _drop_sqlite_triggers(table: str) -> None:
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_{verb}")


SEAL_POSTGRES_TRIGGERS = [  # the function ris_audit_append_only() comes from 0010
    "CREATE TRIGGER auditseal_append_only BEFORE UPDATE OR DELETE ON auditseal "
    "FOR EACH ROW EXECUTE FUNCTION ris_audit_append_only()",
    "CREATE TRIGGER auditseal_no_truncate BEFORE TRUNCATE ON auditseal "
    "FOR EACH STATEMENT EXECUTE FUNCTION ris_audit_append_only()",
]


def upgrade() -> None:
    postgres = _postgres()
    if postgres:
        # Existing entries get 0 (a constant default fills them without an UPDATE, which the trigger
        # refuses): they come before every transaction to come. New ones get their transaction's id.
        op.add_column("auditentry", sa.Column("xact_id", sa.BigInteger(), server_default="0", nullable=True))
        op.alter_column("auditentry", "xact_id", server_default=sa.text(XACT_ID))
    else:
        op.add_column("auditentry", sa.Column("xact_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "auditseal",
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("xact_id", sa.BigInteger(), nullable=True),
        sa.Column("prev_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("entry_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["auditentry.id"]),
        sa.PrimaryKeyConstraint("position"),
    )
    op.create_index("ix_auditseal_entry_id", "auditseal", ["entry_id"], unique=True)
    op.execute(
        "INSERT INTO auditseal (position, entry_id, xact_id, prev_hash, entry_hash) "
        "SELECT ROW_NUMBER() OVER (ORDER BY id), id, xact_id, COALESCE(prev_hash, ''), "
        "COALESCE(entry_hash, '') FROM auditentry"
    )
    if postgres:
        for column in HASHES:
            op.drop_column("auditentry", column)
        for statement in SEAL_POSTGRES_TRIGGERS:
            op.execute(statement)
    else:
        _drop_sqlite_triggers("auditentry")  # the batch copy below would lose them
        with op.batch_alter_table("auditentry") as batch:
            for column in HASHES:
                batch.drop_column(column)
        for statement in _sqlite_triggers("auditentry") + _sqlite_triggers("auditseal"):
            op.execute(statement)
    op.create_index("ix_auditentry_seal_order", "auditentry", ["xact_id", "id"])


def downgrade() -> None:
    postgres = _postgres()
    op.drop_index("ix_auditentry_seal_order", table_name="auditentry")
    if postgres:
        for name in ("auditseal_no_truncate", "auditseal_append_only"):
            op.execute(f"DROP TRIGGER {name} ON auditseal")
        op.execute("ALTER TABLE auditentry DISABLE TRIGGER auditentry_append_only")
    else:
        _drop_sqlite_triggers("auditseal")
        _drop_sqlite_triggers("auditentry")
    op.drop_index("ix_auditseal_entry_id", table_name="auditseal")
    op.drop_table("auditseal")
    with op.batch_alter_table("auditentry") as batch:
        for column in HASHES:
            batch.add_column(sa.Column(column, sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch.drop_column("xact_id")
    _chain_in_id_order()
    if postgres:
        op.execute("ALTER TABLE auditentry ENABLE TRIGGER auditentry_append_only")
    else:
        for statement in _sqlite_triggers("auditentry"):
            op.execute(statement)


def _chain_in_id_order() -> None:
    columns = ("id", "actor", "action", "object_type", "object_id", "os_user", "host", *HASHES)
    table = sa.table(
        "auditentry",
        *(sa.column(c) for c in columns),
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
            os_user=row["os_user"],
            host=row["host"],
        )
        connection.execute(
            table.update().where(table.c.id == row["id"]).values(prev_hash=prev, entry_hash=digest)
        )
        prev = digest
