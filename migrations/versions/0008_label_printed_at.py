"""when each label was last put into a label file (PDF, PNG, raster, or sent to the printer)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 06:40:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('label_tokens') as batch:
        batch.add_column(sa.Column('printed_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('label_tokens') as batch:
        batch.drop_column('printed_at')
