"""delivery unique per action: a deletion or an update of a version is a delivery of its own

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:45:55.781143
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_delivery"), type_="unique")
        batch_op.create_unique_constraint(
            "uq_delivery", ["report_id", "version", "channel", "recipient", "action"]
        )


def downgrade() -> None:
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_constraint("uq_delivery", type_="unique")
        batch_op.create_unique_constraint(
            batch_op.f("uq_delivery"), ["report_id", "version", "channel", "recipient"]
        )
