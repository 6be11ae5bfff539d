"""registered hosts and their encrypted secrets in the database, hosts.json imported

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'host_registrations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('uri', sa.String(length=512), nullable=False),
        sa.Column('driver', sa.String(length=16), nullable=False),
        sa.Column('user', sa.String(length=128), nullable=False),
        sa.Column('verify_tls', sa.Boolean(), nullable=False),
        sa.Column('ca_pem', sa.Text(), nullable=True),
        sa.Column('password', sa.Text(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'))
    # The configuration directory of the instance upgrading (Database.migrate): its
    # hosts.json is imported, and retired once the upgrade has committed.  Without one (a
    # bare database), only the table is made.
    attributes = context.config.attributes
    config_dir = attributes.get("config_dir")
    if config_dir is not None:
        from glasspane.hosts.legacy import import_hosts_json
        attributes.setdefault("retire", []).extend(
            import_hosts_json(op.get_bind(), Path(config_dir)))
        attributes["imported"] = True


def downgrade() -> None:
    # The registrations are not written back to a hosts.json: a downgrade forgets them.
    op.drop_table('host_registrations')
