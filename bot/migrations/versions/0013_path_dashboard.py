"""path and dashboard: each young person's phase and plan with its audit, reply keys, the inbox's language,
the messages counted per day

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The assistant's "say it another way" replies, which the dashboard counts in a period (bot.models.Message).
NOT_UNDERSTOOD = "direction = 'out' AND key IN ('utter_fallback_rephrase', 'utter_fallback_choices')"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("phase", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("phase_reached", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("plan_outcome", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("plan_ended_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("plan_proposed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_users_created_at", "users", ["created_at"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("key", sa.String(length=64), nullable=True))
    op.create_index("ix_messages_created_at", "messages", ["created_at"])
    op.create_index("ix_messages_status_created_at", "messages", ["status", "created_at"])  # answered, by period
    op.create_index(
        "ix_messages_not_understood_at",
        "messages",
        ["created_at"],
        postgresql_where=sa.text(NOT_UNDERSTOOD),
        sqlite_where=sa.text(NOT_UNDERSTOOD),
    )
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("language", sa.String(length=2), nullable=True))
    op.create_table(
        "path_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("from_phase", sa.Integer(), nullable=False),
        sa.Column("to_phase", sa.Integer(), nullable=False),
        sa.Column("plan", sa.String(length=32), nullable=True),
        sa.Column("plan_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("plan_outcome", sa.String(length=16), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_path_events_user_id", "path_events", ["user_id"])
    op.create_table(
        "message_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("not_understood", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "channel"),
    )


def downgrade() -> None:
    op.drop_table("message_days")
    op.drop_index("ix_path_events_user_id", table_name="path_events")
    op.drop_table("path_events")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("language")
    op.drop_index("ix_messages_not_understood_at", table_name="messages")
    op.drop_index("ix_messages_status_created_at", table_name="messages")
    op.drop_index("ix_messages_created_at", table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("key")
    op.drop_index("ix_users_created_at", table_name="users")
    with op.batch_alter_table("users") as batch:
        for column in ("plan_proposed_at", "plan_ended_at", "plan_outcome", "phase_reached", "phase"):
            batch.drop_column(column)
