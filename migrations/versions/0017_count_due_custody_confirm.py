"""next counts and custody confirmations: the rules' count interval and confirmation period, check-outs' last
confirmation, prompt and escalation, and the desk's daily count digest, one per site and local day

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('takeout_rules') as batch:
        batch.add_column(sa.Column('count_every_months', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('confirm_every_days', sa.Integer(), nullable=True))
    with op.batch_alter_table('checkouts') as batch:
        batch.add_column(sa.Column('custody_confirmed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('custody_prompted_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('custody_escalated_at', sa.DateTime(), nullable=True))
    op.create_table('count_digests',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('site_id', sa.Integer(), nullable=True),
                    sa.Column('on_date', sa.Date(), nullable=False),
                    sa.Column('items', sa.Integer(), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name='fk_count_digests_site_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('uq_count_digests_site_date', 'count_digests', ['site_id', 'on_date'], unique=True)
    op.create_index('uq_count_digests_main_date', 'count_digests', ['on_date'], unique=True,
                    sqlite_where=sa.text('site_id IS NULL'), postgresql_where=sa.text('site_id IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_count_digests_main_date', table_name='count_digests')
    op.drop_index('uq_count_digests_site_date', table_name='count_digests')
    op.drop_table('count_digests')
    with op.batch_alter_table('checkouts') as batch:
        batch.drop_column('custody_escalated_at')
        batch.drop_column('custody_prompted_at')
        batch.drop_column('custody_confirmed_at')
    with op.batch_alter_table('takeout_rules') as batch:
        batch.drop_column('confirm_every_days')
        batch.drop_column('count_every_months')
