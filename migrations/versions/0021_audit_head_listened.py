"""the chain's head names the audit actions someone listens to (the event webhooks' chosen ones)

Writers read it with the head they lock anyway, and look for subscriptions only for events of those actions.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_head') as batch:
        batch.add_column(sa.Column('listened', sa.Text(), nullable=False, server_default=''))
    conn = op.get_bind()
    actions = set()
    for (events,) in conn.execute(sa.text("SELECT events FROM event_webhooks WHERE active = :yes"), {"yes": True}):
        actions.update(a for a in (events or "").split(",") if a)
    conn.execute(sa.text("UPDATE audit_head SET listened = :listened"), {"listened": ",".join(sorted(actions))})


def downgrade() -> None:
    with op.batch_alter_table('audit_head') as batch:
        batch.drop_column('listened')
