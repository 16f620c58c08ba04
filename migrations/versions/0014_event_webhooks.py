"""event webhooks: subscriptions of integrations to audit events, and their deliveries in the outbox

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 23:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('event_webhooks',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.Column('url', sa.String(length=500), nullable=False),
                    sa.Column('secret', sa.String(length=100), nullable=False),
                    sa.Column('events', sa.Text(), nullable=False),
                    sa.Column('active', sa.Boolean(), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('created_by_id', sa.Integer(), nullable=True),
                    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'],
                                            name='fk_event_webhooks_created_by_id'),
                    sa.PrimaryKeyConstraint('id'))
    with op.batch_alter_table('notifications') as batch:
        batch.add_column(sa.Column('subscription_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_notifications_subscription_id', 'event_webhooks', ['subscription_id'], ['id'])
        batch.create_index('ix_notifications_subscription_id', ['subscription_id'])


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE subscription_id IS NOT NULL")
    with op.batch_alter_table('notifications') as batch:
        batch.drop_index('ix_notifications_subscription_id')
        batch.drop_constraint('fk_notifications_subscription_id', type_='foreignkey')
        batch.drop_column('subscription_id')
    op.drop_table('event_webhooks')
