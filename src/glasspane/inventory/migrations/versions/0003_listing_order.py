"""listing order kept in each VM and container row

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Listings are ordered by host, VM and container name; with that order in the row, a
    # filtered page (VMs by state, deep in the pages) is one index range, not a sorted join.
    with op.batch_alter_table('vms') as batch:
        batch.add_column(sa.Column('sort_key', sa.String(length=200), nullable=False,
                                   server_default=''))
    with op.batch_alter_table('containers') as batch:
        batch.add_column(sa.Column('sort_key', sa.String(length=512), nullable=False,
                                   server_default=''))
    op.execute(sa.text("UPDATE vms SET sort_key = (SELECT hosts.name FROM hosts "
                       "WHERE hosts.id = vms.host_id) || :separator || vms.name")
               .bindparams(separator="\x1f"))
    op.execute(sa.text("UPDATE containers SET sort_key = (SELECT vms.sort_key FROM vms "
                       "WHERE vms.id = containers.vm_id) || :separator || containers.name")
               .bindparams(separator="\x1f"))
    # With the name: a name search walks the index in order without reading rows.
    op.create_index('ix_vms_sort_key', 'vms', ['sort_key', 'name'])
    op.create_index('ix_vms_power_state_sort_key', 'vms', ['power_state', 'sort_key'])
    op.create_index('ix_containers_sort_key', 'containers', ['sort_key', 'name'])
    op.create_index('ix_containers_state_sort_key', 'containers', ['state', 'sort_key'])


def downgrade() -> None:
    for table, index in (('containers', 'ix_containers_state_sort_key'),
                         ('containers', 'ix_containers_sort_key'),
                         ('vms', 'ix_vms_power_state_sort_key'), ('vms', 'ix_vms_sort_key')):
        op.drop_index(index, table_name=table)
    for table in ('containers', 'vms'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('sort_key')
