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
import hashlib
import logging
import os
import shutil
import time

from oslo_concurrency import lockutils

from fastboot_nova import exception
from fastboot_nova.storage import base
from fastboot_nova.storage import location as location_mod
from fastboot_nova.storage import names
from fastboot_nova.storage.qemu import cachegroup
from fastboot_nova.storage.qemu import daemon as daemon_mod
from fastboot_nova.storage.qemu import images
from fastboot_nova.storage.qemu import psk
from fastboot_nova.storage.qemu import relay
from fastboot_nova.storage import state as state_mod

LOG = logging.getLogger(__name__)

MiB = 1024 * 1024
RELAY_DIR = 'relay'
TLS_DIR = 'tls'
# sockaddr_un.sun_path is 108 bytes; the longest socket path we use under
# the state path is the relay's monitor.
_MAX_STATE_PATH = 107 - len('/relay/qmp.sock')


class QemuEngine(base.Engine):
    """Block engine on one qemu-storage-daemon per state path."""

    def __init__(self, conf, state_path=None, execute=None, daemon=None,
                 relay_daemon=None):
        self.conf = conf
        self.opts = conf.fastboot
        self.state_path = self._check_state_path(
            state_path or self.opts.state_path)
        if self.opts.export_port_min > self.opts.export_port_max:
            raise exception.FastbootException(
                'export_port_min (%d) is above export_port_max (%d)' % (
                    self.opts.export_port_min, self.opts.export_port_max))
        # Checked before anything is created or started.
        self.auth = psk.from_opts(self.opts)
        self.cache_dir = os.path.join(self.state_path, 'caches')
        self.vm_dir = os.path.join(self.state_path, 'vms')
        self.lock_path = os.path.join(self.state_path, 'locks')
        self.nbd_socket = os.path.join(self.state_path, 'nbd.sock')
        for path in (self.state_path, self.cache_dir, self.vm_dir,
                     self.lock_path):
            os.makedirs(path, mode=0o750, exist_ok=True)
        self.state = state_mod.StateFile(self.state_path)
        self._lock_prefix = hashlib.sha256(
            self.state_path.encode()).hexdigest()[:8] + '-'
        self.img = images.QemuImg(self.opts.qemu_img, execute=execute)
        self.daemon = daemon or daemon_mod.StorageDaemon(
            self.state_path, binary=self.opts.qemu_storage_daemon,
            execute=execute, start_timeout=self.opts.daemon_start_timeout)
        self.relay_dir = os.path.join(self.state_path, RELAY_DIR)
        self.tls_dir = os.path.join(self.state_path, TLS_DIR)
        self.relay = relay_daemon or daemon_mod.StorageDaemon(
            self.relay_dir, binary=self.opts.qemu_storage_daemon,
            execute=execute, start_timeout=self.opts.daemon_start_timeout,
            extra_args=relay.trace_args(self.relay_log))

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

    # -- locks ---------------------------------------------------------

    def _lock(self, kind, name):
        # lockutils keys its in-process semaphores by name alone: make the
        # name unique per engine so two engines in one process (migrate)
        # do not share locks.
        return lockutils.lock('%s%s-%s' % (self._lock_prefix, kind, name),
                              external=True, lock_path=self.lock_path)

    @contextlib.contextmanager
    def _vm_locks(self, *vms):
        # Sorted, so two clones in opposite directions cannot deadlock.
        with contextlib.ExitStack() as stack:
            for vm in sorted(set(vms)):
                stack.enter_context(self._lock('vm', vm))
            yield

    # -- paths and addresses -------------------------------------------

    def _vm_path(self, vm):
        return os.path.join(self.vm_dir, vm + '.qcow2')

    def _cache_path(self, image):
        return os.path.join(self.cache_dir, image + '.qcow2')

    def _local_server(self):
        """The NBD server local VMs (and the relay) connect to."""
        return {'type': 'unix', 'path': self.nbd_socket}

    def _backing_spec(self, image, st=None):
        return {'driver': 'raw',
                'file': {'driver': 'nbd', 'server': self._local_server(),
                         'export': image,
                         'reconnect-delay': self.opts.parent_reconnect_delay}}

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

    # -- daemon ----------------------------------------------------------

    def _ensure_daemon(self):
        """Start the daemons that are not running and restore their exports.

        :returns: a ReconcileReport when a daemon was (re)started.
        """
        report = None
        if not self.daemon.is_running():
            with self._lock('daemon', 'qsd'):
                if not self.daemon.is_running():
                    report = self._start_daemon()
        elif not os.path.exists(self.nbd_socket):
            self._check_local_export()
        if self.opts.export_address and not self.relay.is_running():
            with self._lock('daemon', 'relay'):
                if not self.relay.is_running():
                    report = report or base.ReconcileReport()
                    self._start_relay(report)
        return report

    def _check_local_export(self):
        # The socket appears right after the daemon starts, under the
        # lock: a daemon still without it is not this version's.
        with self._lock('daemon', 'qsd'):
            if self.daemon.is_running() and \
                    not os.path.exists(self.nbd_socket):
                raise exception.DaemonError(
                    reason='the running qemu-storage-daemon (pid %s) does '
                           'not serve %s: an earlier version of fastboot '
                           'started it with its export on TCP. Stop it '
                           '(fastboot shutdown) when no VM uses it; the '
                           'next operation starts it afresh' % (
                               self.daemon.pid(), self.nbd_socket))

    def ensure_exports(self):
        """Keep the export relay in step with the cache daemon.

        Run by the host agent every round. A dead relay beside a live cache
        daemon is restarted with every export it had (it holds no data). A
        cache daemon that is gone stops the relay: children must stop
        taking this host for a live parent and fail over. The cache daemon
        itself is left to the next engine operation or reconcile.
        """
        if not self.opts.export_address:
            return None
        if self.daemon.pid() is None:
            # Only a process that is gone: a busy monitor is no reason to
            # take the exports away from the children.
            if self.relay.is_running():
                LOG.warning('The cache daemon is down: stopping the export '
                            'relay so that children fail over')
                self.relay.stop()
            return None
        if self.relay.is_running() or not self.daemon.is_running():
            return None
        with self._lock('daemon', 'relay'):
            if self.relay.is_running():
                return None
            report = base.ReconcileReport()
            self._start_relay(report)
        LOG.warning('Export relay restarted; exporting %s again',
                    ', '.join(report.relayed_images) or 'nothing')
        return report

    def _start_daemon(self):
        self.daemon.start()
        report = base.ReconcileReport(daemon_restarted=True)
        with self.daemon.qmp() as qmp:
            cachegroup.start_nbd_server(qmp, unix_path=self.nbd_socket)
            self._add_client_creds(qmp)
            st = self.state.read()
            for image, entry in sorted(st['images'].items()):
                self._restore_image(qmp, image, entry, report)
        return report

    def _add_client_creds(self, qmp):
        """Credentials the cache presents to parent hosts' relays."""
        if self.auth is not None:
            cachegroup.add_psk_creds(qmp, relay.CLIENT_CREDS, 'client',
                                     self.auth.install(self.tls_dir),
                                     username=self.auth.identity)

    def _start_relay(self, report):
        os.makedirs(self.relay_dir, mode=0o750, exist_ok=True)
        self.relay.start()
        try:
            self._setup_relay(report)
        except BaseException:
            # A relay without its server would look healthy to the next
            # caller and never be set up: the next one starts afresh.
            self.relay.stop()
            raise

    def _setup_relay(self, report):
        ports = list(range(self.opts.export_port_min,
                           self.opts.export_port_max + 1))
        previous = self.state.read().get('export', {}).get('port')
        if previous in ports:
            # Children already point at the old port.
            ports.remove(previous)
            ports.insert(0, previous)
        with self.relay.qmp() as qmp:
            tls_creds = None
            if self.auth is not None:
                tls_creds = relay.SERVER_CREDS
                cachegroup.add_psk_creds(qmp, tls_creds, 'server',
                                         self.auth.install(self.tls_dir))
            else:
                LOG.warning('Exporting caches on %s without '
                            'authentication (export_auth = none)',
                            self.opts.export_address)
            address = cachegroup.start_nbd_server(
                qmp, host=self.opts.export_address, ports=ports,
                tls_creds=tls_creds)
            with self.state.update() as st:
                st['export'] = dict(address, auth='psk' if tls_creds
                                    else 'none')
            with self.daemon.qmp() as cache_qmp:
                cached = cachegroup.export_ids(cache_qmp)
            for image in sorted(self.state.read()['images']):
                if cachegroup.Nodes.of(image).export in cached:
                    self._relay_image(qmp, image, report)

    def _relay_image(self, qmp, image, report=None):
        try:
            relay.add_export(qmp, image, self.nbd_socket)
        except exception.FastbootException as e:
            LOG.error('Could not export image %s to other hosts: %s',
                      image, e.msg)
            return
        if report is not None:
            report.relayed_images.append(image)

    def _relay_add(self, image):
        """Export ``image`` to other hosts if this host exports at all."""
        if self.opts.export_address and self.relay.is_running():
            with self.relay.qmp() as qmp:
                if relay.export_id(image) not in \
                        cachegroup.export_ids(qmp):
                    self._relay_image(qmp, image)

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
            self._add_client_creds(qmp)
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
                                       self.opts.parent_reconnect_delay)

    def _check_space(self, image, size, st):
        """Refuse a cache that could outgrow its limit or disk."""
        # Existing caches keep filling up to their virtual size: count
        # what they may still take, so caches are never overcommitted.
        pending = 0
        reserved = 0
        for name, entry in st['images'].items():
            reserved += entry['virtual_size']
            if not entry.get('prefetched'):
                pending += max(0, entry['virtual_size'] -
                               self._allocated(self._cache_path(name)))
        limit = self.opts.cache_size_limit * MiB
        if limit and reserved + size > limit:
            raise exception.CacheFull(image=image, path=self.cache_dir,
                                      need=size,
                                      free=max(0, limit - reserved))
        vfs = os.statvfs(self.cache_dir)
        free = vfs.f_bavail * vfs.f_frsize - pending
        if size > free:
            raise exception.CacheFull(image=image, path=self.cache_dir,
                                      need=size, free=max(0, free))

    @staticmethod
    def _allocated(path):
        try:
            return os.stat(path).st_blocks * 512
        except FileNotFoundError:
            return 0

    def _ensure_image(self, image, loc):
        """Cache ``image`` from ``loc`` unless it is already; image-locked.

        :returns: the state entry of the image.
        """
        self._ensure_daemon()
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
            self._relay_add(image)
            return entry
        return self._add_image(image, loc, st)

    def _add_image(self, image, loc, st):
        LOG.info('Adding image %s from %s to the cache group', image,
                 loc.url)
        fmt = 'raw' if loc.is_nbd else self.img.origin_format(loc.path)
        origin = cachegroup.Nodes.of(image).source(0, 0)
        cache_path = self._cache_path(image)
        with self.daemon.qmp() as qmp:
            cachegroup.open_source(qmp, image, loc, fmt, origin,
                                   self.opts.parent_reconnect_delay)
            try:
                size = cachegroup.node_size(qmp, origin)
                self._check_space(image, size, st)
                tmp = cache_path + '.tmp'
                self.img.create_cache(tmp, size, loc.url, fmt,
                                      self.opts.cache_cluster_size)
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
        self._relay_add(image)
        return entry

    # -- VM disks --------------------------------------------------------

    def _vm_entry(self, vm, st=None):
        st = st or self.state.read()
        entry = st['vms'].get(vm)
        if entry is None or entry.get('status') != 'ready':
            raise exception.VmNotFound(vm=vm)
        return entry

    def _check_not_in_use(self, vm, path):
        if os.path.exists(path) and self.img.in_use(path):
            raise exception.VmDiskInUse(vm=vm)

    def _disk(self, vm, entry):
        path = entry['path']
        return base.VmDisk(name=vm, image=entry['image'], path=path,
                           written_bytes=self._allocated(path))

    def _new_disk(self, vm, image, loc, fill):
        """Record ``vm`` on ``image`` and build its disk with ``fill(tmp)``.

        Caller holds the VM lock. The image lock is held only while the
        VM is recorded, so remove_image sees it; the disk file is written
        under a temporary name and renamed when complete.
        """
        path = self._vm_path(vm)
        if vm in self.state.read()['vms'] or os.path.exists(path):
            raise exception.VmExists(vm=vm)
        with self._lock('image', image):
            image_entry = self._ensure_image(image, loc)
            with self.state.update() as st:
                st['vms'][vm] = {'image': image, 'path': path,
                                 'status': 'creating',
                                 'created_at': time.time()}
        tmp = os.path.join(self.vm_dir, '.%s.qcow2.tmp' % vm)
        try:
            fill(tmp, image_entry)
            os.rename(tmp, path)
            with self.state.update() as st:
                st['vms'][vm]['status'] = 'ready'
        except BaseException:
            for leftover in (tmp, path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
            with self.state.update() as st:
                st['vms'].pop(vm, None)
            raise
        return self._disk(vm, self.state.read()['vms'][vm])

    def add_image(self, image, location):
        names.validate(image, 'image')
        loc = location_mod.parse(location)
        with self._lock('image', image):
            self._ensure_image(image, loc)
        return self._image_info(image)

    def _image_info(self, image):
        return next(i for i in self.list_images() if i.name == image)

    def create(self, vm, image, location):
        names.validate(vm, 'VM')
        names.validate(image, 'image')
        loc = location_mod.parse(location)

        def fill(tmp, image_entry):
            self.img.create_overlay(
                tmp, image_entry['virtual_size'],
                self._backing_spec(image, self.state.read()))

        with self._vm_locks(vm):
            disk = self._new_disk(vm, image, loc, fill)
        LOG.info('Created VM disk %s on image %s', vm, image)
        return disk

    def destroy(self, vm):
        names.validate(vm, 'VM')
        with self._vm_locks(vm):
            entry = self._vm_entry(vm)
            self._check_not_in_use(vm, entry['path'])
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry['path'])
            with self.state.update() as st:
                st['vms'].pop(vm, None)
        LOG.info('Destroyed VM disk %s', vm)

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
            self._check_not_in_use(vm, entry['path'])
            tmp = os.path.join(directory, '.%s.qcow2.tmp' % name)
            try:
                shutil.copyfile(entry['path'], tmp)
                # The snapshot keeps only the VM's own blocks and reads the
                # rest from the origin, so it stays usable on any host.
                self.img.rebase_unsafe(tmp, image_entry['location'],
                                       image_entry['format'])
                os.rename(tmp, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        return target

    def clone(self, vm, destination):
        names.validate(vm, 'VM')
        names.validate(destination, 'VM')
        if vm == destination:
            raise exception.VmExists(vm=destination)
        with self._vm_locks(vm, destination):
            st = self.state.read()
            entry = self._vm_entry(vm, st)
            image = entry['image']
            self._check_not_in_use(vm, entry['path'])
            loc = location_mod.parse(st['images'][image]['location'])
            return self._new_disk(
                destination, image, loc,
                lambda tmp, _image_entry: shutil.copyfile(entry['path'],
                                                          tmp))

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
            self._check_not_in_use(vm, entry['path'])
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

        def fill(tmp, _image_entry):
            shutil.copyfile(source_path, tmp)
            self.img.rebase_unsafe(tmp, images.json_backing(
                self._backing_spec(image, self.state.read())))

        with self._vm_locks(vm):
            return self._new_disk(vm, image, loc, fill)

    def list(self):
        st = self.state.read()
        return [self._disk(vm, entry)
                for vm, entry in sorted(st['vms'].items())
                if entry.get('status') == 'ready']

    def list_images(self):
        st = self.state.read()
        users = {}
        for vm, entry in st['vms'].items():
            users.setdefault(entry['image'], []).append(vm)
        result = []
        for image, entry in sorted(st['images'].items()):
            cached = (entry['virtual_size'] if entry.get('prefetched') else
                      self._allocated(self._cache_path(image)))
            result.append(base.CachedImage(
                name=image, location=entry['location'],
                virtual_size=entry['virtual_size'],
                cached_bytes=min(cached, entry['virtual_size']),
                export_url=self.export_url(image, st),
                vms=tuple(sorted(users.get(image, ()))),
                parents=tuple(entry.get('parents', ()))))
        return result

    # -- cache administration ------------------------------------------

    def prefetch(self, image, progress=None):
        names.validate(image, 'image')
        with self._lock('image', image):
            self._ensure_daemon()
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
        return self._image_info(image)

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
            self._ensure_daemon()
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
            st = self.state.read()
            if image not in st['images']:
                raise exception.ImageNotFound(image=image)
            users = sorted(vm for vm, e in st['vms'].items()
                           if e['image'] == image)
            if users:
                raise exception.ImageInUse(image=image,
                                           vms=', '.join(users))
            self._ensure_daemon()
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
        report = self._ensure_daemon() or base.ReconcileReport()
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
                              if self._is_orphan(n, known)),
                             key=cachegroup.deletion_order)
            for node in orphans:
                cachegroup.del_node(qmp, node)
                report.removed_orphan_nodes.append(node)
        self._reconcile_relay(report)
        self._reconcile_files(st, report)
        self._reconcile_vms(report)
        return report

    def _reconcile_relay(self, report):
        """Relay exactly the recorded images whose cache is exported."""
        if not self.opts.export_address:
            return
        with self.daemon.qmp() as qmp:
            cached = cachegroup.export_ids(qmp)
        st = self.state.read()
        with self.relay.qmp() as qmp:
            relayed = cachegroup.export_ids(qmp)
            wanted = {relay.export_id(image): image
                      for image in st['images']
                      if cachegroup.Nodes.of(image).export in cached}
            for export_id in sorted(relayed - set(wanted)):
                if cachegroup.owned(export_id):
                    cachegroup.del_export(qmp, export_id)
                    cachegroup.del_node(qmp, relay.node_of_export(export_id))
                    report.removed_orphan_nodes.append(export_id)
            for export_id, image in sorted(wanted.items()):
                if export_id not in relayed and \
                        image not in report.relayed_images:
                    self._relay_image(qmp, image, report)

    @staticmethod
    def _is_orphan(node, known):
        """An owned node of no recorded image, or of a past generation."""
        if not cachegroup.owned(node):
            return False
        image_entry = known.get(node[4:20])
        if image_entry is None:
            return True
        image, entry = image_entry
        nodes = cachegroup.Nodes.of(image)
        return nodes.is_source(node) and not nodes.is_source(
            node, entry.get('generation', 0))

    def _reconcile_files(self, st, report):
        for name in sorted(os.listdir(self.cache_dir)):
            image = name[:-len('.qcow2')] if name.endswith('.qcow2') \
                else None
            if image in st['images']:
                continue
            if name.endswith('.tmp'):
                image = name[:-len('.qcow2.tmp')]
            with self._lock('image', image or name):
                if image in self.state.read()['images']:
                    continue
                os.unlink(os.path.join(self.cache_dir, name))
                report.removed_orphan_caches.append(name)
        for name in sorted(os.listdir(self.vm_dir)):
            path = os.path.join(self.vm_dir, name)
            if name.startswith('.') and name.endswith('.qcow2.tmp'):
                vm = name[1:-len('.qcow2.tmp')]
                with self._vm_locks(vm):
                    if os.path.exists(path):
                        os.unlink(path)
                        report.removed_temp_files.append(path)
            elif name.endswith('.qcow2') and \
                    name[:-len('.qcow2')] not in st['vms']:
                # VM data: report, never delete.
                report.orphan_disks.append(path)

    def _reconcile_vms(self, report):
        for vm in sorted(self.state.read()['vms']):
            with self._vm_locks(vm):
                st = self.state.read()
                entry = st['vms'].get(vm)
                if entry is None:
                    continue
                exists = os.path.exists(entry['path'])
                if entry.get('status') != 'ready':
                    with self.state.update() as st:
                        if exists:
                            st['vms'][vm]['status'] = 'ready'
                            report.completed_vms.append(vm)
                        else:
                            st['vms'].pop(vm)
                            report.dropped_vms.append(vm)
                    continue
                if not exists:
                    report.missing_disks.append(vm)
                    continue
                self._rebase_if_moved(vm, entry, st, report)

    def _rebase_if_moved(self, vm, entry, st, report):
        want = images.json_backing(self._backing_spec(entry['image'], st))
        info = self.img.info(entry['path'])
        if info.get('full-backing-filename',
                    info.get('backing-filename')) == want:
            return
        if self.img.in_use(entry['path']):
            LOG.warning('Disk of VM %s points at an old export but is in '
                        'use; it will be re-pointed when it is free', vm)
            return
        self.img.rebase_unsafe(entry['path'], want)
        report.rebased_disks.append(vm)

    def shutdown(self):
        self.relay.stop()
        self.daemon.stop()
