"""The block graph of a host cache group inside qemu-storage-daemon.

Per image::

    origin (file / host_device / nbd, read-only, reconnecting)
      <- cache (qcow2 file, backing = origin)
        <- copy-on-read filter
          -> NBD export named after the image (read-only)

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

    origin: str
    cache_file: str
    cache: str
    cor: str
    export: str
    job: str
    #: The origin's name while a re-parenting swaps origins.
    origin_alt: str

    @classmethod
    def of(cls, image):
        h = hashlib.sha256(image.encode()).hexdigest()[:16]
        return cls(*('fb%s-%s' % (kind, h) for kind in 'ofcrepq'))

    def all(self):
        """Block nodes, parents before children (the order to delete)."""
        return (self.cor, self.cache, self.cache_file, self.origin,
                self.origin_alt)

    def origins(self):
        return (self.origin, self.origin_alt)


def owned(node_name):
    """True for node and export names this module creates."""
    return node_name[:2] == 'fb' and node_name[3:4] == '-'


def deletion_order(node_name):
    """Sort key that deletes filters before caches before origins."""
    return {'r': 0, 'c': 1, 'f': 2, 'o': 3, 'q': 3}.get(node_name[2:3], 9)


def start_nbd_server(qmp, unix_path=None, host=None, ports=()):
    """Start the daemon's one NBD server; return the address it got.

    With ``host``, the first port of ``ports`` that is free is used.
    """
    if not host:
        qmp.execute('nbd-server-start',
                    addr={'type': 'unix', 'data': {'path': unix_path}})
        return {'type': 'unix', 'path': unix_path}
    errors = []
    for port in ports:
        try:
            qmp.execute('nbd-server-start',
                        addr={'type': 'inet',
                              'data': {'host': host, 'port': str(port)}})
        except exception.QMPError as e:
            errors.append(e.msg)
            continue
        return {'type': 'inet', 'host': host, 'port': port}
    raise exception.DaemonError(
        reason='no free export port on %s in %s (%s)' % (
            host, '%d-%d' % (ports[0], ports[-1]) if ports else 'none',
            errors[-1] if errors else ''))


def open_origin(qmp, image, loc, fmt, node, reconnect_delay):
    """Add the read-only origin node of ``image`` from location ``loc``."""
    try:
        qmp.execute('blockdev-add',
                    **loc.blockdev(node, reconnect_delay, fmt))
    except exception.QMPError as e:
        raise exception.OriginUnavailable(image=image, location=loc.url,
                                          reason=e.kwargs.get('reason'))


def add_cache(qmp, image, cache_path, backing):
    """Add cache, copy-on-read filter and export over ``backing``.

    All or nothing: on failure the nodes added here are removed again.
    ``backing`` is the origin node name, or None for a complete cache.
    """
    nodes = Nodes.of(image)
    added = []
    try:
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
    except exception.FastbootException:
        for node in reversed(added):
            del_node(qmp, node)
        raise


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
    for node in nodes.all():
        if node in present:
            qmp.execute('blockdev-del', **{'node-name': node})


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


def reparent(qmp, image, new_loc, fmt, reconnect_delay):
    """Point the cache of ``image`` at ``new_loc`` with VMs running.

    A new origin node is added, the cache is reopened onto it, and the old
    node is dropped: VM disks and children keep their connections to the
    export, which never goes away.
    """
    nodes = Nodes.of(image)
    present = node_names(qmp)
    # Alternate between two names so the old node lives until the reopen
    # succeeded.
    old_node, new_node = nodes.origins()
    if old_node not in present:
        old_node, new_node = new_node, old_node
    open_origin(qmp, image, new_loc, fmt, new_node, reconnect_delay)
    try:
        qmp.execute('blockdev-reopen', options=[{
            'driver': 'qcow2', 'node-name': nodes.cache,
            'file': nodes.cache_file, 'backing': new_node}])
    except exception.QMPError:
        del_node(qmp, new_node)
        raise
    if old_node in present:
        del_node(qmp, old_node)
    return new_node
