"""Queries of the coordinator database, through oslo.db enginefacade.

Each :class:`Database` owns its own transaction context manager (not the
process-global one), so two API objects in one process, as in the replica
tests, can each have theirs. Methods take the request context and open a
reader or writer transaction on it; they return plain rows (expire on
commit is off) and raise coordinator exceptions, never SQLAlchemy ones,
except oslo.db's DBConnectionError which the API maps to 503.
"""

import dataclasses

from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
import sqlalchemy as sa
from sqlalchemy import orm

from fastboot_nova.conf import coordinator as coordinator_conf
from fastboot_nova.coordinator.db import models
from fastboot_nova.coordinator import exception

# [database] options the enginefacade understands.
_FACADE_OPTS = ('connection', 'slave_connection', 'sqlite_synchronous',
                'mysql_sql_mode', 'mysql_wsrep_sync_wait',
                'connection_recycle_time', 'max_pool_size', 'max_retries',
                'retry_interval', 'max_overflow', 'connection_debug',
                'connection_trace', 'pool_timeout', 'connection_parameters',
                'synchronous_reader')


@dataclasses.dataclass(frozen=True)
class CacheRow:
    """One cache of a volume, joined with its host and parent names."""

    host: str
    failure_domain: str | None
    heartbeat_at: object
    state: str
    export_url: str
    warm: bool
    parent: str | None


def _serialize_sqlite(engine):
    """Make every SQLite transaction take the write lock at BEGIN.

    pysqlite starts transactions as DEFERRED: two requests that both read
    and then write (heartbeats, cache reports) deadlock on the lock
    upgrade, and SQLite answers "database is locked" at once instead of
    waiting. BEGIN IMMEDIATE makes the second one wait its turn (the
    driver's busy timeout) instead. SQLite is the single-node default; use
    MySQL or PostgreSQL for replicas.
    """
    @sa.event.listens_for(engine, 'begin')
    def _begin_immediate(conn):
        # pysqlite would emit its own BEGIN before the first write.
        conn.connection.dbapi_connection.isolation_level = None
        conn.exec_driver_sql('BEGIN IMMEDIATE')


class Database:

    def __init__(self, conf):
        opts = {k: getattr(conf.database, k) for k in _FACADE_OPTS}
        opts['connection'] = coordinator_conf.default_connection(conf)
        # SQLite does not enforce foreign keys (and their ON DELETE)
        # unless asked to.
        opts['sqlite_fk'] = True
        opts = {k: v for k, v in opts.items() if v not in (None, '')}
        self._tcm = enginefacade.transaction_context()
        self._tcm.configure(**opts)
        if opts['connection'].startswith('sqlite'):
            _serialize_sqlite(self._tcm.writer.get_engine())

    @property
    def reader(self):
        return self._tcm.reader

    @property
    def writer(self):
        return self._tcm.writer

    def get_engine(self):
        return self._tcm.writer.get_engine()

    def dispose(self):
        self._tcm.dispose_pool()

    # -- hosts ------------------------------------------------------------

    @staticmethod
    def _host(session, name):
        host = session.scalars(
            sa.select(models.Host).filter_by(name=name)).one_or_none()
        if host is None:
            raise exception.HostNotFound(host=name)
        return host

    def host_create(self, ctx, name, address, failure_domain, owner,
                    token_hash):
        try:
            with self.writer.using(ctx) as session:
                host = models.Host(name=name, address=address,
                                   failure_domain=failure_domain,
                                   owner=owner, token_hash=token_hash,
                                   state='active',
                                   heartbeat_at=models.utcnow())
                session.add(host)
            return host
        except db_exc.DBDuplicateEntry:
            raise exception.HostExists(host=name)

    def host_update(self, ctx, name, address, failure_domain):
        """A re-registration: new address, failure domain, a heartbeat."""
        with self.writer.using(ctx) as session:
            host = self._host(session, name)
            host.address = address
            host.failure_domain = failure_domain
            host.heartbeat_at = models.utcnow()
            return host

    def host_set_token(self, ctx, name, token_hash, owner=False):
        """Replace the host's token hash (and owner, unless False)."""
        with self.writer.using(ctx) as session:
            host = self._host(session, name)
            host.token_hash = token_hash
            if owner is not False:
                host.owner = owner
            return host

    def host_get(self, ctx, name):
        with self.reader.using(ctx) as session:
            return self._host(session, name)

    def host_list(self, ctx):
        with self.reader.using(ctx) as session:
            return list(session.scalars(
                sa.select(models.Host).order_by(models.Host.name)))

    def host_heartbeat(self, ctx, name, state=None):
        with self.writer.using(ctx) as session:
            host = self._host(session, name)
            host.heartbeat_at = models.utcnow()
            if state is not None:
                host.state = state
            return host

    def host_volumes(self, ctx, name):
        """Names of the volumes the host caches."""
        with self.reader.using(ctx) as session:
            host = self._host(session, name)
            return list(session.scalars(
                sa.select(models.Volume.name)
                .join(models.Cache, models.Cache.volume_id == models.Volume.id)
                .where(models.Cache.host_id == host.id)
                .order_by(models.Volume.name)))

    def host_delete(self, ctx, name):
        with self.writer.using(ctx) as session:
            host = self._host(session, name)
            # Explicit rather than ON DELETE, which SQLite only honours
            # with foreign keys enforced.
            session.execute(sa.update(models.Cache)
                            .where(models.Cache.parent_host_id == host.id)
                            .values(parent_host_id=None))
            volume_ids = list(session.scalars(
                sa.select(models.Cache.volume_id)
                .where(models.Cache.host_id == host.id)))
            session.execute(sa.delete(models.Cache)
                            .where(models.Cache.host_id == host.id))
            session.delete(host)
            session.flush()
            self._drop_unused_volumes(session, volume_ids)

    @staticmethod
    def _drop_unused_volumes(session, volume_ids):
        for volume_id in volume_ids:
            left = session.scalar(sa.select(sa.func.count(models.Cache.id))
                                  .where(models.Cache.volume_id == volume_id))
            if not left:
                session.execute(sa.delete(models.Volume)
                                .where(models.Volume.id == volume_id))

    # -- caches -----------------------------------------------------------

    def cache_put(self, ctx, host_name, volume_name, export_url, warm,
                  parent=False):
        """Create or update a cache; ``parent=False`` leaves it unchanged.

        Returns True when the cache is new.
        """
        with self.writer.using(ctx) as session:
            host = self._host(session, host_name)
            volume = session.scalars(sa.select(models.Volume).filter_by(
                name=volume_name)).one_or_none()
            if volume is None:
                volume = models.Volume(name=volume_name)
                session.add(volume)
                session.flush()
            cache = session.scalars(sa.select(models.Cache).filter_by(
                host_id=host.id, volume_id=volume.id)).one_or_none()
            created = cache is None
            if created:
                cache = models.Cache(host_id=host.id, volume_id=volume.id)
                session.add(cache)
            cache.export_url = export_url
            cache.warm = warm
            if parent is not False:
                cache.parent_host_id = (
                    None if parent is None else
                    self._host(session, parent).id)
            return created

    def cache_delete(self, ctx, host_name, volume_name):
        with self.writer.using(ctx) as session:
            host = self._host(session, host_name)
            cache = session.scalars(
                sa.select(models.Cache)
                .join(models.Volume)
                .where(models.Cache.host_id == host.id,
                       models.Volume.name == volume_name)).one_or_none()
            if cache is None:
                raise exception.CacheNotFound(host=host_name,
                                              volume=volume_name)
            volume_id = cache.volume_id
            session.delete(cache)
            session.flush()
            self._drop_unused_volumes(session, [volume_id])

    def volume_caches(self, ctx, volume_name, writer=False):
        """All caches of a volume; raises VolumeNotFound if there are none."""
        mgr = self.writer if writer else self.reader
        parent = orm.aliased(models.Host)
        with mgr.using(ctx) as session:
            rows = session.execute(
                sa.select(models.Host.name, models.Host.failure_domain,
                          models.Host.heartbeat_at, models.Host.state,
                          models.Cache.export_url, models.Cache.warm,
                          parent.name)
                .select_from(models.Cache)
                .join(models.Volume,
                      models.Cache.volume_id == models.Volume.id)
                .join(models.Host, models.Cache.host_id == models.Host.id)
                .outerjoin(parent, models.Cache.parent_host_id == parent.id)
                .where(models.Volume.name == volume_name)
                .order_by(models.Host.name)).all()
        if not rows:
            raise exception.VolumeNotFound(volume=volume_name)
        return [CacheRow(host=r[0], failure_domain=r[1], heartbeat_at=r[2],
                         state=r[3], export_url=r[4], warm=r[5], parent=r[6])
                for r in rows]

    def set_parents(self, ctx, volume_name, parents):
        """Store ``{host: parent or None}`` for the caches of a volume."""
        if not parents:
            return
        with self.writer.using(ctx) as session:
            names = set(parents) | {p for p in parents.values() if p}
            ids = dict(session.execute(
                sa.select(models.Host.name, models.Host.id)
                .where(models.Host.name.in_(names))).all())
            volume_id = session.scalar(sa.select(models.Volume.id).filter_by(
                name=volume_name))
            for host, par in parents.items():
                if host not in ids or (par is not None and par not in ids):
                    continue  # deleted meanwhile; the next build fixes it
                session.execute(
                    sa.update(models.Cache)
                    .where(models.Cache.host_id == ids[host],
                           models.Cache.volume_id == volume_id)
                    .values(parent_host_id=None if par is None
                            else ids[par]))

    def volume_list(self, ctx):
        with self.reader.using(ctx) as session:
            return list(session.scalars(
                sa.select(models.Volume.name).order_by(models.Volume.name)))
