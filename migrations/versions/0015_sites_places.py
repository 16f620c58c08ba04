"""sites (offices with their own clock) and storage places; items' site, home place and last count; people's site

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 01:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sites',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.Column('timezone', sa.String(length=64), nullable=False),
                    sa.Column('day_end', sa.Time(), nullable=False),
                    sa.Column('late_sweeps', sa.String(length=100), nullable=True),
                    sa.Column('desk_emails', sa.Text(), nullable=True),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('name'))
    op.create_table('storage_places',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('site_id', sa.Integer(), nullable=True),
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.Column('retired_at', sa.DateTime(), nullable=True),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.ForeignKeyConstraint(['site_id'], ['sites.id'], name='fk_storage_places_site_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_storage_places_site_id', 'storage_places', ['site_id'])
    op.create_index('uq_storage_places_site_name', 'storage_places', ['site_id', 'name'], unique=True)
    op.create_index('uq_storage_places_main_name', 'storage_places', ['name'], unique=True,
                    sqlite_where=sa.text('site_id IS NULL'), postgresql_where=sa.text('site_id IS NULL'))
    with op.batch_alter_table('items') as batch:
        batch.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('home_place_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('last_counted_at', sa.DateTime(), nullable=True))
        batch.create_foreign_key('fk_items_site_id', 'sites', ['site_id'], ['id'])
        batch.create_foreign_key('fk_items_home_place_id', 'storage_places', ['home_place_id'], ['id'])
        batch.create_index('ix_items_site_id', ['site_id'])
        batch.create_index('ix_items_home_place_id', ['home_place_id'])
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_users_site_id', 'sites', ['site_id'], ['id'])
        batch.create_index('ix_users_site_id', ['site_id'])


def downgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.drop_index('ix_users_site_id')
        batch.drop_constraint('fk_users_site_id', type_='foreignkey')
        batch.drop_column('site_id')
    with op.batch_alter_table('items') as batch:
        batch.drop_index('ix_items_home_place_id')
        batch.drop_index('ix_items_site_id')
        batch.drop_constraint('fk_items_home_place_id', type_='foreignkey')
        batch.drop_constraint('fk_items_site_id', type_='foreignkey')
        batch.drop_column('last_counted_at')
        batch.drop_column('home_place_id')
        batch.drop_column('site_id')
    op.drop_index('uq_storage_places_main_name', table_name='storage_places')
    op.drop_index('uq_storage_places_site_name', table_name='storage_places')
    op.drop_index('ix_storage_places_site_id', table_name='storage_places')
    op.drop_table('storage_places')
    op.drop_table('sites')
