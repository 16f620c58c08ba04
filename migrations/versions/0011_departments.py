"""departments as records (name, parent, managers) chosen on items and users; free-text departments become records

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 08:10:00
"""

import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _name(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()[:100]


def upgrade() -> None:
    op.create_table('departments',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.Column('parent_id', sa.Integer(), nullable=True),
                    sa.Column('created_at', sa.DateTime(), nullable=True),
                    sa.ForeignKeyConstraint(['parent_id'], ['departments.id'], name='fk_departments_parent_id'),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('name', name='uq_departments_name'))
    op.create_index('ix_departments_parent_id', 'departments', ['parent_id'])
    op.create_table('department_managers',
                    sa.Column('department_id', sa.Integer(), nullable=False),
                    sa.Column('user_id', sa.Integer(), nullable=False),
                    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], ondelete='CASCADE',
                                            name='fk_department_managers_department_id'),
                    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE',
                                            name='fk_department_managers_user_id'),
                    sa.PrimaryKeyConstraint('department_id', 'user_id'))
    for table in ('items', 'users'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('department_id', sa.Integer(), nullable=True))
            batch.create_foreign_key(f'fk_{table}_department_id', 'departments', ['department_id'], ['id'])
            batch.create_index(f'ix_{table}_department_id', ['department_id'])
    # Every free-text department in use becomes a record (spelling variants that NFKC and trimming make equal
    # become one), and the items point at it, so existing data keeps its department.
    conn = op.get_bind()
    raw = [r[0] for r in conn.execute(sa.text("SELECT DISTINCT department FROM items WHERE department IS NOT NULL"))]
    ids: dict[str, int] = {}
    stamp = datetime.now(UTC).replace(tzinfo=None)
    for value in sorted(raw):
        name = _name(value)
        if not name:
            continue
        if name not in ids:
            conn.execute(sa.text("INSERT INTO departments (name, created_at) VALUES (:name, :at)"),
                         {"name": name, "at": stamp})
            ids[name] = conn.execute(sa.text("SELECT id FROM departments WHERE name = :name"), {"name": name}).scalar_one()
        conn.execute(sa.text("UPDATE items SET department_id = :id WHERE department = :raw"),
                     {"id": ids[name], "raw": value})
    with op.batch_alter_table('items') as batch:
        batch.drop_index('ix_items_department')
        batch.drop_column('department')


def downgrade() -> None:
    with op.batch_alter_table('items') as batch:
        batch.add_column(sa.Column('department', sa.String(length=100), nullable=True))
        batch.create_index('ix_items_department', ['department'])
    op.execute("UPDATE items SET department = (SELECT name FROM departments WHERE departments.id = items.department_id)")
    for table in ('users', 'items'):
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f'ix_{table}_department_id')
            batch.drop_constraint(f'fk_{table}_department_id', type_='foreignkey')
            batch.drop_column('department_id')
    op.drop_table('department_managers')
    op.drop_index('ix_departments_parent_id', table_name='departments')
    op.drop_table('departments')
