"""privacy: erasure in two steps (users.erased_at) and the daily count of erasures, linked to nobody

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "erasure_counts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("expired", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )


def downgrade() -> None:
    op.drop_table("erasure_counts")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("erased_at")
