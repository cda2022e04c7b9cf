"""outbound identity feed outbox: PAM-FR A31 / A47 waiting for (or done with) the PFI (INS rule 27)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 18:51:45.868475
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "outboundmessage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("destination", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("message_type", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=False),
        sa.Column("control_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "acknowledged",
                "failed",
                name="ck_status_values",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("attempts >= 0", name="ck_outbound_attempts"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patient.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("control_id"),
    )
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outboundmessage_destination"), ["destination"], unique=False)
        batch_op.create_index(batch_op.f("ix_outboundmessage_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outboundmessage_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outboundmessage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outboundmessage_status"))
        batch_op.drop_index(batch_op.f("ix_outboundmessage_patient_id"))
        batch_op.drop_index(batch_op.f("ix_outboundmessage_destination"))

    op.drop_table("outboundmessage")
