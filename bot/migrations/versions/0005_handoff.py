"""handoff to caseworkers: organisations, accounts, sessions, API tokens, the audit, notes

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUS = sa.Enum("bot", "waiting", "assigned", "resolved", name="handoffstatus", native_enum=False, length=16)
ROLE = sa.Enum("coordinator", "caseworker", "admin", name="role", native_enum=False, length=16)
# The two Actiris teams routing needs from the start; partners are added with `python -m bot accounts create-org`.
ACTIRIS_TEAMS = [("Actiris youth team", "actiris"), ("Actiris anti-discrimination", "actiris_discrimination")]


def upgrade() -> None:
    organisations = op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("key"),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", ROLE, nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_api_tokens_account_id", "api_tokens", ["account_id"])
    op.create_table(
        "inbox_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_inbox_sessions_account_id", "inbox_sessions", ["account_id"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("handoff_status", STATUS, nullable=False, server_default="bot"))
        batch.add_column(sa.Column("urgent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("organisation_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("flags", sa.String(length=120), nullable=True))
        batch.create_foreign_key(
            "fk_conversations_organisation", "organisations", ["organisation_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_foreign_key("fk_conversations_assignee", "accounts", ["assignee_id"], ["id"], ondelete="SET NULL")
        batch.create_index("ix_conversations_handoff_status", ["handoff_status"])
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("author_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_messages_author", "accounts", ["author_id"], ["id"], ondelete="SET NULL")
    op.create_table(
        "handoff_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("from_status", STATUS, nullable=False),
        sa.Column("to_status", STATUS, nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["actor_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["assignee_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_handoff_events_conversation_id", "handoff_events", ["conversation_id"])
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notes_conversation_id", "notes", ["conversation_id"])
    now = datetime.now(UTC)
    op.bulk_insert(organisations, [{"name": name, "key": key, "created_at": now} for name, key in ACTIRIS_TEAMS])


def downgrade() -> None:
    op.drop_index("ix_notes_conversation_id", table_name="notes")
    op.drop_table("notes")
    op.drop_index("ix_handoff_events_conversation_id", table_name="handoff_events")
    op.drop_table("handoff_events")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint("fk_messages_author", type_="foreignkey")
        batch.drop_column("author_id")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_handoff_status")
        batch.drop_constraint("fk_conversations_assignee", type_="foreignkey")
        batch.drop_constraint("fk_conversations_organisation", type_="foreignkey")
        for column in ("flags", "waiting_since", "assignee_id", "organisation_id", "urgent", "handoff_status"):
            batch.drop_column(column)
    op.drop_index("ix_inbox_sessions_account_id", table_name="inbox_sessions")
    op.drop_table("inbox_sessions")
    op.drop_index("ix_api_tokens_account_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    op.drop_table("accounts")
    op.drop_table("organisations")
