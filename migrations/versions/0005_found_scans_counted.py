"""found-item scans counted per label and window; a note when the desk handles them

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 04:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('found_reports') as batch:
        batch.add_column(sa.Column('last_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('scans', sa.Integer(), server_default='1', nullable=False))
        batch.add_column(sa.Column('handled_note', sa.Text(), nullable=True))
    op.execute("UPDATE found_reports SET last_at = at")
    with op.batch_alter_table('found_reports') as batch:
        batch.alter_column('last_at', existing_type=sa.DateTime(), nullable=False)
        batch.create_index('ix_found_reports_open', ['item_id', 'handled_at'])


def downgrade() -> None:
    with op.batch_alter_table('found_reports') as batch:
        batch.drop_index('ix_found_reports_open')
        batch.drop_column('handled_note')
        batch.drop_column('scans')
        batch.drop_column('last_at')
