"""flag life, incidents

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 10:19:41.360069
"""

from alembic import op
import sqlalchemy as sa



revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('incidents',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=False),
    sa.Column('checkout_id', sa.Integer(), nullable=True),
    sa.Column('flag_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', sa.DateTime(), nullable=False),
    sa.Column('opened_by_id', sa.Integer(), nullable=False),
    sa.Column('known_at', sa.DateTime(), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=True),
    sa.Column('last_known_at', sa.DateTime(), nullable=True),
    sa.Column('last_known_place', sa.String(length=200), nullable=True),
    sa.Column('data_class', sa.Enum('none', 'personal', 'sensitive', name='incident_data_class', native_enum=False, length=16), nullable=False),
    sa.Column('encrypted', sa.Boolean(), nullable=False),
    sa.Column('people_count', sa.Integer(), nullable=True),
    sa.Column('financial_harm', sa.Boolean(), nullable=False),
    sa.Column('wrongful_purpose', sa.Boolean(), nullable=False),
    sa.Column('properly_encrypted', sa.Boolean(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], ),
    sa.ForeignKeyConstraint(['flag_id'], ['flags.id'], ),
    sa.ForeignKeyConstraint(['holder_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], ),
    sa.ForeignKeyConstraint(['opened_by_id'], ['users.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('flag_id')
    )
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incidents_item_id'), ['item_id'], unique=False)

    op.create_table('incident_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('incident_actions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_incident_actions_incident_id'), ['incident_id'], unique=False)

    with op.batch_alter_table('flags', schema=None) as batch_op:
        batch_op.add_column(sa.Column('acknowledged_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('acknowledged_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('confirmed_by', sa.String(length=200), nullable=True))
        batch_op.create_foreign_key('fk_flags_acknowledged_by_id_users', 'users', ['acknowledged_by_id'], ['id'])



def downgrade() -> None:
    with op.batch_alter_table('flags', schema=None) as batch_op:
        # WARNING: constraint name is None; this directive will fail as
        # rendered.  Add a name, or use a naming convention; see
        # https://alembic.sqlalchemy.org/en/latest/naming.html
        batch_op.drop_constraint('fk_flags_acknowledged_by_id_users', type_='foreignkey')
        batch_op.drop_column('confirmed_by')
        batch_op.drop_column('acknowledged_by_id')
        batch_op.drop_column('acknowledged_at')

    with op.batch_alter_table('incident_actions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incident_actions_incident_id'))

    op.drop_table('incident_actions')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_incidents_item_id'))

    op.drop_table('incidents')
