"""reminder channel: reminder mails to the site's radiologists are deliveries of their own (RIS.CRR.06)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ("dmp", "mss-ps", "mss-patient", "hl7")
NEW = (*OLD, "reminder")
TABLES = ("delivery", "partnerexchange")


def _channel(values: tuple[str, ...]) -> sa.Enum:
    return sa.Enum(*values, name="ck_channel_values", native_enum=False, create_constraint=True, length=24)


def _alter(old: tuple[str, ...], new: tuple[str, ...]) -> None:
    # The CHECK constraint belongs to the column type: altering the type drops the old constraint and
    # creates the new one (SQLite: batch mode recreates the table).
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                "channel", existing_type=_channel(old), type_=_channel(new), existing_nullable=False
            )


def upgrade() -> None:
    _alter(OLD, NEW)


def downgrade() -> None:
    op.execute(
        "DELETE FROM deliveryevent WHERE delivery_id IN (SELECT id FROM delivery WHERE channel = 'reminder')"
    )
    op.execute("DELETE FROM delivery WHERE channel = 'reminder'")
    _alter(NEW, OLD)
