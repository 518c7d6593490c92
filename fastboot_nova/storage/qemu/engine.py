"""The ``qemu`` backend: a userspace cache group in qemu-storage-daemon.

Per image (shared read-only origin) the host daemon holds::

    origin (file / host_device / nbd, read-only, reconnecting)
      <- cache (qcow2 file under state_path/caches, backing = origin)
        <- copy-on-read filter
          -> NBD export named after the image (read-only)

so a block crosses the network at most once per host. Each VM gets a qcow2
overlay under state_path/vms whose backing is that export, always on the
daemon's unix socket: VM writes land in the overlay and never reach the
cache or the origin. With ``export_address`` set, a second daemon, the
export relay (:mod:`fastboot_nova.storage.qemu.relay`), re-exports the
caches to child hosts over TCP, with TLS-PSK unless ``export_auth =
none``.

Locks are per VM and per image (inter-process, under state_path/locks):
creates of different images never wait on each other, and concurrent
creates of one image add its origin exactly once.
"""

import contextlib
import logging
import os
import shutil
import time

from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.storage import base
from fastboot_nova.storage import location as location_mod
from fastboot_nova.storage import names
from fastboot_nova.storage.qemu import access
from fastboot_nova.storage.qemu import cachegroup
from fastboot_nova.storage.qemu import daemon as daemon_mod
from fastboot_nova.storage.qemu import host
from fastboot_nova.storage.qemu import images
from fastboot_nova.storage.qemu import psk
from fastboot_nova.storage.qemu import relay
from fastboot_nova.storage.qemu import restart
from fastboot_nova.storage.qemu import space

LOG = logging.getLogger(__name__)

MiB = 1024 * 1024
RELAY_DIR = 'relay'
TLS_DIR = 'tls'
# sockaddr_un.sun_path is 108 bytes; the longest socket path we use under
# the state path is the relay's monitor.
_MAX_STATE_PATH = 107 - len('/relay/qmp.sock')


def _fresh_private(path):
    """Create ``path`` empty, 0600, replacing a leftover of a crash.

    A symlink planted there is removed, never followed (O_EXCL).
    """
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fileutils.create_private(path)


class QemuEngine(base.LocalEngine):
    """Block engine on one qemu-storage-daemon per state path."""

    DATA_DIRS = ('caches', 'vms')
    capabilities = dict(base.Engine.capabilities, snapshot=True,
                        migrate=True, prefetch=True)

    def __init__(self, conf, state_path=None, execute=None, daemon=None,
                 relay_daemon=None):
        self.conf = conf
        self.opts = conf.fastboot
        #: The ``[fastboot_qemu]`` options.
        self.qopts = conf.fastboot_qemu
        state_path = self._check_state_path(
            state_path or self.opts.state_path)
        if self.opts.export_port_min > self.opts.export_port_max:
            raise exception.FastbootException(
                'export_port_min (%d) is above export_port_max (%d)' % (
                    self.opts.export_port_min, self.opts.export_port_max))
        # Checked before anything is created or started.
        self.auth = psk.from_opts(self.opts, self.qopts)
        self._init_state(state_path)
        self.cache_dir = os.path.join(self.state_path, 'caches')
        self.vm_dir = os.path.join(self.state_path, 'vms')
        self.nbd_socket = os.path.join(self.state_path, 'nbd.sock')
        self.img = images.QemuImg(self.qopts.qemu_img, execute=execute)
        self.daemon = daemon or daemon_mod.StorageDaemon(
            self.state_path, binary=self.qopts.qemu_storage_daemon,
            execute=execute, start_timeout=self.qopts.daemon_start_timeout)
        self.relay_dir = os.path.join(self.state_path, RELAY_DIR)
        self.tls_dir = os.path.join(self.state_path, TLS_DIR)
        self.relay = relay_daemon or daemon_mod.StorageDaemon(
            self.relay_dir, binary=self.qopts.qemu_storage_daemon,
            execute=execute, start_timeout=self.qopts.daemon_start_timeout,
            extra_args=relay.trace_args(self.relay_log))
        self.daemons = host.HostDaemons(
            self.opts, self.state, self._lock, self.daemon, self.relay,
            self.auth, self.nbd_socket, self.relay_dir, self.tls_dir,
            self._restore_image)

    def ensure_exports(self):
        return self.daemons.ensure_exports()

    @property
    def relay_log(self):
        """Refused negotiations of other hosts with the relay."""
        return os.path.join(self.relay_dir, 'export.log')

    @staticmethod
    def _check_state_path(path):
        path = os.path.abspath(path)
        if len(path) > _MAX_STATE_PATH:
            raise exception.InvalidDestination(
                destination=path,
                reason='state paths hold unix sockets and must be at most '
                       '%d characters' % _MAX_STATE_PATH)
        if ',' in path or any(ord(c) < 32 for c in path):
            raise exception.InvalidDestination(
                destination=path,
                reason='state paths must not contain commas or control '
                       'characters')
        return path

    # -- paths and addresses -------------------------------------------

    def _vm_path(self, vm):
        return os.path.join(self.vm_dir, vm + '.qcow2')

    def vm_paths(self, vm, entry):
        return {'path': self._vm_path(vm)}

    def _cache_path(self, image):
        return os.path.join(self.cache_dir, image + '.qcow2')

    def _local_server(self):
        """The NBD server local VMs (and the relay) connect to."""
        return {'type': 'unix', 'path': self.nbd_socket}

    def _backing_spec(self, image, st=None):
        return {'driver': 'raw',
                'file': {'driver': 'nbd', 'server': self._local_server(),
                         'export': image,
                         'reconnect-delay': self.qopts.parent_reconnect_delay}}

    def _vm_backing(self, image, image_entry):
        """``(backing name, format)`` of a new VM overlay on ``image``.

        A sealed cache is the overlay's backing file itself: reads go
        straight to the file, with no daemon or NBD in between. Otherwise
        the backing is the daemon's export.
        """
        if image_entry.get('sealed') and self.qopts.direct_complete_cache:
            return self._cache_path(image), 'qcow2'
        return images.json_backing(self._backing_spec(image)), 'raw'

    def export_url(self, image, st=None):
        """Where other hosts read ``image`` (local tools without one)."""
        export = (st or self.state.read()).get('export') or {}
        if self.opts.export_address and export.get('type') == 'inet':
            host = export['host']
            if host in ('0.0.0.0', '::'):
                host = '127.0.0.1' if host == '0.0.0.0' else '::1'
            return location_mod.nbd_url(image, host=host,
                                        port=int(export['port']))
        return location_mod.nbd_url(image, socket=self.nbd_socket)

    def _restore_image(self, qmp, image, entry, report):
        try:
            self._add_image_nodes(qmp, image, entry)
        except exception.FastbootException as e:
            LOG.error('Could not restore the cache of image %s: %s',
                      image, e.msg)
            report.failed_images.append(image)
        else:
            report.restored_images.append(image)

    # -- image nodes -----------------------------------------------------

    def _add_image_nodes(self, qmp, image, entry):
        """Re-create the graph of a recorded image; all or nothing."""
        if entry.get('sealed'):
            cachegroup.add_sealed(qmp, image, self._cache_path(image))
            return
        backing = None
        if not entry.get('prefetched'):
            # A complete cache needs no source at all.
            backing = self._open_backing(qmp, image, entry)
        try:
            cachegroup.add_cache(qmp, image, self._cache_path(image),
                                 backing)
        except exception.FastbootException:
            cachegroup.del_sources(qmp, image)
            raise

    def _open_backing(self, qmp, image, entry):
        """Open the image's parents, then its origin as the last resort.

        Parents are other hosts' relays: they get this host's TLS
        credentials. The origin is the storage array: it gets none.
        """
        sources = []
        error = None
        parent_creds = None
        if self.auth is not None and entry.get('parents'):
            # A daemon started before the key was configured lacks them.
            self.daemons.add_client_creds(qmp)
            parent_creds = relay.CLIENT_CREDS
        for url in entry.get('parents', []) + [entry['location']]:
            is_origin = url == entry['location']
            fmt = entry['format'] if is_origin else 'raw'
            try:
                sources.append((location_mod.parse(url), fmt,
                                None if is_origin else parent_creds))
            except exception.InvalidLocation as e:
                LOG.warning('Source %s of image %s is unusable: %s', url,
                            image, e.msg)
                error = e
        if not sources:
            raise error
        return cachegroup.open_sources(qmp, image, sources,
                                       entry.get('generation', 0),
                                       self.qopts.parent_reconnect_delay)

    def _check_space(self, image, size, st):
        space.check(image, size, st['images'], self._cache_path,
                    self.cache_dir, self.qopts.cache_size_limit * MiB)

    def _ensure_image(self, image, loc):
        """Cache ``image`` from ``loc`` unless it is already; image-locked.

        :returns: the state entry of the image.
        """
        self.daemons.ensure()
        st = self.state.read()
        entry = st['images'].get(image)
        if entry is not None:
            if entry['location'] != loc.url:
                raise exception.ImageConflict(image=image,
                                              existing=entry['location'],
                                              location=loc.url)
            with self.daemon.qmp() as qmp:
                exports = cachegroup.export_ids(qmp)
                if cachegroup.Nodes.of(image).export not in exports:
                    LOG.warning('Cache of image %s was missing; restoring',
                                image)
                    self._add_image_nodes(qmp, image, entry)
            self.daemons.relay_add(image)
            return entry
        return self._add_image(image, loc, st)

    def _add_image(self, image, loc, st):
        LOG.info('Adding image %s from %s to the cache group', image,
                 loc.url)
        # Network origins (NBD, RBD volumes) are raw; a local file says.
        fmt = 'raw' if loc.path is None else \
            self.img.origin_format(loc.path)
        origin = cachegroup.Nodes.of(image).source(0, 0)
        cache_path = self._cache_path(image)
        with self.daemon.qmp() as qmp:
            cachegroup.open_source(qmp, image, loc, fmt, origin,
                                   self.qopts.parent_reconnect_delay)
            try:
                size = cachegroup.node_size(qmp, origin)
                self._check_space(image, size, st)
                tmp = cache_path + '.tmp'
                _fresh_private(tmp)
                self.img.create_cache(tmp, size, loc.backing_name, fmt,
                                      self.qopts.cache_cluster_size)
                os.rename(tmp, cache_path)
                entry = {'location': loc.url, 'format': fmt,
                         'virtual_size': size, 'prefetched': False,
                         'parents': [], 'generation': 0,
                         'added_at': time.time()}
                cachegroup.add_cache(qmp, image, cache_path, origin)
            except BaseException:
                cachegroup.del_node(qmp, origin)
                for path in (cache_path + '.tmp', cache_path):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                raise
        with self.state.update() as st:
            st['images'][image] = entry
        self.daemons.relay_add(image)
        return entry

    # -- VM disks --------------------------------------------------------

    def _check_not_in_use(self, vm, entry):
        path = entry['path']
        if os.path.exists(path) and self.img.in_use(path):
            raise exception.VmDiskInUse(vm=vm)

    def _disk(self, vm, entry):
        path = entry['path']
        return base.VmDisk(name=vm, image=entry['image'], path=path,
                           written_bytes=space.allocated(path))

    def _new_disk(self, vm, image, loc, fill):
        """Record ``vm`` on ``image`` and build its disk with ``fill(tmp)``.

        Caller holds the VM lock (see :meth:`base.LocalEngine._new_vm`);
        the disk file is written under a temporary name and renamed when
        complete.
        """
        path = self._vm_path(vm)
        tmp = os.path.join(self.vm_dir, '.%s.qcow2.tmp' % vm)
        image_entry = {}

        def prepare():
            image_entry.update(self._ensure_image(image, loc))
            return {'image': image, 'path': path}

        def build(_entry):
            # Mode 0600 before any data is in it; qemu-img and copies
            # keep the mode of the file they write into.
            _fresh_private(tmp)
            fill(tmp, image_entry)
            os.rename(tmp, path)

        def undo(_entry):
            for leftover in (tmp, path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

        return self._new_vm(vm, image, prepare, build, undo)

    def add_image(self, image, location):
        names.validate(image, 'image')
        loc = location_mod.parse(location)
        with self._lock('image', image):
            self._ensure_image(image, loc)
        return self._image_info(image)

    def _image_info(self, image):
        return self.get_image(image)

    def create(self, vm, image, location):
        names.validate(vm, 'VM')
        names.validate(image, 'image')
        loc = location_mod.parse(location)

        def fill(tmp, image_entry):
            backing, fmt = self._vm_backing(image, image_entry)
            if fmt == 'qcow2':
                self.img.create_overlay_on_file(
                    tmp, image_entry['virtual_size'], backing)
            else:
                self.img.create_overlay(
                    tmp, image_entry['virtual_size'],
                    self._backing_spec(image, self.state.read()))

        with self._vm_locks(vm):
            disk = self._new_disk(vm, image, loc, fill)
        entry = self.state.read()['images'].get(image, {})
        backing, fmt = self._vm_backing(image, entry)
        access.grant_clients(self.state_path, self.vm_dir, self.nbd_socket,
                             self.qopts.client_group,
                             backing if fmt == 'qcow2' else None)
        LOG.info('Created VM disk %s on image %s', vm, image)
        return disk

    def _delete_vm(self, vm, entry):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._vm_path(vm))

    def snapshot(self, vm, name, location):
        names.validate(vm, 'VM')
        names.validate(name, 'snapshot')
        directory = os.path.abspath(location)
        if not os.path.isdir(directory):
            raise exception.InvalidDestination(
                destination=location, reason='not an existing directory')
        target = os.path.join(directory, name + '.qcow2')
        if os.path.lexists(target):
            raise exception.InvalidDestination(
                destination=target, reason='it already exists')
        with self._vm_locks(vm):
            st = self.state.read()
            entry = self._vm_entry(vm, st)
            image_entry = st['images'][entry['image']]
            self._check_not_in_use(vm, entry)
            tmp = os.path.join(directory, '.%s.qcow2.tmp' % name)
            try:
                _fresh_private(tmp)
                shutil.copyfile(entry['path'], tmp)
                # The snapshot keeps only the VM's own blocks and reads the
                # rest from the origin, so it stays usable on any host.
                self.img.rebase_unsafe(
                    tmp, location_mod.parse(
                        image_entry['location']).backing_name,
                    image_entry['format'])
                os.rename(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return target

    def _clone_locked(self, vm, entry, destination, image_entry):
        source = self._vm_path(vm)
        return self._new_disk(
            destination, entry['image'],
            location_mod.parse(image_entry['location']),
            lambda tmp, _image_entry: shutil.copyfile(source, tmp))

    def migrate(self, vm, destination):
        names.validate(vm, 'VM')
        if not os.path.isdir(destination):
            raise exception.InvalidDestination(
                destination=destination,
                reason='not the state path (an existing directory) of '
                       'another engine')
        target = QemuEngine(self.conf, state_path=destination,
                            execute=self.img.execute)
        if os.path.realpath(target.state_path) == \
                os.path.realpath(self.state_path):
            raise exception.InvalidDestination(
                destination=destination, reason='it is this engine')
        with self._vm_locks(vm):
            st = self.state.read()
            entry = self._vm_entry(vm, st)
            image = entry['image']
            self._check_not_in_use(vm, entry)
            disk = target.adopt(vm, image, st['images'][image]['location'],
                                entry['path'])
            os.unlink(entry['path'])
            with self.state.update() as st:
                st['vms'].pop(vm, None)
        LOG.info('Migrated VM disk %s to %s', vm, target.state_path)
        return disk

    def adopt(self, vm, image, location, source_path):
        """Take a copy of another engine's disk of ``vm`` on ``image``."""
        loc = location_mod.parse(location)

        def fill(tmp, image_entry):
            shutil.copyfile(source_path, tmp)
            self.img.rebase_unsafe(tmp,
                                   *self._vm_backing(image, image_entry))

        with self._vm_locks(vm):
            return self._new_disk(vm, image, loc, fill)

    def _cached_image(self, image, entry, users, st):
        cached = (entry['virtual_size'] if entry.get('prefetched') else
                  space.allocated(self._cache_path(image)))
        return base.CachedImage(
            name=image, location=entry['location'],
            virtual_size=entry['virtual_size'],
            cached_bytes=min(cached, entry['virtual_size']),
            export_url=self.export_url(image, st),
            vms=users, parents=tuple(entry.get('parents', ())))

    # -- cache administration ------------------------------------------

    def prefetch(self, image, progress=None):
        names.validate(image, 'image')
        with self._lock('image', image):
            self.daemons.ensure()
            st = self.state.read()
            entry = st['images'].get(image)
            if entry is None:
                raise exception.ImageNotFound(image=image)
            if not entry.get('prefetched'):
                with self.daemon.qmp() as qmp:
                    job = cachegroup.start_prefetch(qmp, image)
                cachegroup.wait_job(self.daemon.qmp, job, progress)
                with self.daemon.qmp() as qmp:
                    # The cache holds every block now: drop the links to
                    # parents and origin, it no longer depends on them.
                    cachegroup.del_sources(qmp, image)
                with self.state.update() as st:
                    st['images'][image]['prefetched'] = True
                entry = self.state.read()['images'][image]
            if self.qopts.direct_complete_cache and not entry.get('sealed'):
                self._seal(image)
        return self._image_info(image)

    def _seal(self, image):
        """Re-open a complete cache read-only, off the copy-on-read path.

        Caller holds the image lock. The export goes away for a moment:
        VMs reading through it wait for the reconnect (their overlays
        have ``reconnect-delay``), children read from their next source.
        A crash half-way leaves ``sealed`` false: the next start opens
        the cache as before and the next prefetch seals it.
        """
        cache_path = self._cache_path(image)
        with self.daemon.qmp() as qmp:
            cachegroup.remove(qmp, image)
            try:
                self.img.drop_backing(cache_path)
                cachegroup.add_sealed(qmp, image, cache_path)
            except exception.FastbootException:
                LOG.exception('Could not seal the cache of image %s; '
                              'serving it as before', image)
                cachegroup.add_cache(qmp, image, cache_path, None)
                return
        with self.state.update() as st:
            st['images'][image]['sealed'] = True
        LOG.info('Sealed the complete cache of image %s: new VMs read '
                 '%s directly', image, cache_path)

    def reparent(self, image, location, alternates=()):
        """Read ``image``'s missing blocks from ``location`` from now on.

        ``location`` is a parent host's export of the same image, or the
        origin; ``alternates`` are tried in order when it fails, and the
        origin always comes last. VMs and children keep running: only the
        nodes under the cache change.
        """
        names.validate(image, 'image')
        st = self.state.read()
        location_mod.check_parents(
            [location] + list(alternates), image,
            origin=st['images'].get(image, {}).get('location'),
            own=self.export_url(image, st))
        parents = []
        for url in [location] + list(alternates):
            url = location_mod.parse(url).url
            if url not in parents:
                parents.append(url)
        with self._lock('image', image):
            self.daemons.ensure()
            entry = self.state.read()['images'].get(image)
            if entry is None:
                raise exception.ImageNotFound(image=image)
            if entry.get('prefetched'):
                LOG.info('Image %s is fully cached; it needs no parent',
                         image)
                return
            parents = [p for p in parents if p != entry['location']]
            old = entry.get('generation', 0)
            new_entry = dict(entry, parents=parents, generation=1 - old)
            with self.daemon.qmp() as qmp:
                # Leftovers of an interrupted re-parent hold the names.
                cachegroup.del_sources(qmp, image, 1 - old)
                backing = self._open_backing(qmp, image, new_entry)
                try:
                    cachegroup.set_backing(qmp, image, backing)
                except exception.FastbootException:
                    cachegroup.del_sources(qmp, image, 1 - old)
                    raise
                cachegroup.del_sources(qmp, image, old)
            with self.state.update() as st:
                st['images'][image]['parents'] = parents
                st['images'][image]['generation'] = 1 - old
        LOG.info('Image %s now reads from %s', image,
                 ', '.join(parents + [entry['location']]))

    def remove_image(self, image):
        names.validate(image, 'image')
        with self._lock('image', image):
            self._idle_image(image, self.state.read())
            self.daemons.ensure()
            if self.opts.export_address:
                with self.relay.qmp() as qmp:
                    relay.remove_export(qmp, image)
            with self.daemon.qmp() as qmp:
                cachegroup.remove(qmp, image)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._cache_path(image))
            with self.state.update() as st:
                st['images'].pop(image, None)
        LOG.info('Removed image %s from the cache group', image)

    # -- restart safety ------------------------------------------------

    def reconcile(self):
        report = self.daemons.ensure() or base.ReconcileReport()
        st = self.state.read()
        known = {cachegroup.Nodes.of(image).hash: (image, entry)
                 for image, entry in st['images'].items()}
        known_exports = {cachegroup.Nodes.of(image).export
                         for image in st['images']}
        with self.daemon.qmp() as qmp:
            exports = cachegroup.export_ids(qmp)
            for export_id in sorted(exports - known_exports):
                if cachegroup.owned(export_id):
                    cachegroup.del_export(qmp, export_id)
                    report.removed_orphan_nodes.append(export_id)
            for image, entry in sorted(st['images'].items()):
                if image in report.restored_images + report.failed_images:
                    continue
                if cachegroup.Nodes.of(image).export not in exports:
                    with self._lock('image', image):
                        self._restore_image(qmp, image, entry, report)
            orphans = sorted((n for n in cachegroup.node_names(qmp)
                              if cachegroup.is_stale(n, known)),
                             key=cachegroup.deletion_order)
            for node in orphans:
                cachegroup.del_node(qmp, node)
                report.removed_orphan_nodes.append(node)
        self.daemons.reconcile_relay(report)
        restart.remove_orphan_files(self, st, report)
        restart.finish_vms(self, report)
        return report

    def shutdown(self):
        self.relay.stop()
        self.daemon.stop()
