"""The host agent: keeps a host's caches in the coordinator's tree.

``attach`` adds an image to the host cache group and joins its tree; ``run``
heartbeats and watches the parents. When the parent a cache reads from
stops answering, the agent fails over at once to the next live source (an
alternate, the grandparent, or the origin, as the coordinator listed them),
tells the coordinator, and takes the new assignment it gets back. Reads
never wait for any of this: the cache's fifo quorum already reads on from
the next source (see fastboot_nova.storage.qemu.cachegroup).
"""

import contextlib
import dataclasses
import fcntl
import json
import logging
import socket
import threading
import time

from fastboot_nova import exception
from fastboot_nova.hierarchy import client as client_mod
from fastboot_nova.storage import location as location_mod

LOG = logging.getLogger(__name__)

PROBE_TIMEOUT = 1.0


def probe(url, timeout=PROBE_TIMEOUT):
    """True if the NBD server of ``url`` accepts a connection.

    Parents are other hosts' TCP exports: anything else (a local socket
    named by a URL another host reported) is never connected to.
    """
    try:
        loc = location_mod.parse_parent(url)
    except exception.InvalidLocation:
        return False
    family = socket.AF_INET6 if ':' in loc.host else socket.AF_INET
    address = (loc.host, loc.port)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


def _name_of(urls, parents):
    """The host whose export ``urls`` starts with; None: the origin.

    Looked up among ``parents``' sources; a parent no longer listed is
    named by its export URL.
    """
    if not urls:
        return None
    for source in (parents.primary,) + parents.alternates:
        if source.export_url == urls[0]:
            return source.host
    return urls[0]


@dataclasses.dataclass
class ReparentEvent:
    time: float
    volume: str
    old_parent: str
    new_parent: str
    reason: str


class HostAgent:
    """One host's membership in the coordinator's trees."""

    def __init__(self, engine, client, address, failure_domain=None,
                 interval=1.0, probe=probe, events_path=None,
                 on_token=None, lock_path=None):
        self.engine = engine
        self.client = client
        self.address = address
        self.failure_domain = failure_domain
        self.interval = interval
        self.probe = probe
        self.events_path = events_path
        #: Called with the host token when the coordinator issues one.
        self.on_token = on_token
        #: A file every agent of the host locks while it changes what a
        #: cache reads from (``fastboot create`` embeds one besides the
        #: ``fastboot agent`` daemon): one change, one event.
        self.lock_path = lock_path
        self.events = []
        #: volume -> the Parents the engine reads from now.
        self.following = {}
        self._lock = threading.Lock()

    # -- membership ----------------------------------------------------

    def register(self):
        """Register unless this host already holds a valid token.

        The token is made here and kept (``on_token``) before the first
        registration: one whose reply is lost is repeated with the same
        token, which the coordinator takes as the same host.
        """
        if self.client.token:
            try:
                self.client.heartbeat()
                return
            except client_mod.CoordinatorUnavailable:
                raise
            except client_mod.CoordinatorError:
                pass  # unknown here now: register again, same token
        self._register()

    def _register(self):
        if not self.client.token:
            self.client.token = self.client.new_token()
            if self.on_token:
                self.on_token(self.client.token)
        issued = self.client.token
        self.client.register(self.address, self.failure_domain)
        if self.on_token and self.client.token != issued:
            self.on_token(self.client.token)

    def heartbeat(self):
        try:
            self.client.heartbeat()
        except client_mod.CoordinatorError as e:
            if isinstance(e, client_mod.CoordinatorUnavailable):
                raise
            # Deregistered meanwhile (coordinator data lost, an operator):
            # join again with every cache this host holds.
            LOG.warning('Heartbeat refused (%s); registering again', e.msg)
            self._register()
            for volume in list(self.following):
                self._join(volume)

    # -- caches --------------------------------------------------------

    def attach(self, volume, origin):
        """Cache ``volume`` from ``origin`` here and join its tree."""
        image = self.engine.add_image(volume, origin)
        self._join(volume, image.export_url)
        return image

    def join(self, volume, export_url=None):
        """Join the tree of ``volume``, already cached on this host.

        Never raises for the coordinator: unreachable, the cache reads from
        the origin and a later ``check`` joins again.
        """
        self._join(volume, export_url)

    def rejoin(self, volume):
        """Join again after the cache's sources were reset under the agent.

        What this process remembers following no longer holds; the engine
        is asked again (see ``_follow``).
        """
        with self._lock:
            self.following.pop(volume, None)
        self._join(volume)

    def leave(self, volume):
        """Stop serving and following ``volume``: its cache goes away.

        The coordinator then assigns this host's children another source.
        Never raises for the coordinator: one that missed it finds out
        when the children cannot reach the export.
        """
        with self._lock:
            self.following.pop(volume, None)
        try:
            self.client.drop_cache(volume)
        except client_mod.CoordinatorError as e:
            LOG.warning('Could not tell the coordinator that the cache of '
                        '%s is gone: %s', volume, e.msg)

    def _join(self, volume, export_url=None):
        if export_url is None:
            export_url = self._export_url(volume)
        try:
            self.client.report_cache(volume, export_url)
            parents = self.client.parents(volume)
        except client_mod.CoordinatorError as e:
            # The cache reads from the origin until the coordinator is back.
            LOG.warning('Coordinator unusable for %s (%s): reading from the '
                        'origin', volume, e.msg)
            self.following.setdefault(volume, None)
            return
        self._follow(volume, parents, 'assigned')

    def _image(self, volume):
        image = self.engine.get_image(volume)
        if image is None:
            raise exception.ImageNotFound(image=volume)
        return image

    def _export_url(self, volume):
        return self._image(volume).export_url

    def _origin(self, volume):
        return self._image(volume).location

    @contextlib.contextmanager
    def _host_lock(self):
        with self._lock:
            if not self.lock_path:
                yield
                return
            with open(self.lock_path, 'a') as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)

    def _engine_parents(self, volume):
        return list(self._image(volume).parents)

    def _trusted(self, volume, parents):
        """``parents`` without the sources this host must not read from.

        The URLs come from the coordinator, which has them from other
        hosts: only another host's TCP export of this very volume is
        read (see :func:`location_mod.parse_parent`); a refused source is
        skipped as a dead one would be, the origin being the last resort.
        """
        own = self._export_url(volume)
        kept = []
        for source in (parents.primary,) + parents.alternates:
            if not source.is_origin:
                try:
                    location_mod.parse_parent(source.export_url,
                                              image=volume, own=own)
                except exception.InvalidLocation as e:
                    LOG.error('Volume %s: refusing parent %s: %s', volume,
                              source.host, e.msg)
                    continue
            kept.append(source)
        if len(kept) == 1 + len(parents.alternates):
            return parents
        kept = kept or [client_mod.Source(host=None)]
        return client_mod.Parents(primary=kept[0],
                                  alternates=tuple(kept[1:]),
                                  depth=parents.depth)

    def _follow(self, volume, parents, reason):
        parents = self._trusted(volume, parents)
        urls = parents.parent_urls()
        with self._host_lock():
            current = self.following.get(volume)
            if current is not None:
                if current.parent_urls() == urls:
                    return
                old = current.primary.host
            else:
                # New to this process, not necessarily to the host: another
                # agent of the host (``fastboot create``'s, this one before
                # a restart) may have applied this very assignment. The
                # engine, not this process's memory, knows.
                reading = self._engine_parents(volume)
                if reading == urls:
                    self.following[volume] = parents
                    return
                old = _name_of(reading, parents)
            if urls:
                self.engine.reparent(volume, urls[0], urls[1:])
            else:
                self.engine.reparent(volume, self._origin(volume))
            self.following[volume] = parents
            self._event(volume, old, parents.primary.host, reason)

    def _event(self, volume, old, new, reason):
        if old == new and reason == 'assigned':
            return
        event = ReparentEvent(time=time.time(), volume=volume,
                              old_parent=old, new_parent=new, reason=reason)
        self.events.append(event)
        LOG.info('Volume %s: parent %s -> %s (%s)', volume,
                 old or 'origin', new or 'origin', reason)
        if self.events_path:
            with open(self.events_path, 'a', encoding='utf-8') as f:
                f.write(json.dumps(dataclasses.asdict(event)) + '\n')

    # -- watching ------------------------------------------------------

    def check(self):
        """One round: heartbeat, fail over from dead parents, refresh."""
        try:
            self.heartbeat()
        except client_mod.CoordinatorUnavailable as e:
            LOG.warning('Coordinator unreachable: %s', e.msg)
        try:
            self.engine.ensure_exports()
        except exception.FastbootException as e:
            LOG.error('Could not restore the exports to other hosts: %s',
                      e.msg)
        # What the engine holds is the truth: caches added by other
        # processes (``fastboot create``) join here too, and caches
        # removed by them (``fastboot image remove``) leave.
        images = self.engine.list_images()
        held = {image.name for image in images}
        for volume in [v for v in self.following if v not in held]:
            self.leave(volume)
        for image in images:
            volume = image.name
            parents = self.following.get(volume)
            if volume not in self.following:
                self._join(volume, image.export_url)
            elif parents is not None and not parents.primary.is_origin \
                    and not self.probe(parents.primary.export_url):
                self._fail_over(volume, parents)
            else:
                self._refresh(volume)

    def _fail_over(self, volume, parents):
        dead = parents.primary.host
        alive = [s for s in parents.alternates
                 if s.is_origin or self.probe(s.export_url)]
        new_primary = alive[0] if alive else client_mod.Source(host=None)
        local = client_mod.Parents(primary=new_primary,
                                   alternates=tuple(alive[1:]))
        self._follow(volume, local, 'parent %s unreachable' % dead)
        try:
            # Tell the coordinator what we read from now, then take its
            # (possibly better) assignment.
            self.client.report_cache(volume, self._export_url(volume),
                                     parent=new_primary.host)
            self._take(volume, self.client.parents(volume), 'reassigned')
        except client_mod.CoordinatorError as e:
            LOG.warning('Could not report the fail-over of %s: %s', volume,
                        e.msg)

    def _take(self, volume, parents, reason):
        """Follow the coordinator's assignment, unless its primary is dead.

        The coordinator learns of a death later than the children do.
        """
        primary = parents.primary
        if not primary.is_origin and not self.probe(primary.export_url):
            LOG.info('Volume %s: not following %s, it does not answer',
                     volume, primary.host)
            return
        self._follow(volume, parents, reason)

    def _refresh(self, volume):
        try:
            if self.following.get(volume) is None:
                self._join(volume)
            else:
                self._take(volume, self.client.parents(volume),
                           'rebalanced')
        except client_mod.CoordinatorError as e:
            LOG.debug('No parents for %s now: %s', volume, e.msg)

    def run(self, stop):
        """Check every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                self.check()
            except exception.FastbootException as e:
                LOG.error('Agent round failed: %s', e.msg)
            stop.wait(self.interval)
