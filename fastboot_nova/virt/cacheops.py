"""Cache group operations of the driver: the host engine and its images.

Which volumes go through the host cache group
=============================================

A server is booted "the fastboot way" when all of these hold:

* ``[fastboot] use_cachegroup`` and ``[fastboot] use_cache_snapshot`` are
  both enabled on the compute host;
* the block device is the server's root volume (boot index 0);
* the Cinder volume carries the metadata ``fastboot_cacheable=true``
  (any value :func:`oslo_utils.strutils.bool_from_string` accepts);
* the volume cannot change under the cache: it is multiattach or attached
  read-only (``access_mode = ro`` in the connection info). A writable
  single-attach volume is owned by one server and is never cached;
* it is not encrypted, and the libvirt volume driver gives the host a local
  path for it (``device_path``: iSCSI, FC, NVMe-oF, NFS, local...), or it
  is an RBD volume and the backend is qemu (read through librbd, see
  :mod:`fastboot_nova.storage.rbd`). Other network-only volumes keep the
  ordinary path.

Everything else is attached exactly as LibvirtDriver does it.

The cache of a volume is named ``cinder-<volume id>``: every server of the
host booted from that volume shares it. It goes with its last server on the
host (before the origin is disconnected), unless ``[fastboot]
keep_idle_caches`` keeps it warm for the next server.
"""

import os
import threading

from oslo_log import log as logging
from oslo_utils import strutils

from fastboot_nova import exception
from fastboot_nova import storage
from fastboot_nova.storage import rbd
from fastboot_nova.virt import hierarchyops

LOG = logging.getLogger(__name__)

#: Cinder volume metadata key that marks a volume as cacheable.
CACHEABLE_KEY = 'fastboot_cacheable'
IMAGE_PREFIX = 'cinder-'


def is_marked_cacheable(volume):
    """Whether the volume carries ``fastboot_cacheable=true`` metadata."""
    metadata = volume.get('volume_metadata') or {}
    return strutils.bool_from_string(metadata.get(CACHEABLE_KEY))


class CacheOps:
    """The host's cache group, behind one lazily started engine.

    nova-compute opens no database: the engine's state file under
    ``[fastboot] state_path`` is the only host-side record.
    """

    def __init__(self, conf, engine_factory=None):
        self._conf = conf
        self._engine_factory = engine_factory or storage.get_engine
        self._engine = None
        self._engine_lock = threading.Lock()
        self.hierarchy = hierarchyops.HierarchyOps(conf, self)

    @property
    def enabled(self):
        opts = self._conf.fastboot
        return opts.use_cachegroup and opts.use_cache_snapshot

    @property
    def backend(self):
        """``[fastboot] backend``: the kind of disk the engine makes."""
        return self._conf.fastboot.backend

    @property
    def engine(self):
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    self._engine = self._engine_factory(self._conf)
        return self._engine

    @staticmethod
    def image_name(volume_id):
        return IMAGE_PREFIX + volume_id

    def origin_location(self, connection_info):
        """Where the cache reads a connected origin volume, or None.

        The host path the volume driver gave (``device_path``), or for an
        RBD volume (qemu backend) an ``rbd://`` location that the storage
        daemon reads through librbd, as QEMU reads it for an ordinary
        server (:mod:`fastboot_nova.storage.rbd`).
        """
        if rbd.is_rbd(connection_info) and self.backend == 'qemu':
            return rbd.location_from_connection_info(
                connection_info, conf=self._conf.fastboot_qemu.rbd_ceph_conf,
                key_dir=os.path.join(self._conf.fastboot.state_path,
                                     rbd.KEY_DIR))
        return (connection_info.get('data') or {}).get('device_path')

    def is_cacheable(self, volume, connection_info):
        """Whether ``volume`` (nova.volume.cinder.API.get) may be cached.

        :returns: ``(True, None)`` or ``(False, reason)``.
        """
        if not self.enabled:
            return False, 'use_cachegroup/use_cache_snapshot disabled'
        if not is_marked_cacheable(volume):
            return False, 'no %s=true volume metadata' % CACHEABLE_KEY
        data = connection_info.get('data') or {}
        read_only = data.get('access_mode') == 'ro'
        if not (volume.get('multiattach') or read_only):
            return False, 'neither multiattach nor read-only'
        if data.get('encrypted') or volume.get('encrypted'):
            return False, 'encrypted'
        return True, None

    def check_origin(self, volume):
        """Whether ``volume`` may be the shared origin of a fastboot image.

        Stricter than :meth:`is_cacheable`: every server holds its own
        Cinder attachment, which only a multiattach volume allows, so
        read-only is not enough.

        :returns: ``(True, None)`` or ``(False, reason)``.
        """
        if not self.enabled:
            return False, 'use_cachegroup/use_cache_snapshot disabled'
        if not is_marked_cacheable(volume):
            return False, 'it has no %s=true metadata' % CACHEABLE_KEY
        if not volume.get('multiattach'):
            return False, ('it is not multiattach: a writable volume belongs '
                           'to one server')
        if volume.get('encrypted'):
            return False, 'it is encrypted'
        return True, None

    def prepare(self, image, location):
        """Make sure the cached ``image`` reads from ``location``.

        When no server of this host uses the image, its origin connection
        may have been closed and re-opened since the cache last read from
        it: re-open it (``reparent`` to the same location is cheap).
        """
        cached = self.engine.get_image(image)
        if cached is not None:
            if not cached.vms:
                LOG.debug('Re-opening origin %s of idle cache %s',
                          location, image)
                self.engine.reparent(image, location)
                self.hierarchy.rejoin(image)
            return cached
        return self.hierarchy.attach(image, location)

    def remove_if_idle(self, image):
        """Remove the cache of ``image`` when no disk of this host uses it.

        Called before the origin is disconnected, since the cache reads
        from it. Never raises for the engine: a cache that cannot be
        removed now stays, and is re-opened on next use like a kept one.

        :returns: whether the cache was removed.
        """
        if self._conf.fastboot.keep_idle_caches:
            return False
        cached = self.engine.get_image(image)
        if cached is None or cached.vms:
            return False
        # Leave the tree first, so the coordinator moves child hosts to
        # another source before this one goes away.
        self.hierarchy.leave(image)
        try:
            self.engine.remove_image(image)
        except exception.ImageInUse:
            # A disk was made on it meanwhile; the agent's next round
            # joins the tree again.
            return False
        except exception.ImageNotFound:
            return False
        except exception.FastbootException as e:
            LOG.warning('Could not remove idle cache %s: %s', image, e.msg)
            return False
        LOG.info('Removed cache %s: no server of this host uses it', image)
        return True

    def users(self, image):
        """Names of this host's disks on ``image``."""
        cached = self.engine.get_image(image)
        return set(cached.vms) if cached is not None else set()

    def list_caches(self):
        return self.engine.list_images()
