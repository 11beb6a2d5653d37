"""appointments and their reminders; outbound attachments and templates

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("attachment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("template", sa.Text(), nullable=True))
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("organisation", sa.String(length=40), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("seat", sa.Integer(), nullable=True),
        sa.Column("status", sa.Enum("booked", "cancelled", name="appointmentstatus", native_enum=False, length=16),
                  nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback", sa.String(length=16), nullable=True),
        sa.Column("feedback_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("uid"),
        sa.UniqueConstraint("organisation", "starts_at", "seat", name="uq_appointment_seat"),
    )
    op.create_index("ix_appointments_user_id", "appointments", ["user_id"], unique=False)
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Enum("day_before", "two_hours", "follow_up", name="reminderkind", native_enum=False,
                                  length=16), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Enum("pending", "sent", "cancelled", "skipped", name="reminderstatus",
                                    native_enum=False, length=16), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["appointment_id"], ["appointments.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("appointment_id", "kind", name="uq_reminder_kind"),
    )
    op.create_index("ix_reminders_status_due", "reminders", ["status", "due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_reminders_status_due", table_name="reminders")
    op.drop_table("reminders")
    op.drop_index("ix_appointments_user_id", table_name="appointments")
    op.drop_table("appointments")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("template")
        batch.drop_column("attachment")
