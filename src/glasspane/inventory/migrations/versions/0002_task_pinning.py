"""tasks pinned to the instance holding their inputs

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A task whose inputs are files on one instance's disk (the image store) runs there.
    with op.batch_alter_table('tasks') as batch:
        batch.add_column(sa.Column('pinned_to', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks') as batch:
        batch.drop_column('pinned_to')
