"""Queries of boot batches, beside :mod:`.api` (hosts and caches).

:class:`BatchQueries` works on a :class:`~.api.Database`'s transactions.
The API uses the ``create``/``get``/``list`` side, the runner the
``claim``/``servers``/``events`` side; both go through here so that a
state change is one place. Everything returns detached rows.
"""

import json
import uuid

from oslo_db import exception as db_exc
import sqlalchemy as sa
from sqlalchemy import orm

from fastboot_nova.coordinator.db import batch_models as bm
from fastboot_nova.coordinator.db import models
from fastboot_nova.coordinator import exception

FINAL_STATES = ('ACTIVE', 'PARTIAL', 'ERROR', 'DELETED')
#: States the runner has work in.
WORK_STATES = ('PENDING', 'PREPARING', 'BUILDING', 'DELETING')


class BatchQueries:

    def __init__(self, db):
        self.db = db

    # -- API side -----------------------------------------------------------

    def create(self, ctx, project_id, user_id, key, request_hash, request,
               fields):
        """Persist a batch, or return the one ``key`` already names.

        Returns ``(batch, created)``; raises IdempotencyConflict when the
        key was used with another body.
        """
        existing = self.get_by_key(ctx, project_id, key)
        if existing is None:
            try:
                with self.db.writer.using(ctx) as session:
                    batch = bm.Batch(id=str(uuid.uuid4()),
                                     project_id=project_id, user_id=user_id,
                                     idempotency_key=key,
                                     request_hash=request_hash,
                                     request=json.dumps(request,
                                                        sort_keys=True),
                                     state='PENDING', purge=False, **fields)
                    session.add(batch)
                    session.flush()
                    self._event(session, batch.id, None, 'accepted')
                return self.get(ctx, batch.id, project_id), True
            except db_exc.DBDuplicateEntry:
                # Another request with the key won the race.
                existing = self.get_by_key(ctx, project_id, key)
        if existing.request_hash != request_hash:
            raise exception.IdempotencyConflict(key=key)
        return existing, False

    def get_by_key(self, ctx, project_id, key):
        """The batch ``key`` names in the project, or None."""
        with self.db.reader.using(ctx) as session:
            return session.scalars(
                sa.select(bm.Batch)
                .filter_by(project_id=project_id, idempotency_key=key)
                .options(orm.selectinload(bm.Batch.servers))).one_or_none()

    def get(self, ctx, batch_id, project_id=None):
        """The batch and its servers; ``project_id`` None: any project."""
        with self.db.reader.using(ctx) as session:
            query = (sa.select(bm.Batch).filter_by(id=batch_id)
                     .options(orm.selectinload(bm.Batch.servers)))
            if project_id is not None:
                query = query.filter_by(project_id=project_id)
            batch = session.scalars(query).one_or_none()
        if batch is None:
            raise exception.BatchNotFound(batch=batch_id)
        return batch

    def list(self, ctx, project_id=None):
        with self.db.reader.using(ctx) as session:
            query = (sa.select(bm.Batch)
                     .options(orm.selectinload(bm.Batch.servers))
                     .order_by(bm.Batch.created_at, bm.Batch.id))
            if project_id is not None:
                query = query.filter_by(project_id=project_id)
            return list(session.scalars(query))

    def request_delete(self, ctx, batch_id, project_id, purge):
        with self.db.writer.using(ctx) as session:
            query = sa.select(bm.Batch).filter_by(id=batch_id)
            if project_id is not None:
                query = query.filter_by(project_id=project_id)
            batch = session.scalars(query).one_or_none()
            if batch is None:
                raise exception.BatchNotFound(batch=batch_id)
            if batch.state != 'DELETED':
                batch.state = 'DELETING'
                batch.purge = batch.purge or purge
            self._event(session, batch.id, None, 'delete requested')
        return self.get(ctx, batch_id)

    def events(self, ctx, batch_id):
        with self.db.reader.using(ctx) as session:
            return list(session.scalars(
                sa.select(bm.BatchEvent).filter_by(batch_id=batch_id)
                .order_by(bm.BatchEvent.at, bm.BatchEvent.id)))

    # -- runner side ----------------------------------------------------------

    def work(self, ctx, limit=50):
        """Batches with work left, highest priority first, then oldest."""
        with self.db.reader.using(ctx) as session:
            return list(session.scalars(
                sa.select(bm.Batch.id)
                .where(bm.Batch.state.in_(WORK_STATES))
                .order_by(bm.Batch.priority.desc(), bm.Batch.created_at,
                          bm.Batch.id)
                .limit(limit)))

    def update(self, ctx, batch_id, **values):
        with self.db.writer.using(ctx) as session:
            session.execute(sa.update(bm.Batch)
                            .where(bm.Batch.id == batch_id)
                            .values(updated_at=models.utcnow(), **values))

    def ensure_slots(self, ctx, batch_id, count):
        """One PENDING server row per index 0..count-1 (idempotent)."""
        with self.db.writer.using(ctx) as session:
            have = set(session.scalars(sa.select(bm.BatchServer.index)
                                       .filter_by(batch_id=batch_id)))
            for index in range(count):
                if index not in have:
                    session.add(bm.BatchServer(batch_id=batch_id,
                                               index=index, state='PENDING',
                                               attempts=0))

    def update_server(self, ctx, batch_id, index, **values):
        with self.db.writer.using(ctx) as session:
            session.execute(sa.update(bm.BatchServer)
                            .where(bm.BatchServer.batch_id == batch_id,
                                   bm.BatchServer.index == index)
                            .values(updated_at=models.utcnow(), **values))

    def server_by_nova_id(self, ctx, server_id):
        with self.db.reader.using(ctx) as session:
            return session.scalars(sa.select(bm.BatchServer).filter_by(
                server_id=server_id)).one_or_none()

    def add_event(self, ctx, batch_id, server_id, phase, at=None,
                  detail=None):
        with self.db.writer.using(ctx) as session:
            self._event(session, batch_id, server_id, phase, at, detail)

    @staticmethod
    def _event(session, batch_id, server_id, phase, at=None, detail=None):
        session.add(bm.BatchEvent(
            batch_id=batch_id, server_id=server_id, phase=phase,
            at=at or models.utcnow(),
            detail=json.dumps(detail, sort_keys=True) if detail else None))

    def origin_get(self, ctx, source_id):
        with self.db.reader.using(ctx) as session:
            return session.scalars(sa.select(bm.Origin).filter_by(
                source_id=source_id)).one_or_none()

    def origin_put(self, ctx, project_id, source_id, **values):
        with self.db.writer.using(ctx) as session:
            origin = session.scalars(sa.select(bm.Origin).filter_by(
                source_id=source_id)).one_or_none()
            if origin is None:
                origin = bm.Origin(project_id=project_id,
                                   source_id=source_id)
                session.add(origin)
            for key, value in values.items():
                setattr(origin, key, value)
            return origin

    def origin_delete(self, ctx, source_id):
        with self.db.writer.using(ctx) as session:
            session.execute(sa.delete(bm.Origin).filter_by(
                source_id=source_id))

    def origin_users(self, ctx, source_id, but=None):
        """Batches other than ``but`` still using the source's origin."""
        with self.db.reader.using(ctx) as session:
            return session.scalar(
                sa.select(sa.func.count(bm.Batch.id))
                .where(bm.Batch.source_id == source_id,
                       bm.Batch.id != (but or ''),
                       bm.Batch.state.not_in(('DELETED', 'DELETING'))))
