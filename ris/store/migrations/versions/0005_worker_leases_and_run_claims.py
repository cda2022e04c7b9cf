"""worker leases and run claims: one worker at a time per report version, recovery of a dead worker's runs

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "engineworker",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("host", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("engineworker", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_engineworker_lease_until"), ["lease_until"], unique=False)
    op.create_table(
        "runclaim",
        sa.Column("subject", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("worker_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("flow_run_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("claimed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("released_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["worker_id"], ["engineworker.id"]),
        sa.PrimaryKeyConstraint("subject"),
    )
    with op.batch_alter_table("runclaim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_runclaim_worker_id"), ["worker_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runclaim", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_runclaim_worker_id"))
    op.drop_table("runclaim")
    with op.batch_alter_table("engineworker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_engineworker_lease_until"))
    op.drop_table("engineworker")
