"""patient refusals: stored at patient level, timestamped and attributed, with a per-report override
(mssante.md §4, RIS.MSS.21, RIS.MSS.25)

The report's two refusal columns become nullable overrides: an existing True stays a refusal of this report;
an existing False becomes None, so that the patient's own refusals apply. The downgrade folds each
patient's current refusal back into the reports that followed it, so that no refusal is lost.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"refuse_mss_patient": "mss-patient", "refuse_mss_ps": "mss-ps"}


def upgrade() -> None:
    op.create_table(
        "patientrefusal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "mss-patient",
                "mss-ps",
                name="ck_channel_values",
                native_enum=False,
                create_constraint=True,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("patientrefusal", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_patientrefusal_patient_id"), ["patient_id"], unique=False)

    with op.batch_alter_table("report", schema=None) as batch_op:
        for column in COLUMNS:
            batch_op.alter_column(column, existing_type=sa.Boolean(), nullable=True)
        batch_op.add_column(
            sa.Column("refusal_override_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True)
        )
        batch_op.add_column(
            sa.Column("refusal_override_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True)
        )
    for column in COLUMNS:
        # False meant "no refusal on this report": from now on it follows the patient's refusal.
        op.execute(f"UPDATE report SET {column} = NULL WHERE NOT {column}")


def downgrade() -> None:
    for column, channel in COLUMNS.items():
        # A report that followed its patient keeps the patient's current refusal (the latest row).
        op.execute(
            f"UPDATE report SET {column} = COALESCE(("
            "SELECT patientrefusal.refused FROM patientrefusal JOIN exam ON exam.patient_id = "
            "patientrefusal.patient_id WHERE exam.id = report.exam_id AND patientrefusal.channel = "
            f"'{channel}' ORDER BY patientrefusal.id DESC LIMIT 1), {_false()}) WHERE {column} IS NULL"
        )
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_column("refusal_override_at")
        batch_op.drop_column("refusal_override_by")
        for column in COLUMNS:
            batch_op.alter_column(column, existing_type=sa.Boolean(), nullable=False)

    with op.batch_alter_table("patientrefusal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patientrefusal_patient_id"))
    op.drop_table("patientrefusal")


def _false() -> str:
    return "false" if op.get_bind().dialect.name == "postgresql" else "0"
