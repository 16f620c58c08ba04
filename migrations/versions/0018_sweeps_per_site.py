"""sweeps per site: each office sweeps its own business dates (site NULL: the main office)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 01:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None

# SQLite reflects the old unique constraint without a name; the convention names it so batch mode can drop it.
_CONVENTION = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique() -> str:
    return 'sweeps_business_date_key' if op.get_bind().dialect.name == 'postgresql' else 'uq_sweeps_business_date'


def upgrade() -> None:
    old = _old_unique()
    with op.batch_alter_table('sweeps', naming_convention=_CONVENTION) as batch:
        batch.drop_constraint(old, type_='unique')
        batch.add_column(sa.Column('site_id', sa.Integer(), nullable=True))
        batch.create_foreign_key('fk_sweeps_site_id', 'sites', ['site_id'], ['id'])
    op.create_index('uq_sweeps_site_date', 'sweeps', ['site_id', 'business_date'], unique=True)
    # NULLs are distinct in a unique index: the main office's dates need their own.
    op.create_index('uq_sweeps_main_date', 'sweeps', ['business_date'], unique=True,
                    sqlite_where=sa.text('site_id IS NULL'), postgresql_where=sa.text('site_id IS NULL'))


def downgrade() -> None:
    # One sweep per date again: the sites' sweep records go (their flags stay, as the curfew's do, without one).
    op.execute("UPDATE flags SET sweep_id = NULL WHERE sweep_id IN (SELECT id FROM sweeps WHERE site_id IS NOT NULL)")
    op.execute("DELETE FROM sweeps WHERE site_id IS NOT NULL")
    op.drop_index('uq_sweeps_main_date', table_name='sweeps')
    op.drop_index('uq_sweeps_site_date', table_name='sweeps')
    with op.batch_alter_table('sweeps') as batch:
        batch.drop_constraint('fk_sweeps_site_id', type_='foreignkey')
        batch.drop_column('site_id')
        batch.create_unique_constraint(_old_unique(), ['business_date'])
