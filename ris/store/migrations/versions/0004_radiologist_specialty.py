"""radiologist specialty: the JDV_J01 code printed as author / legal authenticator in the CDA

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 19:12:21.454285
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("correspondent", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("specialty_code", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("correspondent", schema=None) as batch_op:
        batch_op.drop_column("specialty_code")
