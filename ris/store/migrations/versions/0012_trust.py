"""receipts and requests of the trust work (issue 22)

- `appliedreceipt`: each receipt applied to a copy, once per copy, kind and message it names (a replay
  under a new MSH-10 changes nothing);
- `retryrequest`: an administrator's retry as `ris delivery retry` recorded it (who, why, what, the new
  address if any): the `delivery-retry` run carries only its id.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

CHANNELS = ("dmp", "mss-ps", "mss-patient", "hl7", "reminder")


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _enum(values: tuple[str, ...], column: str) -> sa.Enum:
    return sa.Enum(*values, name=f"ck_{column}_values", native_enum=False, create_constraint=True, length=24)


def _when() -> sqlmodel.sql.sqltypes.UTCDateTime:
    return sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "appliedreceipt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("kind", _text(8), nullable=False),
        sa.Column("message_key", _text(64), nullable=False),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("applied_at", _when(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["delivery.id"]),
        sa.ForeignKeyConstraint(["inbound_message_id"], ["inboundmessage.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("delivery_id", "kind", "message_key", name="uq_appliedreceipt_once"),
    )
    op.create_table(
        "retryrequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("requested_at", _when(), nullable=False),
        sa.Column("actor", _text(64), nullable=False),
        sa.Column("reason", _text(200), nullable=False),
        sa.Column("delivery_ids", sa.JSON(), nullable=True),
        sa.Column("report_id", _text(64), nullable=True),
        sa.Column("channel", _enum(CHANNELS, "channel"), nullable=True),
        sa.Column("since", sa.Date(), nullable=True),
        sa.Column("new_address", _text(254), nullable=True),
        sa.Column("run_id", _text(36), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("retryrequest")
    op.drop_table("appliedreceipt")
