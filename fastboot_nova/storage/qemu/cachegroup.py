"""The block graph of a host cache group inside qemu-storage-daemon.

Per image::

    sources: parent exports and the origin (nbd / file / host_device,
    read-only), under a fifo quorum when there are several
      <- cache (qcow2 file, backing = the source or the quorum)
        <- copy-on-read filter
          -> NBD export named after the image (read-only)

A fifo quorum with a vote threshold of 1 reads from its first child and,
when a read fails there, from the next: with several sources a dead parent
costs no failed guest read and no control-plane round trip, the cache just
reads from the next source. The coordinator then re-parents to rebuild the
tree.

Everything here works on one QMP session and knows nothing of VMs, locks
or the state file: the engine decides what, this module knows how.
"""

import contextlib
import dataclasses
import hashlib
import logging
import time

from fastboot_nova import exception

LOG = logging.getLogger(__name__)

_EXPORT_DELETE_TIMEOUT = 10
_JOB_POLL_INTERVAL = 0.2


@dataclasses.dataclass(frozen=True)
class Nodes:
    """Daemon node names of one image.

    QEMU caps node names at 31 characters and image names may be 63, so
    names are derived from a hash; the ``fbX-`` prefix marks them as ours.
    """

    hash: str
    cache_file: str
    cache: str
    cor: str
    export: str
    job: str

    @classmethod
    def of(cls, image):
        h = hashlib.sha256(image.encode()).hexdigest()[:16]
        return cls(h, *('fb%s-%s' % (kind, h) for kind in 'fcrep'))

    def source(self, generation, index):
        """Node of source ``index``; generations alternate on re-parent."""
        return 'fbs-%s-%d%d' % (self.hash, generation, index)

    def quorum(self, generation):
        return 'fbq-%s-%d' % (self.hash, generation)

    def is_source(self, node, generation=None):
        if node[:3] not in ('fbs', 'fbq') or node[4:20] != self.hash:
            return False
        return generation is None or node[21:22] == str(generation)


def owned(node_name):
    """True for node and export names this module creates."""
    return node_name[:2] == 'fb' and node_name[3:4] == '-'


def deletion_order(node_name):
    """Sort key that deletes users before the nodes they use."""
    return {'r': 0, 'c': 1, 'f': 2, 'q': 3, 's': 4}.get(node_name[2:3], 9)


def start_nbd_server(qmp, unix_path=None, host=None, ports=(),
                     tls_creds=None):
    """Start the daemon's one NBD server; return the address it got.

    With ``host``, the first port of ``ports`` that is free is used;
    ``tls_creds`` (an object id) makes every client negotiate TLS.
    """
    tls = {'tls-creds': tls_creds} if tls_creds else {}
    if not host:
        qmp.execute('nbd-server-start',
                    addr={'type': 'unix', 'data': {'path': unix_path}})
        return {'type': 'unix', 'path': unix_path}
    errors = []
    for port in ports:
        try:
            qmp.execute('nbd-server-start',
                        addr={'type': 'inet',
                              'data': {'host': host, 'port': str(port)}},
                        **tls)
        except exception.QMPError as e:
            errors.append(e.msg)
            continue
        return {'type': 'inet', 'host': host, 'port': port}
    raise exception.DaemonError(
        reason='no free export port on %s in %s (%s)' % (
            host, '%d-%d' % (ports[0], ports[-1]) if ports else 'none',
            errors[-1] if errors else ''))


def _object_ids(qmp):
    try:
        return {o['name'] for o in qmp.execute('qom-list', path='/objects')}
    except exception.QMPError:
        return set()  # QEMU creates /objects with the first object


def add_psk_creds(qmp, object_id, endpoint, directory, username=None,
                  priority=None):
    """Create a ``tls-creds-psk`` object unless it exists already.

    ``directory`` holds ``keys.psk``; a client (``endpoint='client'``)
    presents ``username`` and its key from that file.
    """
    if object_id in _object_ids(qmp):
        return
    args = {'qom-type': 'tls-creds-psk', 'id': object_id,
            'endpoint': endpoint, 'dir': directory}
    if username:
        args['username'] = username
    if priority:
        args['priority'] = priority
    qmp.execute('object-add', **args)


def open_source(qmp, image, loc, fmt, node, reconnect_delay,
                tls_creds=None):
    """Add the read-only node ``node`` reading location ``loc``.

    The objects the node needs (an rbd origin's key, read by QEMU from a
    file) are added first, once per daemon.
    """
    try:
        objects = loc.objects()
        if objects:
            present = _object_ids(qmp)
            for obj in objects:
                if obj['id'] not in present:
                    qmp.execute('object-add', **obj)
        qmp.execute('blockdev-add',
                    **loc.blockdev(node, reconnect_delay, fmt, tls_creds))
    except exception.QMPError as e:
        raise exception.OriginUnavailable(image=image, location=loc.url,
                                          reason=e.kwargs.get('reason'))


def open_sources(qmp, image, sources, generation, reconnect_delay):
    """Open ``sources`` (``[(Location, fmt, tls_creds)]``, preferred first).

    Unreachable sources are left out; if none is reachable the error of
    the last one is raised. With one source its node is the backing; with
    several, a fifo quorum over them. Several sources get no reconnect
    delay: a dead parent must fail fast so the quorum moves on, and the
    NBD client keeps reconnecting to it in the background.

    :returns: the backing node name.
    """
    nodes = Nodes.of(image)
    delay = reconnect_delay if len(sources) == 1 else 0
    opened = []
    error = None
    for index, (loc, fmt, tls_creds) in enumerate(sources):
        node = nodes.source(generation, index)
        try:
            open_source(qmp, image, loc, fmt, node, delay, tls_creds)
        except exception.OriginUnavailable as e:
            LOG.warning('Source %s of image %s is unreachable: %s',
                        loc.url, image, e.msg)
            error = e
            continue
        opened.append(node)
    if not opened:
        raise error
    if len(opened) == 1:
        return opened[0]
    quorum = nodes.quorum(generation)
    try:
        qmp.execute('blockdev-add', driver='quorum', children=opened,
                    **{'node-name': quorum, 'vote-threshold': 1,
                       'read-pattern': 'fifo', 'read-only': True})
    except exception.QMPError:
        for node in opened:
            del_node(qmp, node)
        raise
    return quorum


def del_sources(qmp, image, generation=None):
    """Remove the source nodes of ``generation`` (all when None)."""
    nodes = Nodes.of(image)
    for node in sorted((n for n in node_names(qmp)
                        if nodes.is_source(n, generation)),
                       key=deletion_order):
        del_node(qmp, node)


def set_backing(qmp, image, backing):
    """Reopen the cache of ``image`` onto ``backing``, VMs running."""
    nodes = Nodes.of(image)
    qmp.execute('blockdev-reopen', options=[{
        'driver': 'qcow2', 'node-name': nodes.cache,
        'file': nodes.cache_file, 'backing': backing}])


@contextlib.contextmanager
def _all_or_nothing(qmp):
    """Yield the list of nodes the caller adds; remove them on failure.

    The caller appends each node once it exists; if a later step fails,
    those nodes are removed again, last first, and the error re-raised.
    """
    added = []
    try:
        yield added
    except exception.FastbootException:
        for node in reversed(added):
            del_node(qmp, node)
        raise


def add_cache(qmp, image, cache_path, backing):
    """Add cache, copy-on-read filter and export over ``backing``.

    All or nothing: on failure the nodes added here are removed again.
    ``backing`` is the origin node name, or None for a complete cache.
    """
    nodes = Nodes.of(image)
    with _all_or_nothing(qmp) as added:
        qmp.execute('blockdev-add', driver='file',
                    **{'node-name': nodes.cache_file,
                       'filename': cache_path})
        added.append(nodes.cache_file)
        qmp.execute('blockdev-add', driver='qcow2', backing=backing,
                    file=nodes.cache_file, **{'node-name': nodes.cache})
        added.append(nodes.cache)
        qmp.execute('blockdev-add', driver='copy-on-read',
                    file=nodes.cache, **{'node-name': nodes.cor})
        added.append(nodes.cor)
        qmp.execute('block-export-add', type='nbd', id=nodes.export,
                    name=image, writable=False,
                    **{'node-name': nodes.cor})


def add_sealed(qmp, image, cache_path):
    """Export a complete cache read-only, without copy-on-read or source.

    The file is opened read-only, so the daemon takes only a shared lock
    on it and VMs can open the same file as their qcow2 backing directly.
    All or nothing, like :func:`add_cache`.
    """
    nodes = Nodes.of(image)
    with _all_or_nothing(qmp) as added:
        qmp.execute('blockdev-add', driver='file', **{
            'node-name': nodes.cache_file, 'filename': cache_path,
            'read-only': True})
        added.append(nodes.cache_file)
        qmp.execute('blockdev-add', driver='qcow2', backing=None,
                    file=nodes.cache_file,
                    **{'node-name': nodes.cache, 'read-only': True})
        added.append(nodes.cache)
        qmp.execute('block-export-add', type='nbd', id=nodes.export,
                    name=image, writable=False,
                    **{'node-name': nodes.cache})


def del_node(qmp, node):
    """Remove ``node``; a node already gone is not an error."""
    with contextlib.suppress(exception.QMPError):
        qmp.execute('blockdev-del', **{'node-name': node})


def remove(qmp, image):
    """Remove export and every node of ``image`` that exists."""
    nodes = Nodes.of(image)
    if nodes.export in export_ids(qmp):
        del_export(qmp, nodes.export)
    present = node_names(qmp)
    for node in (nodes.cor, nodes.cache, nodes.cache_file):
        if node in present:
            qmp.execute('blockdev-del', **{'node-name': node})
    del_sources(qmp, image)


def del_export(qmp, export_id):
    # 'hard' drops connected clients; callers make sure none should remain.
    qmp.execute('block-export-del', id=export_id, mode='hard')
    deadline = time.monotonic() + _EXPORT_DELETE_TIMEOUT
    while export_id in export_ids(qmp):
        if time.monotonic() > deadline:
            raise exception.DaemonError(
                reason='export %s did not go away' % export_id)
        time.sleep(0.05)


def export_ids(qmp):
    return {e['id'] for e in qmp.execute('query-block-exports')}


def node_names(qmp):
    return {n['node-name'] for n in
            qmp.execute('query-named-block-nodes', flat=True)}


def node_size(qmp, node):
    for info in qmp.execute('query-named-block-nodes', flat=True):
        if info['node-name'] == node:
            return info['image']['virtual-size']
    raise exception.DaemonError(reason='node %s vanished' % node)


def start_prefetch(qmp, image):
    """Start copying every block of the origin into the cache."""
    nodes = Nodes.of(image)
    qmp.execute('block-stream', device=nodes.cache,
                **{'job-id': nodes.job, 'auto-dismiss': False})
    return nodes.job


def poll_job(qmp, job_id, progress=None):
    """One look at a job: True once it concluded; raises if it failed."""
    jobs = {j['id']: j for j in qmp.execute('query-jobs')}
    job = jobs.get(job_id)
    if job is None:
        raise exception.DaemonError(reason='job %s disappeared' % job_id)
    if progress is not None:
        progress(job['current-progress'], job['total-progress'])
    if job['status'] != 'concluded':
        return False
    qmp.execute('job-dismiss', id=job_id)
    if job.get('error'):
        raise exception.DaemonError(reason='prefetch failed: %s' %
                                    job['error'])
    return True


def wait_job(open_qmp, job_id, progress=None):
    """Poll ``job_id`` in short QMP sessions until it concludes."""
    while True:
        with open_qmp() as qmp:
            if poll_job(qmp, job_id, progress):
                return
        time.sleep(_JOB_POLL_INTERVAL)


def is_stale(node, known):
    """An owned node of no recorded image, or of a past generation.

    :param known: ``{Nodes.of(image).hash: (image, entry)}`` of the
        recorded images.
    """
    if not owned(node):
        return False
    image_entry = known.get(node[4:20])
    if image_entry is None:
        return True
    image, entry = image_entry
    nodes = Nodes.of(image)
    return nodes.is_source(node) and not nodes.is_source(
        node, entry.get('generation', 0))
