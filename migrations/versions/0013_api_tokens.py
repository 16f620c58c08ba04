"""personal API tokens (hashed, with scopes, expiry and a per-minute request count)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 22:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_tokens',
                    sa.Column('id', sa.Integer(), nullable=False),
                    sa.Column('user_id', sa.Integer(), nullable=False),
                    sa.Column('name', sa.String(length=100), nullable=False),
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('prefix', sa.String(length=12), nullable=False),
                    sa.Column('scopes', sa.String(length=40), nullable=False),
                    sa.Column('created_at', sa.DateTime(), nullable=False),
                    sa.Column('created_by_id', sa.Integer(), nullable=True),
                    sa.Column('expires_at', sa.DateTime(), nullable=False),
                    sa.Column('revoked_at', sa.DateTime(), nullable=True),
                    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
                    sa.Column('last_used_at', sa.DateTime(), nullable=True),
                    sa.Column('window_started_at', sa.DateTime(), nullable=True),
                    sa.Column('window_requests', sa.Integer(), nullable=False, server_default='0'),
                    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name='fk_api_tokens_user_id'),
                    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name='fk_api_tokens_created_by_id'),
                    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name='fk_api_tokens_revoked_by_id'),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash', name='uq_api_tokens_token_hash'))
    op.create_index('ix_api_tokens_user_id', 'api_tokens', ['user_id'])


def downgrade() -> None:
    op.drop_index('ix_api_tokens_user_id', table_name='api_tokens')
    op.drop_table('api_tokens')
