"""The coordinator's logic between the API and the database.

Trees are not stored as such: the database keeps each cache's current
parent, and every read rebuilds the tree from the caches, the liveness of
their hosts (heartbeat age, computed here from database timestamps so that
every replica agrees) and those stored parents (which keep it stable). When
the rebuilt tree differs from what is stored, for example because a parent
died, the new parents are written under the volume's tooz lock, after
reading again inside that lock, so concurrent replicas converge on one
answer.
"""

import datetime
import hashlib
import logging

from fastboot_nova.coordinator.db import models
from fastboot_nova.coordinator import exception
from fastboot_nova.coordinator import tree as tree_mod

LOG = logging.getLogger(__name__)


def lock_name(volume):
    # Volume names may hold characters a lock file name must not.
    return 'volume-%s' % hashlib.sha256(volume.encode()).hexdigest()[:32]


class TreeService:

    def __init__(self, conf, db, coordination):
        self.db = db
        self.coordination = coordination
        self.fanout = conf.coordinator.fanout
        self.n_alternates = conf.coordinator.alternates
        self.host_timeout = conf.coordinator.host_timeout

    # -- liveness ---------------------------------------------------------

    def is_alive(self, heartbeat_at, state='active', now=None):
        now = now or models.utcnow()
        age = now - heartbeat_at
        return (state == 'active' and
                age <= datetime.timedelta(seconds=self.host_timeout))

    # -- building -----------------------------------------------------------

    def _build(self, rows, fresh=(), gone=()):
        """Build the tree of ``rows``.

        ``fresh`` hosts have a new cache whose NULL parent means "not
        assigned yet", not "the origin"; ``gone`` hosts are about to be
        removed and count as dead.
        """
        now = models.utcnow()
        members = [tree_mod.Member(name=r.host,
                                   failure_domain=r.failure_domain,
                                   warm=r.warm,
                                   alive=(r.host not in gone and
                                          self.is_alive(r.heartbeat_at,
                                                        r.state, now)))
                   for r in rows]
        previous = {r.host: r.parent for r in rows if r.host not in fresh}
        return tree_mod.build(members, fanout=self.fanout,
                              previous=previous,
                              alternates=self.n_alternates)

    @staticmethod
    def _changes(rows, tree):
        stored = {r.host: r.parent for r in rows}
        return {name: a.primary for name, a in tree.assignments.items()
                if stored.get(name, '') != a.primary}

    def current(self, ctx, volume):
        """The volume's rows and tree, storing the tree if it changed."""
        rows = self.db.volume_caches(ctx, volume)
        tree = self._build(rows)
        if not self._changes(rows, tree):
            return rows, tree
        with self.coordination.lock(lock_name(volume)):
            return self._rebuild_locked(ctx, volume)

    def _rebuild_locked(self, ctx, volume, fresh=(), gone=()):
        rows = self.db.volume_caches(ctx, volume, writer=True)
        tree = self._build(rows, fresh, gone)
        changes = self._changes(rows, tree)
        if changes:
            LOG.info('Volume %s: re-parenting %s', volume,
                     ', '.join('%s->%s' % (h, p or 'origin')
                               for h, p in sorted(changes.items())))
            self.db.set_parents(ctx, volume, changes)
        return rows, tree

    # -- changes from hosts -------------------------------------------------

    def report_cache(self, ctx, host, volume, export_url, warm,
                     parent=False):
        """Record a host's cache; ``parent`` is what it reads from now.

        ``parent=False`` means not reported; ``None`` means the origin.
        """
        # One transaction: no replica ever reads the new cache before its
        # parent is stored.
        with self.coordination.lock(lock_name(volume)), \
                self.db.writer.using(ctx):
            if parent is not False:
                self._check_parent(ctx, host, volume, parent)
            created = self.db.cache_put(ctx, host, volume, export_url, warm,
                                        parent=parent)
            fresh = {host} if created and parent is False else ()
            return self._rebuild_locked(ctx, volume, fresh=fresh)

    def _check_parent(self, ctx, host, volume, parent):
        if parent is None:
            return
        if parent == host:
            raise exception.ParentCycle(host=host, volume=volume,
                                        parent=parent, relation='itself')
        try:
            rows = self.db.volume_caches(ctx, volume, writer=True)
        except exception.VolumeNotFound:
            raise exception.ParentNotCaching(parent=parent, volume=volume)
        tree = self._build(rows)
        if parent not in tree.assignments:
            raise exception.ParentNotCaching(parent=parent, volume=volume)
        if parent in tree_mod.descendants(tree, host):
            raise exception.ParentCycle(host=host, volume=volume,
                                        parent=parent,
                                        relation='its descendant')

    def remove_cache(self, ctx, host, volume):
        with self.coordination.lock(lock_name(volume)), \
                self.db.writer.using(ctx):
            self.db.cache_delete(ctx, host, volume)
            try:
                self._rebuild_locked(ctx, volume)
            except exception.VolumeNotFound:
                pass  # that was the last cache of the volume

    def remove_host(self, ctx, host):
        """Re-parent the host's children in every tree, then delete it.

        Doing it in this order lets the children move to their grandparent
        (the host's own parent) rather than lose the trace of it.
        """
        for volume in self.db.host_volumes(ctx, host):
            with self.coordination.lock(lock_name(volume)), \
                    self.db.writer.using(ctx):
                self._rebuild_locked(ctx, volume, gone={host})
        self.db.host_delete(ctx, host)

    # -- views --------------------------------------------------------------

    def parents(self, ctx, volume, host):
        rows, tree = self.current(ctx, volume)
        by_host = {r.host: r for r in rows}
        if host not in by_host:
            raise exception.CacheNotFound(host=host, volume=volume)
        if host not in tree.assignments:
            raise exception.HostDead(host=host, timeout=self.host_timeout)
        assignment = tree.assignments[host]

        def ref(name):
            if name is None:
                return {'origin': True}
            return {'host': name, 'export_url': by_host[name].export_url}
        return {'volume': volume,
                'host': host,
                'depth': assignment.depth,
                'primary': ref(assignment.primary),
                'alternates': [ref(a) for a in assignment.alternates]}

    def tree(self, ctx, volume):
        rows, tree = self.current(ctx, volume)
        hosts = []
        for r in rows:
            a = tree.assignments.get(r.host)
            hosts.append({
                'host': r.host,
                'alive': a is not None,
                'warm': r.warm,
                'export_url': r.export_url,
                'failure_domain': r.failure_domain,
                'parent': a.primary if a else r.parent,
                'depth': a.depth if a else None,
                'alternates': list(a.alternates) if a else [],
                'children': tree.children.get(r.host, []) if a else [],
            })
        return {'volume': volume,
                'fanout': self.fanout,
                'depth_bound': tree.bound,
                'origin_children': tree.children.get(None, []),
                'hosts': hosts}
