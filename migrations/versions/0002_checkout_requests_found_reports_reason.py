"""checkout requests, found reports, reason

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 10:11:56.377349
"""

from alembic import op
import sqlalchemy as sa



revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('found_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('contact', sa.String(length=200), nullable=True),
    sa.Column('source', sa.String(length=64), nullable=True),
    sa.Column('handled_at', sa.DateTime(), nullable=True),
    sa.Column('handled_by_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['handled_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('found_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_found_reports_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_found_reports_item_id'), ['item_id'], unique=False)

    op.create_table('checkout_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('requested_at', sa.DateTime(), nullable=False),
    sa.Column('due_at', sa.DateTime(), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('destination', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'denied', 'cancelled', name='request_status', native_enum=False, length=16), nullable=False),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.String(length=200), nullable=True),
    sa.Column('checkout_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], ),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('checkout_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkout_requests_item_id'), ['item_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkout_requests_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index('uq_checkout_requests_one_pending_per_item', ['item_id'], unique=True, sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))

    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reason', sa.String(length=200), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.drop_column('reason')

    with op.batch_alter_table('checkout_requests', schema=None) as batch_op:
        batch_op.drop_index('uq_checkout_requests_one_pending_per_item', sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
        batch_op.drop_index(batch_op.f('ix_checkout_requests_requester_id'))
        batch_op.drop_index(batch_op.f('ix_checkout_requests_item_id'))

    op.drop_table('checkout_requests')
    with op.batch_alter_table('found_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_found_reports_item_id'))
        batch_op.drop_index(batch_op.f('ix_found_reports_at'))

    op.drop_table('found_reports')
