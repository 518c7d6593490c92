"""Boot batches: batches, batch_servers, batch_events, origins.

Revision ID: c4d2e9f1a7b3
Revises: b1e7c3a2d4f0
Create Date: 2026-12-03 00:00:00
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

revision = 'c4d2e9f1a7b3'
down_revision = 'b1e7c3a2d4f0'
branch_labels = None
depends_on = None

# Frozen copies, as in the initial migration.
TABLE_OPTIONS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}
BATCH_STATES = ('PENDING', 'PREPARING', 'BUILDING', 'ACTIVE', 'PARTIAL',
                'ERROR', 'DELETING', 'DELETED')
SERVER_STATES = ('PENDING', 'BUILDING', 'ACTIVE', 'ERROR', 'DELETED')


def _datetime():
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


def _in(column, values):
    return '%s IN (%s)' % (column, ', '.join("'%s'" % v for v in values))


def _timestamps():
    return [sa.Column('created_at', _datetime(), nullable=False),
            sa.Column('updated_at', _datetime(), nullable=True)]


def upgrade():
    op.create_table(
        'batches',
        sa.Column('id', sa.String(36), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('user_id', sa.String(255), nullable=True),
        sa.Column('idempotency_key', sa.String(255), nullable=False),
        sa.Column('request_hash', sa.String(64), nullable=False),
        sa.Column('request', sa.Text(), nullable=False),
        sa.Column('name', sa.String(255), nullable=False),
        sa.Column('source_type', sa.String(16), nullable=False),
        sa.Column('source_id', sa.String(36), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('flavor', sa.String(255), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('fault', sa.Text(), nullable=True),
        sa.Column('origin_volume_id', sa.String(36), nullable=True),
        sa.Column('image_id', sa.String(36), nullable=True),
        sa.Column('trust_id', sa.String(64), nullable=True),
        sa.Column('purge', sa.Boolean(), nullable=False),
        sa.Column('runner', sa.String(255), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_batches'),
        sa.UniqueConstraint('project_id', 'idempotency_key',
                            name='uq_batches_project_id_idempotency_key'),
        sa.CheckConstraint(_in('state', BATCH_STATES),
                           name='ck_batches_state'),
        **TABLE_OPTIONS,
    )
    op.create_index('ix_batches_state_priority', 'batches',
                    ['state', 'priority'])
    op.create_table(
        'batch_servers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.String(36), nullable=False),
        sa.Column('index', sa.Integer(), nullable=False),
        sa.Column('request_name', sa.String(255), nullable=True),
        sa.Column('server_id', sa.String(36), nullable=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('host', sa.String(255), nullable=True),
        sa.Column('fault', sa.Text(), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_batch_servers'),
        sa.UniqueConstraint('batch_id', 'index',
                            name='uq_batch_servers_batch_id_index'),
        sa.UniqueConstraint('server_id',
                            name='uq_batch_servers_server_id'),
        sa.CheckConstraint(_in('state', SERVER_STATES),
                           name='ck_batch_servers_state'),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'],
                                name='fk_batch_servers_batch_id_batches',
                                ondelete='CASCADE'),
        **TABLE_OPTIONS,
    )
    op.create_table(
        'batch_events',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('batch_id', sa.String(36), nullable=False),
        sa.Column('server_id', sa.String(36), nullable=True),
        sa.Column('phase', sa.String(64), nullable=False),
        sa.Column('at', _datetime(), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id', name='pk_batch_events'),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'],
                                name='fk_batch_events_batch_id_batches',
                                ondelete='CASCADE'),
        **TABLE_OPTIONS,
    )
    op.create_index('ix_batch_events_batch_id', 'batch_events',
                    ['batch_id'])
    op.create_index('ix_batch_events_server_id', 'batch_events',
                    ['server_id'])
    op.create_table(
        'origins',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.String(255), nullable=False),
        sa.Column('source_id', sa.String(36), nullable=False),
        sa.Column('volume_id', sa.String(36), nullable=True),
        sa.Column('image_id', sa.String(36), nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint('id', name='pk_origins'),
        sa.UniqueConstraint('source_id', name='uq_origins_source_id'),
        **TABLE_OPTIONS,
    )
