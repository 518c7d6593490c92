"""Initial schema: hosts, volumes, caches.

Revision ID: b1e7c3a2d4f0
Revises:
Create Date: 2026-01-01 00:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = 'b1e7c3a2d4f0'
down_revision = None
branch_labels = None
depends_on = None

# As the models, whatever the server's defaults: InnoDB, utf8mb4, and
# timestamps with microseconds on MySQL. Frozen here, not imported: a
# migration must not change when the models do.
TABLE_OPTIONS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}


def _datetime():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


def upgrade():
    op.create_table(
        'hosts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('address', sa.String(255), nullable=False),
        sa.Column('failure_domain', sa.String(255), nullable=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('heartbeat_at', _datetime(), nullable=False),
        sa.Column('owner', sa.String(255), nullable=True),
        sa.Column('token_hash', sa.String(64), nullable=True),
        sa.Column('created_at', _datetime(), nullable=False),
        sa.Column('updated_at', _datetime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_hosts'),
        sa.UniqueConstraint('name', name='uq_hosts_name'),
        sa.CheckConstraint("state IN ('active', 'maintenance')",
                           name='ck_hosts_state'),
        **TABLE_OPTIONS,
    )
    op.create_table(
        'volumes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('created_at', _datetime(), nullable=False),
        sa.Column('updated_at', _datetime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_volumes'),
        sa.UniqueConstraint('name', name='uq_volumes_name'),
        **TABLE_OPTIONS,
    )
    op.create_table(
        'caches',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('host_id', sa.Integer(), nullable=False),
        sa.Column('volume_id', sa.Integer(), nullable=False),
        sa.Column('export_url', sa.String(1024), nullable=False),
        sa.Column('warm', sa.Boolean(), nullable=False),
        sa.Column('parent_host_id', sa.Integer(), nullable=True),
        sa.Column('created_at', _datetime(), nullable=False),
        sa.Column('updated_at', _datetime(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_caches'),
        sa.UniqueConstraint('host_id', 'volume_id',
                            name='uq_caches_host_id_volume_id'),
        sa.ForeignKeyConstraint(['host_id'], ['hosts.id'],
                                name='fk_caches_host_id_hosts',
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['volume_id'], ['volumes.id'],
                                name='fk_caches_volume_id_volumes',
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['parent_host_id'], ['hosts.id'],
                                name='fk_caches_parent_host_id_hosts',
                                ondelete='SET NULL'),
        **TABLE_OPTIONS,
    )
    op.create_index('ix_caches_volume_id', 'caches', ['volume_id'])
    op.create_index('ix_caches_parent_host_id', 'caches',
                    ['parent_host_id'])
