"""webchat_abuse: web chat identities, limits and booking caps

The address an appointment was booked from (a keyed hash, new every day) for the per-address cap, and the
triage of urgent flags anyone could have raised by script (unverified: still urgent, after the others).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("appointments") as batch:
        batch.add_column(sa.Column("origin", sa.String(length=32), nullable=True))
        batch.create_index("ix_appointments_origin", ["origin"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("unverified", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("unverified")
    with op.batch_alter_table("appointments") as batch:
        batch.drop_index("ix_appointments_origin")
        batch.drop_column("origin")
