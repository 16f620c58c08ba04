"""the audit trail as a hash chain: sequence numbers and hashes, the chain's head, verification results

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 07:00:00

Existing events are numbered in the order they were written (by id) and hashed with version 1 of the
canonical form. That form is copied here on purpose: a migration must hash as it did on the day it was
written, whatever tracker.audit later becomes (tests/test_audit_chain.py checks the two agree).
"""

import hashlib
import json
from datetime import timezone

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def _canonical_v1(row) -> str:
    at = row.at.replace(tzinfo=timezone.utc) if row.at.tzinfo is None else row.at.astimezone(timezone.utc)
    return json.dumps({
        "v": 1, "seq": row.seq, "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "action": row.action,
        "actor": row.actor_id, "item": row.item_id, "checkout": row.checkout_id,
        "subject": row.subject_user_id, "source": row.source, "data": row.data,
    }, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def upgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.add_column(sa.Column('seq', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('prev_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('hash', sa.String(length=64), nullable=True))
    op.create_table('audit_head',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('seq', sa.BigInteger(), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('base_seq', sa.BigInteger(), nullable=False),
        sa.Column('base_hash', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_table('audit_checks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('events', sa.BigInteger(), nullable=False),
        sa.Column('head_seq', sa.BigInteger(), nullable=False),
        sa.Column('head_hash', sa.String(length=64), nullable=False),
        sa.Column('problem', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_audit_checks_at', 'audit_checks', ['at'])

    conn = op.get_bind()
    events = sa.table('events', sa.column('id'), sa.column('at', sa.DateTime()), sa.column('action'),
                      sa.column('actor_id'), sa.column('item_id'), sa.column('checkout_id'),
                      sa.column('subject_user_id'), sa.column('source'), sa.column('data'), sa.column('seq'),
                      sa.column('prev_hash'), sa.column('hash'))
    prev, seq = GENESIS, 0
    rows = conn.execute(sa.select(events.c.id, events.c.at, events.c.action, events.c.actor_id, events.c.item_id,
                                  events.c.checkout_id, events.c.subject_user_id, events.c.source, events.c.data)
                        .order_by(events.c.id)).all()
    for row in rows:
        seq += 1
        values = dict(row._mapping, seq=seq)
        digest = hashlib.sha256((prev + "\n" + _canonical_v1(_Row(values))).encode("utf-8")).hexdigest()
        conn.execute(events.update().where(events.c.id == row.id).values(seq=seq, prev_hash=prev, hash=digest))
        prev = digest
    conn.execute(sa.text("INSERT INTO audit_head (id, seq, hash, base_seq, base_hash) "
                         "VALUES (1, :seq, :hash, 0, :genesis)"), {"seq": seq, "hash": prev, "genesis": GENESIS})
    with op.batch_alter_table('events') as batch:
        batch.alter_column('seq', existing_type=sa.BigInteger(), nullable=False)
        batch.alter_column('prev_hash', existing_type=sa.String(length=64), nullable=False)
        batch.alter_column('hash', existing_type=sa.String(length=64), nullable=False)
        batch.create_unique_constraint('uq_events_seq', ['seq'])


class _Row:
    def __init__(self, values):
        self.__dict__.update(values)


def downgrade() -> None:
    with op.batch_alter_table('events') as batch:
        batch.drop_constraint('uq_events_seq', type_='unique')
        batch.drop_column('hash')
        batch.drop_column('prev_hash')
        batch.drop_column('seq')
    op.drop_index('ix_audit_checks_at', table_name='audit_checks')
    op.drop_table('audit_checks')
    op.drop_table('audit_head')
