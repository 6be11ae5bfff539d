"""the audit log records the client's address, and counts unauthenticated noise

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.add_column(sa.Column('address', sa.String(length=64), nullable=True))
        # Existing rows each stand for one request.
        batch.add_column(sa.Column('count', sa.Integer(), nullable=False, server_default='1'))


def downgrade() -> None:
    with op.batch_alter_table('audit_log') as batch:
        batch.drop_column('count')
        batch.drop_column('address')
