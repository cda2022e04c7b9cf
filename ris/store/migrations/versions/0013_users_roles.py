"""users and roles (issue 24): who may act (habilitations), the automatic INSi verification of every INS
received from another identification domain, and the identity-vigilance worklist people see

- `risuser` / `userrole`: the engine's users (RPPS, ADELI or local id) and the roles they hold;
- `insverification`: a foreign INS kept apart from the identity until INSi verifies it (rules 30, 51, 52);
- `worklistitem`: what raised an item (message, verification), how and why it was resolved, when its age
  was alerted;
- `partnerexchange.channel`: a contextual call is an exchange of the INS too (rule 31).

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None

CHANNELS = ("dmp", "mss-ps", "mss-patient", "hl7", "reminder")
EXCHANGE_CHANNELS = (*CHANNELS, "context-call")
WORKLIST_TEXT = {"source": 200, "resolution": 32, "resolution_note": 500}


def _enum(values: tuple[str, ...], column: str) -> sa.Enum:
    return sa.Enum(*values, name=f"ck_{column}_values", native_enum=False, create_constraint=True, length=24)


def _text(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _when() -> sqlmodel.sql.sqltypes.UTCDateTime:
    return sqlmodel.sql.sqltypes.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "risuser",
        sa.Column("id", _text(32), nullable=False),
        sa.Column("kind", _enum(("rpps", "adeli", "local"), "kind"), nullable=False),
        sa.Column("name", _text(100), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("created_by", _text(32), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "userrole",
        sa.Column("user_id", _text(32), nullable=False),
        sa.Column("role", _text(32), nullable=False),
        sa.Column("granted_at", _when(), nullable=False),
        sa.Column("granted_by", _text(32), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["risuser.id"]),
        sa.PrimaryKeyConstraint("user_id", "role"),
    )
    op.create_table(
        "insverification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("inbound_message_id", sa.Integer(), nullable=False),
        sa.Column("matricule", _text(15), nullable=False),
        sa.Column("oid", _text(64), nullable=False),
        sa.Column("traits", sa.JSON(), nullable=False),
        sa.Column("source", _text(200), nullable=False),
        sa.Column("update_known", sa.Boolean(), nullable=False),
        sa.Column("qualify", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            _enum(("pending", "verified", "refused", "failed", "conflict"), "status"),
            nullable=False,
        ),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", _text(500), nullable=True),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.CheckConstraint("length(matricule) = 15", name="ck_insverification_matricule_length"),
        sa.ForeignKeyConstraint(["inbound_message_id"], ["inboundmessage.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patient.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("patient_id", "inbound_message_id", name="uq_insverification_message"),
    )
    with op.batch_alter_table("insverification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insverification_patient_id"), ["patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_insverification_status"), ["status"], unique=False)

    with op.batch_alter_table("worklistitem", schema=None) as batch_op:
        for name, length in WORKLIST_TEXT.items():
            batch_op.add_column(sa.Column(name, _text(length), nullable=True))
        batch_op.add_column(sa.Column("inbound_message_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("verification_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("alerted_at", _when(), nullable=True))
        batch_op.create_foreign_key(
            "fk_worklistitem_inbound_message_id", "inboundmessage", ["inbound_message_id"], ["id"]
        )
        batch_op.create_foreign_key(
            "fk_worklistitem_verification_id", "insverification", ["verification_id"], ["id"]
        )

    # The CHECK constraint belongs to the column type (as in 0006): altering the type replaces it.
    with op.batch_alter_table("partnerexchange", schema=None) as batch_op:
        batch_op.alter_column(
            "channel",
            existing_type=_enum(CHANNELS, "channel"),
            type_=_enum(EXCHANGE_CHANNELS, "channel"),
            existing_nullable=False,
        )


def downgrade() -> None:
    op.execute("DELETE FROM partnerexchange WHERE channel = 'context-call'")
    with op.batch_alter_table("partnerexchange", schema=None) as batch_op:
        batch_op.alter_column(
            "channel",
            existing_type=_enum(EXCHANGE_CHANNELS, "channel"),
            type_=_enum(CHANNELS, "channel"),
            existing_nullable=False,
        )
    with op.batch_alter_table("worklistitem", schema=None) as batch_op:
        batch_op.drop_constraint("fk_worklistitem_verification_id", type_="foreignkey")
        batch_op.drop_constraint("fk_worklistitem_inbound_message_id", type_="foreignkey")
        for name in ("alerted_at", "verification_id", "inbound_message_id", *reversed(WORKLIST_TEXT)):
            batch_op.drop_column(name)
    with op.batch_alter_table("insverification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_insverification_status"))
        batch_op.drop_index(batch_op.f("ix_insverification_patient_id"))
    op.drop_table("insverification")
    op.drop_table("userrole")
    op.drop_table("risuser")
