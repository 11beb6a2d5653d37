"""telegram_dedup: inbound Telegram messages stored under their update id move to a legacy namespace

Telegram messages were kept once by their update id (external_id "<update id>", dedup_key
"telegram:<update id>"); they are now kept once by the message itself ("<chat id>:<message id>",
"<chat id>:<message id>:<edit date>", "cb:<callback query id>"). The message id of the old rows was not stored,
so they cannot be given the new key: they become "update:<update id>" (dedup_key "telegram:update:<update id>"),
which says what they were, keeps dedup_key = "<channel>:<external_id>" as every other row has it, and never
meets a new key (a chat id is a number, never "update"). Only the rows of the old shape (no ":" in the id) move,
so running the upgrade over new rows changes nothing; the downgrade gives the old rows their old keys back.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEGACY = "update:"

messages = sa.table(
    "messages",
    sa.column("channel", sa.String()),
    sa.column("direction", sa.String()),
    sa.column("external_id", sa.String()),
    sa.column("dedup_key", sa.String()),
)
inbound_telegram = sa.and_(messages.c.channel == "telegram", messages.c.direction == "in")


def upgrade() -> None:
    old_shape = sa.and_(
        inbound_telegram,
        messages.c.external_id.is_not(None),
        messages.c.external_id.not_like("%:%"),
    )
    op.execute(
        messages.update()
        .where(old_shape)
        .values(
            # Both right-hand sides read the row as it was (SQL evaluates every SET against the old row).
            external_id=sa.literal(LEGACY) + messages.c.external_id,
            dedup_key=sa.case(
                (messages.c.dedup_key.is_(None), sa.null()),
                else_=sa.literal(f"telegram:{LEGACY}") + messages.c.external_id,
            ),
        )
    )


def downgrade() -> None:
    update_id = sa.func.substr(messages.c.external_id, len(LEGACY) + 1)
    op.execute(
        messages.update()
        .where(inbound_telegram, messages.c.external_id.like(f"{LEGACY}%"))
        .values(
            external_id=update_id,
            dedup_key=sa.case(
                (messages.c.dedup_key.is_(None), sa.null()),
                else_=sa.literal("telegram:") + update_id,
            ),
        )
    )
