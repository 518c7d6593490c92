"""The ``dm`` backend: a kernel cache group with device-mapper.

Per image (a shared read-only origin: a local block device, which
``brick.py`` or Nova's volume driver may have attached through os-brick)
the host builds a dm-cache over the origin on a slice of its local cache
device(s) (:mod:`.cachedev`), and per VM a private copy-on-write layer
over that cache: a thin volume of the engine's thin-pool (:mod:`.pool`)
or a persistent dm-snapshot (:mod:`.layers`, one class per layer type).
Parent hosts' exports feed the origin device (:mod:`.tree`).

``<id>`` in every device name (``fb-<id>-<kind>-<name>``) is a hash of the
state path, so two engines never share devices. VM writes land in the
VM's layer; nothing ever writes to the cache device of an image, so the
cache mode only matters for safety.

The metadata of an image's cache is kept across a deactivate/activate
only when the cache was shut down cleanly, and only if the origin still
has the identity (size and serial/WWID) recorded when it was added;
otherwise its slice is wiped and the cache starts cold again.

This module holds what ties the parts together: the verbs, the image
records and reconcile. Every privileged call goes through
``fastboot_nova.privsep.dm`` and ``fastboot_nova.privsep.loop``.
"""

import contextlib
import dataclasses
import logging
import os
import time

from fastboot_nova.conf import dm as dm_opts
from fastboot_nova import exception
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.loop
from fastboot_nova.storage import base
from fastboot_nova.storage.dm import cachedev
from fastboot_nova.storage.dm import kernel
from fastboot_nova.storage.dm import layers
from fastboot_nova.storage.dm import pool as pool_mod
from fastboot_nova.storage.dm import tree
from fastboot_nova.storage import names

LOG = logging.getLogger(__name__)

# Re-exported: the tests and tools name them here.
ISSUE = kernel.ISSUE
SECTOR = kernel.SECTOR
NotSupportedByBackend = kernel.NotSupportedByBackend
CacheDeviceError = kernel.CacheDeviceError
KernelSupportMissing = kernel.KernelSupportMissing
HostDevices = kernel.HostDevices
cow_bytes = kernel.cow_bytes
cache_meta_sectors = kernel.cache_meta_sectors
parse_cache_status = kernel.parse_cache_status
sparse_copy = kernel.sparse_copy
SSD_GROUP = cachedev.SSD_GROUP
POOL = pool_mod.POOL


@dataclasses.dataclass
class DmReconcileReport(base.ReconcileReport):
    #: VM snapshot devices re-created from their copy-on-write files.
    restored_vms: list = dataclasses.field(default_factory=list)
    #: Loop devices of copy-on-write files no VM uses, detached.
    detached_loops: list = dataclasses.field(default_factory=list)


class DmEngine(base.LocalEngine):
    """Block engine on device-mapper targets of the host kernel."""

    DATA_DIRS = ('cow', 'thin')
    capabilities = dict(base.Engine.capabilities, thin_pool=True,
                        attached_origins=True)

    def __init__(self, conf, state_path=None, execute=None, devices=None,
                 cache_device=None):
        if not hasattr(conf, dm_opts.GROUP_NAME):
            dm_opts.register_opts(conf)
        self.conf = conf
        self.opts = getattr(conf, dm_opts.GROUP_NAME)
        self._init_state(state_path or conf.fastboot.state_path)
        self.cow_dir = os.path.join(self.state_path, 'cow')
        self.thin_dir = os.path.join(self.state_path, 'thin')
        #: The device-mapper and loop devices of this engine.
        self.dm = kernel.DeviceNames('fb-%s-' % self._digest)
        #: Prefix of every device-mapper name this engine owns.
        self.prefix = self.dm.prefix
        self.devices = devices or kernel.HostDevices()
        members = cache_device or self.opts.cache_device or []
        if isinstance(members, str):
            members = [members]
        self.cache = cachedev.CacheDevice(self.state, self.devices, self.dm,
                                          members, self._lock)
        #: The configured cache devices, in order.
        self.cache_members = self.cache.members
        #: What the image slices are cut from.
        self.cache_device = self.cache.device
        self.pool = pool_mod.ThinPool(self.state, self.dm, self.thin_dir,
                                      self.opts, self._lock)
        self._layers = {t: cls(self.dm, self.cow_dir, self.pool, self.opts)
                        for t, cls in layers.TYPES.items()}
        # Unprivileged helpers (none yet) would use this runner.
        self.execute = execute

    # -- names, paths ---------------------------------------------------

    def dm_name(self, kind, name):
        return self.dm.name(kind, name)

    @staticmethod
    def dm_path(dm_name):
        return kernel.DeviceNames.path(dm_name)

    def _image_devices(self, image):
        """Device names of an image, in creation order."""
        return self.cache.image_devices(image)

    def layer(self, entry):
        """The :class:`layers.Layer` of a VM's state entry."""
        return self._layers[layers.type_of(entry)]

    def vm_paths(self, vm, entry):
        return self.layer(entry).paths(vm)

    def check_vm_entry(self, vm, entry):
        if isinstance(entry, dict) and \
                layers.type_of(entry) not in self._layers:
            raise base.corrupt(self.state, 'VM %s' % names.shown(str(vm)),
                               'its type is unknown')
        entry = super().check_vm_entry(vm, entry)
        reason = self.layer(entry).invalid(entry)
        if reason:
            raise base.corrupt(self.state, 'VM %s' % vm, reason)
        return entry

    def checked_pool(self, st=None):
        """The thin-pool's state entry, its files checked, or None."""
        return self.pool.entry(st)

    def _check_kernel(self):
        self.dm.check_targets(self.opts.snapshot_type)

    # -- images -----------------------------------------------------------

    def _check_location(self, location):
        return kernel.check_origin(self.devices, location)

    def _ensure_image(self, image, location):
        """Cache ``image`` unless it is; caller holds the image lock."""
        st = self.state.read()
        entry = st['images'].get(image)
        if entry is not None and entry.get('status') == 'ready':
            if entry['location'] != location:
                raise exception.ImageConflict(image=image,
                                              existing=entry['location'],
                                              location=location)
            live = self.dm.live()
            if not all(n in live for n in self._image_devices(image)):
                LOG.warning('Devices of image %s were missing; restoring',
                            image)
                self._activate_image(image, entry, live)
            return entry
        if entry is not None:
            # An add that was interrupted: start over.
            self._drop_image(image, entry, self.dm.live())
        return self._add_image(image, location)

    def _add_image(self, image, location):
        LOG.info('Adding image %s from %s to the cache group', image,
                 location)
        if self.opts.cache_mode == 'writeback':
            LOG.warning('Image %s: dm-cache in writeback mode ([fastboot_dm] '
                        'cache_mode): a write acknowledged by the cache is '
                        'lost if the cache device %s is', image,
                        self.cache_device)
        self._check_kernel()
        sectors = self.devices.sectors(location)
        block = self.opts.cache_block_sectors
        data = kernel.round_up(sectors, block)
        meta = kernel.cache_meta_sectors(data // block)
        with self._lock('cachedev', 'alloc'):
            st = self.state.read()
            device = self.cache.check(st)
            try:
                start = self.cache.allocate(st, meta + data)
            except exception.CacheFull as e:
                raise exception.CacheFull(image=image, **{
                    k: e.kwargs[k] for k in ('path', 'need', 'free')})
            entry = {'location': location,
                     'segments': [[location, 0, sectors]],
                     'origin_id': self.devices.identity(location),
                     'virtual_size': sectors * SECTOR,
                     'cache': {'device': device, 'start': start,
                               'meta_sectors': meta, 'data_sectors': data,
                               'block_sectors': block,
                               'mode': self.opts.cache_mode},
                     'clean': False, 'status': 'adding',
                     'added_at': time.time()}
            with self.state.update() as st:
                st.setdefault('dm', {})['cache_device'] = device
                st['images'][image] = entry
        live = self.dm.live()
        try:
            self.cache.build(image, entry, live, wipe=True)
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                self._teardown_image(image, self.dm.live(), wipe=True)
            with self.state.update() as st:
                st['images'].pop(image, None)
            raise
        with self.state.update() as st:
            st['images'][image]['status'] = 'ready'
        try:
            tree.export(self, image)
        except exception.FastbootException as e:
            # The cache works for local VMs; the agent's rounds retry.
            LOG.error('Could not export image %s: %s', image, e.msg)
        return self.state.read()['images'][image]

    def _activate_image(self, image, entry, live):
        """Re-create a recorded image's devices, checking its origin."""
        self._check_kernel()
        for seg_dev, _off, _len in entry['segments']:
            if not self.devices.is_block(seg_dev):
                raise exception.OriginUnavailable(
                    location=seg_dev, image=image,
                    reason='not an existing block device')
        identity = self.devices.identity(entry['location'])
        wipe = not entry.get('clean')
        if identity != entry.get('origin_id'):
            LOG.warning('Origin of image %s changed identity (%s, was %s): '
                        'its cache starts cold', image, identity,
                        entry.get('origin_id'))
            if identity.split(':')[0] != \
                    str(entry['virtual_size'] // SECTOR):
                raise exception.OriginUnavailable(
                    location=entry['location'], image=image,
                    reason='its size changed')
            wipe = True
            with self.state.update() as st:
                st['images'][image]['origin_id'] = identity
        if wipe and self.dm_name('cache', image) not in live:
            LOG.info('Cache of image %s was not shut down cleanly: '
                     'starting it cold', image)
        if self.dm_name('origin', image) not in live:
            # Rebuilt on its origin; the agent assigns parents again.
            tree.drop_parents(self, image)
        try:
            self.cache.build(image, entry, live, wipe=wipe)
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                self._teardown_image(image, self.dm.live(), wipe=False)
            raise

    def _teardown_image(self, image, live, wipe):
        """Remove the image's devices, last created first."""
        self.cache.teardown(image, live, wipe)
        # The parent paths fed the origin device, gone now.
        tree.drop_parents(self, image)

    def _drop_image(self, image, entry, live):
        self._teardown_image(image, live, wipe=True)
        with self.state.update() as st:
            st['images'].pop(image, None)
        with self._lock('cachedev', 'alloc'):
            self.cache.group_idle(live)

    # -- VMs --------------------------------------------------------------

    def _disk(self, vm, entry):
        return base.VmDisk(
            name=vm, image=entry['image'], path=entry['path'],
            written_bytes=self.layer(entry).written_bytes(vm, entry))

    def _check_not_in_use(self, vm, entry):
        if self.dm.is_open(self.dm_name('vm', vm)):
            raise exception.VmDiskInUse(vm=vm)

    def _new_layer(self, vm, image, location, layer, source=None):
        """Record ``vm`` on ``image`` and build its ``layer``.

        With ``source`` (from :meth:`layers.Layer.clone_source`), the new
        layer is a copy of another VM's. The caller holds the VM lock.
        """
        image_entry = {}

        def prepare():
            image_entry.update(self._ensure_image(image, location))
            return layer.new_entry(vm, image, image_entry, source)

        disk = self._new_vm(
            vm, image, prepare,
            lambda entry: layer.build(vm, entry, image_entry, source),
            lambda entry: layer.undo(vm, entry), locks=layer.locks())
        if layer.uses_pool:
            self.pool.warn_if_low(self.state_path)
        return disk

    def _pool_idle(self):
        """Deactivate the pool if no VM uses it."""
        self.pool.idle(self._pool_in_use)

    def _pool_in_use(self):
        return any(self._layers.get(layers.type_of(e)).uses_pool
                   for e in self.state.read()['vms'].values()
                   if layers.type_of(e) in self._layers)

    def pool_status(self):
        """Size and use of the thin-pool (see :mod:`.pool`), or None."""
        return self.pool.status()

    def grow_pool(self, size_mib):
        """Grow the thin-pool to ``size_mib`` MiB, live."""
        return self.pool.grow(size_mib)

    def add_image(self, image, location):
        names.validate(image, 'image')
        location = self._check_location(location)
        with self._lock('image', image):
            self._ensure_image(image, location)
        return self.get_image(image)

    def relocate_origin(self, image, location):
        """Record that ``image``'s origin device is now at ``location``.

        For origins whose path is not stable across reboots (os-brick
        attachments, :mod:`fastboot_nova.storage.dm.brick`). Refused while
        the image's devices are live on another path; the origin identity
        is checked when the image is next activated.
        """
        names.validate(image, 'image')
        location = self._check_location(location)
        with self._lock('image', image):
            entry = self.state.read()['images'].get(image)
            if entry is None:
                raise exception.ImageNotFound(image=image)
            old = entry['location']
            if old == location:
                return
            if any(n in self.dm.live() for n in self._image_devices(image)):
                raise exception.ImageConflict(image=image, existing=old,
                                              location=location)
            with self.state.update() as st:
                e = st['images'][image]
                e['location'] = location
                e['segments'] = [[location if s[0] == old else s[0]] +
                                 list(s[1:]) for s in e['segments']]
        LOG.info('Origin of image %s moved from %s to %s', image, old,
                 location)

    def create(self, vm, image, location):
        names.validate(vm, 'VM')
        names.validate(image, 'image')
        location = self._check_location(location)
        layer = self._layers[self.opts.snapshot_type]
        with self._vm_locks(vm):
            disk = self._new_layer(vm, image, location, layer)
        LOG.info('Created VM disk %s (%s) on image %s', vm, layer.type,
                 image)
        return disk

    def _delete_vm(self, vm, entry):
        layer = self.layer(entry)
        layer.deactivate(vm, entry, self.dm.live())
        layer.delete(vm, entry)

    def _after_destroy(self, vm, entry):
        if self.layer(entry).uses_pool:
            self._pool_idle()

    def _clone_locked(self, vm, entry, destination, image_entry):
        layer = self.layer(entry)
        with layer.clone_source(vm, entry) as source:
            return self._new_layer(destination, entry['image'],
                                   image_entry['location'], layer, source)

    def snapshot(self, vm, name, location):
        raise NotSupportedByBackend(
            verb='snapshot', issue=ISSUE,
            reason='saving a VM disk as an image needs a privileged read '
                   'of its device')

    def migrate(self, vm, destination):
        raise NotSupportedByBackend(
            verb='migrate', issue=ISSUE,
            reason='needs an export (LIO/NBD) of the destination cache')

    def prefetch(self, image, progress=None):
        raise NotSupportedByBackend(
            verb='prefetch', issue=ISSUE,
            reason='dm-cache promotes on hits only; a full fill needs '
                   'a dm-clone or hydration helper')

    def reparent(self, image, location, alternates=()):
        """Read ``image``'s misses from parent exports, live.

        See :mod:`fastboot_nova.storage.dm.tree`; the image's own
        location means its origin, no parent.
        """
        names.validate(image, 'image')
        with self._lock('image', image):
            entry = self.state.read()['images'].get(image)
            if entry is None or entry.get('status') != 'ready':
                raise exception.ImageNotFound(image=image)
            live = self.dm.live()
            if not all(n in live for n in self._image_devices(image)):
                self._activate_image(image, entry, live)
            tree.reparent(self, image, location, alternates)

    def ensure_exports(self):
        return tree.ensure_exports(self)

    def cache_stats(self, image):
        """dm-cache counters of ``image`` (None when it is not active)."""
        return self.cache.stats(image)

    @staticmethod
    def _image_listed(entry):
        return entry.get('status') == 'ready'

    def _cached_image(self, image, entry, users, st):
        stats = None
        with contextlib.suppress(exception.FastbootException):
            stats = self.cache_stats(image)
        cached = 0
        if stats:
            cached = stats['used_blocks'] * stats['block_sectors'] * SECTOR
        return base.CachedImage(
            name=image, location=entry['location'],
            virtual_size=entry['virtual_size'],
            cached_bytes=min(cached, entry['virtual_size']),
            export_url=tree.export_url(self, image, entry),
            vms=users, parents=tuple(tree.parent_urls(entry)))

    def remove_image(self, image):
        names.validate(image, 'image')
        with self._lock('image', image):
            entry = self._idle_image(image, self.state.read())
            live = self.dm.live()
            if self.dm_name('cmeta', image) not in live:
                # Wipe the slice before it is freed, even if the image
                # was not active.
                self.cache.ensure_slice_device(entry['cache']['device'],
                                               live)
                self.cache.create_meta(image, entry['cache'])
                live.add(self.dm_name('cmeta', image))
            # Children lose this source first; they fail over.
            tree.unexport(self, image)
            self._drop_image(image, entry, live)
        LOG.info('Removed image %s from the cache group', image)

    # -- activation and restart safety ----------------------------------

    def deactivate(self):
        """Remove every device of this engine; state and COW files stay.

        Refused while a VM disk is open. ``reconcile`` brings everything
        back. Caches removed here are shut down cleanly and come back
        warm.
        """
        st = self.state.read()
        live = self.dm.live()
        for vm in sorted(st['vms']):
            if self.dm.is_open(self.dm_name('vm', vm), live):
                raise exception.VmDiskInUse(vm=vm)
        for vm, entry in self._checked_vms(st):
            with self._vm_locks(vm):
                self.layer(entry).deactivate(vm, entry, live)
        with self.pool.lock():
            self.pool.deactivate(live)
        for image in sorted(st['images']):
            with self._lock('image', image):
                # nbd-servers hold the cache open.
                tree.unexport(self, image)
                self._teardown_image(image, live, wipe=False)
        self.dm.remove_if_present(self.dm_name('ssd', SSD_GROUP), live)

    def reconcile(self):
        report = DmReconcileReport()
        st = self.state.read()
        expected = self._reconcile_images(st, report)
        live = self.dm.live()
        for vm, _checked in self._checked_vms(st, report):
            with self._vm_locks(vm):
                self._reconcile_vm(vm, live, expected, report)
        if self._pool_in_use():
            expected.add(self.pool.name)
        self._remove_orphans(self.dm.live(), expected, report)
        if self.pool.name not in expected:
            with self.pool.lock():
                self.pool.deactivate()
        self._reconcile_files(report)
        try:
            report.relayed_images = tree.ensure_exports(self)
        except exception.FastbootException as e:
            LOG.error('Could not restore the exports: %s', e.msg)
        return report

    def _reconcile_images(self, st, report):
        """Restore the recorded images; return the devices expected."""
        live = self.dm.live()
        expected = set()
        for image, entry in sorted(st['images'].items()):
            with self._lock('image', image):
                if entry.get('status') != 'ready':
                    self._drop_image(image, entry, live)
                    report.removed_orphan_caches.append(image)
                    continue
                devices = self._image_devices(image)
                expected.update(devices)
                if entry.get('parent_mpath') and devices[0] in live:
                    # Parents the live origin device reads from.
                    expected.add(entry['parent_mpath'])
                if self.cache.is_group(entry['cache']['device']):
                    expected.add(self.dm_name('ssd', SSD_GROUP))
                if all(n in live for n in devices):
                    continue
                try:
                    self._activate_image(image, entry, live)
                except exception.FastbootException as e:
                    LOG.error('Could not restore image %s: %s', image,
                              e.msg)
                    report.failed_images.append(image)
                else:
                    report.restored_images.append(image)
                live = self.dm.live()
        return expected

    def _reconcile_vm(self, vm, live, expected, report):
        entry = self.state.read()['vms'].get(vm)
        if entry is None:
            return
        entry = self.check_vm_entry(vm, entry)
        name = self.dm_name('vm', vm)
        layer = self.layer(entry)
        if entry.get('status') != 'ready':
            if layer.finished(vm, entry, live):
                with self.state.update() as st:
                    st['vms'][vm]['status'] = 'ready'
                report.completed_vms.append(vm)
                expected.add(name)
            else:
                layer.undo(vm, entry)
                with self.state.update() as st:
                    st['vms'].pop(vm, None)
                report.dropped_vms.append(vm)
            return
        expected.add(name)
        if name in live:
            return
        if layer.data_missing(vm, entry):
            report.missing_disks.append(vm)
            return
        if entry['image'] in report.failed_images:
            return
        try:
            layer.activate(vm, entry)
        except exception.FastbootException as e:
            LOG.error('Could not restore the disk of VM %s: %s', vm, e.msg)
            report.missing_disks.append(vm)
        else:
            report.restored_vms.append(vm)
            live.add(name)

    def _remove_orphans(self, live, expected, report):
        for name in sorted(live - expected, key=self.dm.order):
            try:
                fastboot_nova.privsep.dm.remove_device(name)
            except exception.FastbootException as e:
                LOG.warning('Cannot remove orphan device %s: %s', name,
                            e.msg)
                continue
            report.removed_orphan_nodes.append(name)

    def _reconcile_files(self, report):
        st = self.state.read()
        cows = {e['cow'] for _vm, e in self._checked_vms(st) if 'cow' in e}
        for name in sorted(os.listdir(self.cow_dir)):
            path = os.path.join(self.cow_dir, name)
            if name.startswith('.') and name.endswith('.cow.tmp'):
                with self._vm_locks(name[1:-len('.cow.tmp')]):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                        report.removed_temp_files.append(path)
            elif path not in cows:
                # VM data: report, never delete.
                report.orphan_disks.append(path)
        for dev, back in fastboot_nova.privsep.loop.list_attached():
            if os.path.dirname(back) == self.cow_dir and back not in cows:
                with contextlib.suppress(exception.FastbootException):
                    fastboot_nova.privsep.loop.detach(dev)
                    report.detached_loops.append(dev)

    def shutdown(self):
        """Nothing to stop: the kernel keeps serving the VM disks."""
        LOG.debug('dm engine %s: shutdown leaves the devices active',
                  self.state_path)
