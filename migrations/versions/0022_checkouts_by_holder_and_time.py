"""a person's check-outs by time, and the hand-over events by check-out: the take-out form's prefill (their last
own trip, not one handed to them) reads the newest first and asks about hand-overs by check-out

Without them, every scan of a free item sorted the person's whole history and, for the newest, went through every
hand-over event of the trail.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_checkouts_holder_trips', 'checkouts', ['holder_id', 'out_at', 'id'])
    op.create_index('ix_events_handover_checkouts', 'events', ['checkout_id'],
                    sqlite_where=sa.text("action = 'handover'"), postgresql_where=sa.text("action = 'handover'"))


def downgrade() -> None:
    op.drop_index('ix_events_handover_checkouts', table_name='events')
    op.drop_index('ix_checkouts_holder_trips', table_name='checkouts')
