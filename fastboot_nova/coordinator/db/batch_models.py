"""Models of boot batches: the request, its servers, their timeline.

A batch is what ``POST /v1/batches`` persisted: who asked (project, user,
the Keystone trust the runner acts through), what (source, count, flavor,
networks) and under which ``Idempotency-Key``. The runner fills in the
rest: the origin it prepared (shared with every batch of the same source,
see :class:`Origin`), one :class:`BatchServer` row per server it must
create, and the :class:`BatchEvent` rows of the timeline.

A server request to Nova is recorded (``request_name``) *before* it is
sent, so a runner that replaces a dead one finds what was created under
that name instead of creating it twice.
"""

import datetime

import sqlalchemy as sa
from sqlalchemy import orm

from fastboot_nova.coordinator.db import models

Base = models.Base
DateTime = models.DateTime
TABLE_OPTIONS = models.TABLE_OPTIONS
_Timestamps = models._Timestamps

__all__ = ['Batch', 'BatchServer', 'BatchEvent', 'Origin',
           'BATCH_STATES', 'SERVER_STATES', 'PRIORITIES']

BATCH_STATES = ('PENDING', 'PREPARING', 'BUILDING', 'ACTIVE', 'PARTIAL',
                'ERROR', 'DELETING', 'DELETED')
SERVER_STATES = ('PENDING', 'BUILDING', 'ACTIVE', 'ERROR', 'DELETED')
#: Higher runs first: HA restarts, then retries, then user requests.
PRIORITIES = {'ha': 30, 'retry': 20, 'user': 10}


def _in(column, values):
    return '%s IN (%s)' % (column, ', '.join("'%s'" % v for v in values))


class Batch(_Timestamps, Base):
    """One "boot N servers from S" request."""

    __tablename__ = 'batches'
    __table_args__ = (
        sa.UniqueConstraint('project_id', 'idempotency_key'),
        sa.CheckConstraint(_in('state', BATCH_STATES), name='state'),
        sa.Index('ix_batches_state_priority', 'state', 'priority'),
        TABLE_OPTIONS,
    )

    id: orm.Mapped[str] = orm.mapped_column(sa.String(36), primary_key=True)
    project_id: orm.Mapped[str] = orm.mapped_column(sa.String(255),
                                                    nullable=False)
    user_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                        nullable=True)
    idempotency_key: orm.Mapped[str] = orm.mapped_column(sa.String(255),
                                                         nullable=False)
    # sha256 of the canonical JSON body: same key, other body -> 409.
    request_hash: orm.Mapped[str] = orm.mapped_column(sa.String(64),
                                                      nullable=False)
    request: orm.Mapped[str] = orm.mapped_column(sa.Text, nullable=False)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    source_type: orm.Mapped[str] = orm.mapped_column(sa.String(16),
                                                     nullable=False)
    source_id: orm.Mapped[str] = orm.mapped_column(sa.String(36),
                                                   nullable=False)
    count: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    flavor: orm.Mapped[str] = orm.mapped_column(sa.String(255),
                                                nullable=False)
    priority: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False,
                                                  default=10)
    state: orm.Mapped[str] = orm.mapped_column(sa.String(16), nullable=False,
                                               default='PENDING')
    fault: orm.Mapped[str | None] = orm.mapped_column(sa.Text, nullable=True)
    origin_volume_id: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(36), nullable=True)
    image_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36),
                                                         nullable=True)
    # The Keystone trust the runner acts through (never a token).
    trust_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(64),
                                                         nullable=True)
    purge: orm.Mapped[bool] = orm.mapped_column(sa.Boolean, nullable=False,
                                                default=False)
    # Which runner works on it (informative: the tooz lock decides).
    runner: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                       nullable=True)

    servers: orm.Mapped[list['BatchServer']] = orm.relationship(
        back_populates='batch', order_by='BatchServer.index',
        cascade='all, delete-orphan', passive_deletes=True)


class BatchServer(_Timestamps, Base):
    """One server of a batch: its slot, its Nova id, its last fault."""

    __tablename__ = 'batch_servers'
    __table_args__ = (
        sa.UniqueConstraint('batch_id', 'index'),
        sa.UniqueConstraint('server_id'),
        sa.CheckConstraint(_in('state', SERVER_STATES), name='state'),
        TABLE_OPTIONS,
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    batch_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey('batches.id', ondelete='CASCADE'), nullable=False)
    index: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    # The Nova create request this slot was sent in (server name prefix).
    request_name: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255), nullable=True)
    server_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36),
                                                          nullable=True)
    state: orm.Mapped[str] = orm.mapped_column(sa.String(16), nullable=False,
                                               default='PENDING')
    attempts: orm.Mapped[int] = orm.mapped_column(sa.Integer,
                                                  nullable=False, default=0)
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                     nullable=True)
    fault: orm.Mapped[str | None] = orm.mapped_column(sa.Text, nullable=True)

    batch: orm.Mapped[Batch] = orm.relationship(back_populates='servers')


class BatchEvent(Base):
    """One timeline point: a phase of a server (or of the whole batch)."""

    __tablename__ = 'batch_events'
    __table_args__ = (
        sa.Index('ix_batch_events_batch_id', 'batch_id'),
        sa.Index('ix_batch_events_server_id', 'server_id'),
        TABLE_OPTIONS,
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    batch_id: orm.Mapped[str] = orm.mapped_column(
        sa.ForeignKey('batches.id', ondelete='CASCADE'), nullable=False)
    # NULL: the batch as a whole (accepted, origin ready).
    server_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36),
                                                          nullable=True)
    phase: orm.Mapped[str] = orm.mapped_column(sa.String(64),
                                               nullable=False)
    at: orm.Mapped[datetime.datetime] = orm.mapped_column(DateTime,
                                                          nullable=False)
    detail: orm.Mapped[str | None] = orm.mapped_column(sa.Text,
                                                       nullable=True)


class Origin(_Timestamps, Base):
    """The shared origin volume (and fastboot image) of one source.

    Made once per source (volume snapshot or volume) and reused by every
    later batch of it, until a ``DELETE ...?purge=true`` removes it.
    """

    __tablename__ = 'origins'
    __table_args__ = (sa.UniqueConstraint('source_id'), TABLE_OPTIONS)

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    project_id: orm.Mapped[str] = orm.mapped_column(sa.String(255),
                                                    nullable=False)
    source_id: orm.Mapped[str] = orm.mapped_column(sa.String(36),
                                                   nullable=False)
    volume_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36),
                                                          nullable=True)
    image_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(36),
                                                         nullable=True)
