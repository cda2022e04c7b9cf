"""directory: the Annuaire Santé professionals and their MSSanté mailboxes (RIS.ANN.01–05)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "directoryperson",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rpps", _text(11), nullable=False),
        sa.Column("civility", _text(16), nullable=True),
        sa.Column("family", _text(100), nullable=False),
        sa.Column("given", _text(100), nullable=True),
        sa.Column("family_key", _text(100), nullable=False),
        sa.Column("given_key", _text(100), nullable=True),
        sa.Column("profession_code", _text(8), nullable=True),
        sa.Column("profession", _text(100), nullable=True),
        sa.Column("specialty_code", _text(16), nullable=True),
        sa.Column("specialty", _text(200), nullable=True),
        sa.Column("structures", sa.JSON(), nullable=False),
        sa.Column("content_hash", _text(32), nullable=False),
        sa.Column("import_run", _text(32), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.CheckConstraint("length(rpps) = 11", name="ck_directoryperson_rpps"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rpps"),
    )
    with op.batch_alter_table("directoryperson", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_directoryperson_family_key"), ["family_key"], unique=False)
    op.create_table(
        "directorymailbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", _text(254), nullable=False),
        sa.Column("kind", _text(8), nullable=False),
        sa.Column("rpps", _text(11), nullable=True),
        sa.Column("organisation", _text(200), nullable=True),
        sa.Column("service", _text(200), nullable=True),
        sa.Column("import_run", _text(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("address"),
    )
    with op.batch_alter_table("directorymailbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_directorymailbox_rpps"), ["rpps"], unique=False)


def downgrade() -> None:
    op.drop_table("directorymailbox")
    op.drop_table("directoryperson")
