"""take-out rules per kind and data class, approval steps, hand-over offers, witnesses, curfews and escalation

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 14:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('takeout_rules',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('kind', sa.String(length=16), nullable=False),
                    sa.Column('data_class', sa.String(length=16), nullable=False),
                    sa.Column('approval', sa.Enum('nobody', 'manager', 'manager_desk', 'named', name='approval',
                                                  native_enum=False, length=16), nullable=False),
                    sa.Column('approver1_id', sa.Integer(), nullable=True),
                    sa.Column('approver2_id', sa.Integer(), nullable=True),
                    sa.Column('approver3_id', sa.Integer(), nullable=True),
                    sa.Column('overnight', sa.Enum('allowed', 'approval', 'forbidden', name='overnight',
                                                   native_enum=False, length=16), nullable=False),
                    sa.Column('curfew', sa.Time(), nullable=True),
                    sa.Column('max_hours', sa.Integer(), nullable=True),
                    sa.Column('erasure_on_return', sa.Boolean(), nullable=False),
                    sa.Column('witness', sa.Boolean(), nullable=False),
                    sa.Column('handling_ack', sa.Boolean(), nullable=False),
                    sa.Column('escalate_after_hours', sa.Integer(), nullable=True),
                    sa.Column('version', sa.Integer(), nullable=False),
                    sa.Column('updated_at', sa.DateTime(), nullable=False),
                    sa.Column('updated_by_id', sa.Integer(), nullable=True),
                    sa.ForeignKeyConstraint(['approver1_id'], ['users.id'], name='fk_takeout_rules_approver1_id'),
                    sa.ForeignKeyConstraint(['approver2_id'], ['users.id'], name='fk_takeout_rules_approver2_id'),
                    sa.ForeignKeyConstraint(['approver3_id'], ['users.id'], name='fk_takeout_rules_approver3_id'),
                    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name='fk_takeout_rules_updated_by_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('uq_takeout_rules_kind_class', 'takeout_rules', ['kind', 'data_class'], unique=True)
    op.create_table('approval_steps',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('request_id', sa.Integer(), nullable=False),
                    sa.Column('position', sa.Integer(), nullable=False),
                    sa.Column('who', sa.String(length=16), nullable=False),
                    sa.Column('approver_id', sa.Integer(), nullable=True),
                    sa.Column('decision', sa.String(length=16), nullable=True),
                    sa.Column('decided_by_id', sa.Integer(), nullable=True),
                    sa.Column('decided_at', sa.DateTime(), nullable=True),
                    sa.Column('on_behalf', sa.String(length=16), nullable=True),
                    sa.Column('note', sa.String(length=200), nullable=True),
                    sa.ForeignKeyConstraint(['request_id'], ['checkout_requests.id'], ondelete='CASCADE',
                                            name='fk_approval_steps_request_id'),
                    sa.ForeignKeyConstraint(['approver_id'], ['users.id'], name='fk_approval_steps_approver_id'),
                    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name='fk_approval_steps_decided_by_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_approval_steps_request_id', 'approval_steps', ['request_id'])
    op.create_index('ix_approval_steps_approver_id', 'approval_steps', ['approver_id'])
    op.create_index('uq_approval_steps_request_position', 'approval_steps', ['request_id', 'position'], unique=True)
    op.create_table('handover_offers',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('checkout_id', sa.Integer(), nullable=False),
                    sa.Column('item_id', sa.Integer(), nullable=False),
                    sa.Column('from_user_id', sa.Integer(), nullable=False),
                    sa.Column('to_user_id', sa.Integer(), nullable=False),
                    sa.Column('offered_by_id', sa.Integer(), nullable=False),
                    sa.Column('offered_at', sa.DateTime(), nullable=False),
                    sa.Column('status', sa.Enum('pending', 'accepted', 'declined', 'cancelled', 'expired',
                                                name='offer_status', native_enum=False, length=16), nullable=False),
                    sa.Column('decided_at', sa.DateTime(), nullable=True),
                    sa.Column('handling_ack', sa.Boolean(), nullable=False),
                    sa.Column('new_checkout_id', sa.Integer(), nullable=True),
                    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], name='fk_handover_offers_checkout_id'),
                    sa.ForeignKeyConstraint(['new_checkout_id'], ['checkouts.id'],
                                            name='fk_handover_offers_new_checkout_id'),
                    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name='fk_handover_offers_item_id'),
                    sa.ForeignKeyConstraint(['from_user_id'], ['users.id'], name='fk_handover_offers_from_user_id'),
                    sa.ForeignKeyConstraint(['to_user_id'], ['users.id'], name='fk_handover_offers_to_user_id'),
                    sa.ForeignKeyConstraint(['offered_by_id'], ['users.id'], name='fk_handover_offers_offered_by_id'),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_handover_offers_checkout_id', 'handover_offers', ['checkout_id'])
    op.create_index('ix_handover_offers_item_id', 'handover_offers', ['item_id'])
    op.create_index('ix_handover_offers_to_user_id', 'handover_offers', ['to_user_id'])
    op.create_index('uq_handover_offers_one_pending', 'handover_offers', ['checkout_id'], unique=True,
                    sqlite_where=sa.text("status = 'pending'"), postgresql_where=sa.text("status = 'pending'"))
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('deputy_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('desk_lead', sa.Boolean(), nullable=False, server_default='0'))
        batch.create_foreign_key('fk_users_deputy_id', 'users', ['deputy_id'], ['id'])
    with op.batch_alter_table('checkouts') as batch:
        batch.add_column(sa.Column('strict_due', sa.Boolean(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('witness_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_checkouts_witness_id', 'users', ['witness_id'], ['id'])
    with op.batch_alter_table('checkout_requests') as batch:
        batch.add_column(sa.Column('rule', sa.Text(), nullable=False, server_default='{}'))
        batch.add_column(sa.Column('for_date', sa.Date(), nullable=True))
        batch.add_column(sa.Column('expires_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('flags') as batch:
        batch.add_column(sa.Column('escalation_level', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('flags') as batch:
        batch.drop_column('escalated_at')
        batch.drop_column('escalation_level')
    with op.batch_alter_table('checkout_requests') as batch:
        batch.drop_column('expires_at')
        batch.drop_column('for_date')
        batch.drop_column('rule')
    with op.batch_alter_table('checkouts') as batch:
        batch.drop_constraint('fk_checkouts_witness_id', type_='foreignkey')
        batch.drop_column('witness_id')
        batch.drop_column('strict_due')
    with op.batch_alter_table('users') as batch:
        batch.drop_constraint('fk_users_deputy_id', type_='foreignkey')
        batch.drop_column('desk_lead')
        batch.drop_column('deputy_id')
    op.drop_table('handover_offers')
    op.drop_table('approval_steps')
    op.drop_table('takeout_rules')
