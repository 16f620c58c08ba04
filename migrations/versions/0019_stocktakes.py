"""stock-takes (棚卸): sessions and their counts; flags for items a stock-take found missing (no check-out)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 02:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stocktakes',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('scope', sa.String(length=16), nullable=False),
                    sa.Column('site_id', sa.Integer(), nullable=True),
                    sa.Column('department_id', sa.Integer(), nullable=True),
                    sa.Column('place_id', sa.Integer(), nullable=True),
                    sa.Column('opened_at', sa.DateTime(), nullable=False),
                    sa.Column('opened_by_id', sa.Integer(), nullable=False),
                    sa.Column('closed_at', sa.DateTime(), nullable=True),
                    sa.Column('closed_by_id', sa.Integer(), nullable=True),
                    sa.Column('report_sha256', sa.String(length=64), nullable=True),
                    sa.Column('result', sa.Text(), nullable=True),
                    sa.Column('report_pdf', sa.LargeBinary(), nullable=True),
                    sa.Column('report_csv', sa.LargeBinary(), nullable=True),
                    sa.Column('report_xlsx', sa.LargeBinary(), nullable=True),
                    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name='fk_stocktakes_site_id'),
                    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name='fk_stocktakes_department_id'),
                    sa.ForeignKeyConstraint(['place_id'], ['storage_places.id'], name='fk_stocktakes_place_id'),
                    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], name='fk_stocktakes_opened_by_id'),
                    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name='fk_stocktakes_closed_by_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_stocktakes_closed_at', 'stocktakes', ['closed_at'])
    op.create_table('stocktake_counts',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('stocktake_id', sa.Integer(), nullable=False),
                    sa.Column('item_id', sa.Integer(), nullable=False),
                    sa.Column('counted_by_id', sa.Integer(), nullable=False),
                    sa.Column('counted_at', sa.DateTime(), nullable=False),
                    sa.Column('method', sa.String(length=16), nullable=False),
                    sa.Column('place_id', sa.Integer(), nullable=True),
                    sa.ForeignKeyConstraint(['stocktake_id'], ['stocktakes.id'],
                                            name='fk_stocktake_counts_stocktake_id'),
                    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name='fk_stocktake_counts_item_id'),
                    sa.ForeignKeyConstraint(['counted_by_id'], ['users.id'], name='fk_stocktake_counts_counted_by_id'),
                    sa.ForeignKeyConstraint(['place_id'], ['storage_places.id'], name='fk_stocktake_counts_place_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('uq_stocktake_counts_item', 'stocktake_counts', ['stocktake_id', 'item_id'], unique=True)
    op.create_index('ix_stocktake_counts_item_id', 'stocktake_counts', ['item_id'])
    with op.batch_alter_table('flags') as batch:
        batch.alter_column('checkout_id', existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column('reason', sa.String(length=24), nullable=True))
        batch.add_column(sa.Column('stocktake_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_flags_stocktake_id', 'stocktakes', ['stocktake_id'], ['id'])
    op.create_index('uq_flags_stocktake_item', 'flags', ['stocktake_id', 'item_id'], unique=True,
                    sqlite_where=sa.text('stocktake_id IS NOT NULL'),
                    postgresql_where=sa.text('stocktake_id IS NOT NULL'))


def downgrade() -> None:
    # Flags without a check-out (stock-take findings) cannot live in the older table; incidents opened from them
    # keep their record but lose the link to the flag.
    op.execute("UPDATE incidents SET flag_id = NULL WHERE flag_id IN (SELECT id FROM flags WHERE checkout_id IS NULL)")
    op.execute("DELETE FROM flags WHERE checkout_id IS NULL")
    op.drop_index('uq_flags_stocktake_item', table_name='flags')
    with op.batch_alter_table('flags') as batch:
        batch.drop_constraint('fk_flags_stocktake_id', type_='foreignkey')
        batch.drop_column('stocktake_id')
        batch.drop_column('reason')
        batch.alter_column('checkout_id', existing_type=sa.Integer(), nullable=False)
    op.drop_index('ix_stocktake_counts_item_id', table_name='stocktake_counts')
    op.drop_index('uq_stocktake_counts_item', table_name='stocktake_counts')
    op.drop_table('stocktake_counts')
    op.drop_index('ix_stocktakes_closed_at', table_name='stocktakes')
    op.drop_table('stocktakes')
