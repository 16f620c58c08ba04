"""the scheduler's lease (one scheduler across hosts) and the duration of the last sweep run

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 07:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('scheduler_leases',
                    sa.Column('name', sa.String(length=40), nullable=False),
                    sa.Column('holder', sa.String(length=200), nullable=False),
                    sa.Column('acquired_at', sa.DateTime(), nullable=False),
                    sa.Column('expires_at', sa.DateTime(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    with op.batch_alter_table('sweeps') as batch:
        batch.add_column(sa.Column('duration_seconds', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sweeps') as batch:
        batch.drop_column('duration_seconds')
    op.drop_table('scheduler_leases')
