"""inbox_access: inbox sign-in, sessions, tokens and the reading log

Accounts can be disabled and are no longer locked (sign-in is throttled instead, bot.inbox.signin); API tokens
expire and have a scope; every showing of a conversation's messages is logged in conversation_reads.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_SCOPE = sa.Enum("read", "write", name="tokenscope", native_enum=False, length=16)
READ_VIA = sa.Enum("page", "poll", "api", "export", name="readvia", native_enum=False, length=16)
# Tokens issued before expiry existed: they could write, and they get the default lifetime from today.
EXISTING_TOKENS_LAST = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("locked_until")
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("scope", TOKEN_SCOPE, nullable=False, server_default="write"))
    tokens = sa.table("api_tokens", sa.column("expires_at", sa.DateTime(timezone=True)))
    op.execute(tokens.update().values(expires_at=datetime.now(UTC) + EXISTING_TOKENS_LAST))
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("scope", existing_type=TOKEN_SCOPE, server_default=None)
    op.create_table(
        "conversation_reads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", READ_VIA, nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_conversation_reads_account_id", "conversation_reads", ["account_id"])
    op.create_index("ix_conversation_reads_conversation_id", "conversation_reads", ["conversation_id"])
    op.create_index("ix_conversation_reads_read_at", "conversation_reads", ["read_at"])


def downgrade() -> None:
    op.drop_index("ix_conversation_reads_read_at", table_name="conversation_reads")
    op.drop_index("ix_conversation_reads_conversation_id", table_name="conversation_reads")
    op.drop_index("ix_conversation_reads_account_id", table_name="conversation_reads")
    op.drop_table("conversation_reads")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("scope")
        batch.drop_column("expires_at")
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True))
        batch.drop_column("disabled_at")
