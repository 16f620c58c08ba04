"""the media register's life of an item (who registered it, encryption method, storage place, disposal),
erasure confirmed at return, and My Number as a data class

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 07:30:00

My Number (`my_number`) needs no schema change: data classes are stored as strings without a CHECK.
Going down turns My Number items and incidents into `sensitive`, the class the older code knows that is
closest to it, so nothing it reads is unknown to it. Existing items get `registered_by` from the audit
trail's `item_created` event.
"""

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.add_column(sa.Column('registered_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('encryption_method', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('storage_place', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('disposed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('disposal_method', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('disposed_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('disposal_contractor', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('disposal_certificate', sa.String(length=100), nullable=True))
        batch.create_foreign_key('fk_items_registered_by_id_users', 'users', ['registered_by_id'], ['id'])
        batch.create_foreign_key('fk_items_disposed_by_id_users', 'users', ['disposed_by_id'], ['id'])
    with op.batch_alter_table('checkouts') as batch:
        batch.add_column(sa.Column('erasure', sa.Enum('erased', 'nothing_written', 'pending', 'inspected',
                                                      name='erasure', native_enum=False, length=16), nullable=True))
        batch.add_column(sa.Column('erasure_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('erasure_method', sa.String(length=100), nullable=True))
        batch.add_column(sa.Column('erasure_by_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_checkouts_erasure_by_id_users', 'users', ['erasure_by_id'], ['id'])
    op.execute(sa.text(
        "UPDATE items SET registered_by_id = (SELECT e.actor_id FROM events e WHERE e.item_id = items.id "
        "AND e.action = 'item_created' ORDER BY e.id LIMIT 1)"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE items SET data_class = 'sensitive' WHERE data_class = 'my_number'"))
    op.execute(sa.text("UPDATE incidents SET data_class = 'sensitive' WHERE data_class = 'my_number'"))
    with op.batch_alter_table('checkouts') as batch:
        batch.drop_constraint('fk_checkouts_erasure_by_id_users', type_='foreignkey')
        batch.drop_column('erasure_by_id')
        batch.drop_column('erasure_method')
        batch.drop_column('erasure_at')
        batch.drop_column('erasure')
    with op.batch_alter_table('items') as batch:
        batch.drop_constraint('fk_items_disposed_by_id_users', type_='foreignkey')
        batch.drop_constraint('fk_items_registered_by_id_users', type_='foreignkey')
        for column in ('disposal_certificate', 'disposal_contractor', 'disposed_by_id', 'disposal_method',
                       'disposed_at', 'storage_place', 'encryption_method', 'registered_by_id'):
            batch.drop_column(column)
