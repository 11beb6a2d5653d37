"""nudges: planned messages the assistant sends first, opt-outs per topic, paused campaigns, unreachable channels

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NUDGE_STATUS = sa.Enum(
    "pending", "sent", "answered", "cancelled", "skipped", name="nudgestatus", native_enum=False, length=16
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("my_actiris_done_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("plan", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("plan_started_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("nudges_paused_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("channel_identities") as batch:
        batch.add_column(sa.Column("unreachable_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "nudges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("campaign", sa.String(length=40), nullable=False),
        sa.Column("step", sa.String(length=40), nullable=False),
        sa.Column("anchor_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", NUDGE_STATUS, nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("answer", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "campaign", "step", "anchor_at", name="uq_nudge_step"),
    )
    op.create_index("ix_nudges_status_due", "nudges", ["status", "due_at"])
    op.create_index("ix_nudges_user_id", "nudges", ["user_id"])
    op.create_table(
        "nudge_opt_outs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("topic", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "topic", name="uq_nudge_opt_out"),
    )
    op.create_index("ix_nudge_opt_outs_user_id", "nudge_opt_outs", ["user_id"])
    op.create_table(
        "campaign_pauses",
        sa.Column("campaign", sa.String(length=40), nullable=False),
        sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paused_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["paused_by"], ["accounts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("campaign"),
    )


def downgrade() -> None:
    op.drop_table("campaign_pauses")
    op.drop_index("ix_nudge_opt_outs_user_id", table_name="nudge_opt_outs")
    op.drop_table("nudge_opt_outs")
    op.drop_index("ix_nudges_user_id", table_name="nudges")
    op.drop_index("ix_nudges_status_due", table_name="nudges")
    op.drop_table("nudges")
    with op.batch_alter_table("channel_identities") as batch:
        batch.drop_column("unreachable_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("nudges_paused_at")
        batch.drop_column("plan_started_at")
        batch.drop_column("plan")
        batch.drop_column("my_actiris_done_at")
