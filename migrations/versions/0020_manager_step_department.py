"""approval steps of a manager remember whose department's managers decide (the nearest one up with a manager)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('approval_steps') as batch:
        batch.add_column(sa.Column('department_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_approval_steps_department_id', 'departments', ['department_id'], ['id'])
    op.create_index('ix_approval_steps_department_id', 'approval_steps', ['department_id'])
    # Steps made before: the requester's own department decided, as it still does for them.
    op.execute("UPDATE approval_steps SET department_id = (SELECT users.department_id FROM checkout_requests "
               "JOIN users ON users.id = checkout_requests.requester_id "
               "WHERE checkout_requests.id = approval_steps.request_id) WHERE who = 'manager'")


def downgrade() -> None:
    op.drop_index('ix_approval_steps_department_id', 'approval_steps')
    with op.batch_alter_table('approval_steps') as batch:
        batch.drop_constraint('fk_approval_steps_department_id', type_='foreignkey')
        batch.drop_column('department_id')
