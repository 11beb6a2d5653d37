"""channels and the outbox: retries, held messages, delivery statuses, inbound kinds, deep-link source

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The new message statuses need no change: enums are stored as plain strings without a CHECK constraint.
KINDS = ("text", "button", "location", "media", "edited")


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(length=40), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("last_inbound_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("template_sent_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("kind", sa.Enum(*KINDS, name="inboundkind", native_enum=False, length=16)))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("parts_sent", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("delivery_status", sa.String(length=16), nullable=True))
        batch.create_index("ix_messages_status_due", ["status", "next_attempt_at"], unique=False)
        batch.create_index("ix_messages_external_id", ["external_id"], unique=False)
    op.create_table(
        "delivery_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("external_id", "status", name="uq_delivery_status"),
    )
    op.create_index("ix_delivery_statuses_message_id", "delivery_statuses", ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_delivery_statuses_message_id", table_name="delivery_statuses")
    op.drop_table("delivery_statuses")
    with op.batch_alter_table("messages") as batch:
        batch.drop_index("ix_messages_external_id")
        batch.drop_index("ix_messages_status_due")
        for column in ("delivery_status", "parts_sent", "error", "next_attempt_at", "attempts", "kind"):
            batch.drop_column(column)
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("template_sent_at")
        batch.drop_column("last_inbound_at")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("source")
