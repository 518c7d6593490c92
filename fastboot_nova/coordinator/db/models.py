"""SQLAlchemy models of the coordinator database.

Every constraint and index is named (through the metadata naming
convention) so that migrations can refer to them on every backend.
Timestamps are naive UTC with microseconds on every backend (MySQL's
plain DATETIME would cut them to whole seconds, making a host look up to
a second older than it is). Tables are InnoDB in utf8mb4 on MySQL whatever
the server's defaults: the initial migration creates them the same way.
"""

import datetime

from oslo_utils import timeutils
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy import orm

NAMING_CONVENTION = {
    'ix': 'ix_%(table_name)s_%(column_0_N_name)s',
    'uq': 'uq_%(table_name)s_%(column_0_N_name)s',
    'ck': 'ck_%(table_name)s_%(constraint_name)s',
    'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s',
    'pk': 'pk_%(table_name)s',
}

HOST_STATES = ('active', 'maintenance')

#: Table options of every table (ignored by the other dialects).
TABLE_OPTIONS = {'mysql_engine': 'InnoDB', 'mysql_charset': 'utf8mb4'}

#: Naive UTC timestamps with microseconds (MySQL: DATETIME(6)).
DateTime = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql')


def utcnow():
    # Naive UTC; tests move the clock with timeutils.set_time_override().
    return timeutils.utcnow()


class Base(orm.DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class _Timestamps:
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, nullable=False, default=utcnow)
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        DateTime, nullable=True, onupdate=utcnow)


class Host(_Timestamps, Base):
    """A compute host that caches volumes and serves them to children."""

    __tablename__ = 'hosts'
    __table_args__ = (
        sa.UniqueConstraint('name'),
        sa.CheckConstraint("state IN ('active', 'maintenance')",
                           name='state'),
        TABLE_OPTIONS,
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    address: orm.Mapped[str] = orm.mapped_column(sa.String(255),
                                                 nullable=False)
    # ``/``-separated labels, outermost first, e.g. ``dc1/row3/rack7``.
    failure_domain: orm.Mapped[str | None] = orm.mapped_column(
        sa.String(255), nullable=True)
    state: orm.Mapped[str] = orm.mapped_column(sa.String(16), nullable=False,
                                               default='active')
    heartbeat_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        DateTime, nullable=False, default=utcnow)
    # Who registered it: the keystone user, or NULL in shared_secret mode.
    owner: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                      nullable=True)
    # sha256 of the per-host token (shared_secret mode); never the token.
    token_hash: orm.Mapped[str | None] = orm.mapped_column(sa.String(64),
                                                           nullable=True)


class Volume(_Timestamps, Base):
    """A shared read-only origin volume (or image) that hosts cache."""

    __tablename__ = 'volumes'
    __table_args__ = (sa.UniqueConstraint('name'), TABLE_OPTIONS)

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    name: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)


class Cache(_Timestamps, Base):
    """One host's cache of one volume, and where it reads missed blocks."""

    __tablename__ = 'caches'
    __table_args__ = (
        sa.UniqueConstraint('host_id', 'volume_id'),
        sa.Index('ix_caches_volume_id', 'volume_id'),
        sa.Index('ix_caches_parent_host_id', 'parent_host_id'),
        TABLE_OPTIONS,
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    host_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey('hosts.id', ondelete='CASCADE'), nullable=False)
    volume_id: orm.Mapped[int] = orm.mapped_column(
        sa.ForeignKey('volumes.id', ondelete='CASCADE'), nullable=False)
    export_url: orm.Mapped[str] = orm.mapped_column(sa.String(1024),
                                                    nullable=False)
    # Fully prefetched: a warm cache never reads from its own parent.
    warm: orm.Mapped[bool] = orm.mapped_column(sa.Boolean, nullable=False,
                                               default=False)
    # NULL: the origin.
    parent_host_id: orm.Mapped[int | None] = orm.mapped_column(
        sa.ForeignKey('hosts.id', ondelete='SET NULL'), nullable=True)

    host: orm.Mapped[Host] = orm.relationship(foreign_keys=[host_id])
    volume: orm.Mapped[Volume] = orm.relationship()
    parent: orm.Mapped[Host | None] = orm.relationship(
        foreign_keys=[parent_host_id])


# The boot batch tables share the metadata (migrations, ModelsMigrationsSync).
from fastboot_nova.coordinator.db import batch_models  # noqa: E402,F401
