"""The ``dm`` backend: a kernel cache group with device-mapper.

Per image (a shared read-only origin: a local block device, which
``brick.py`` or Nova's volume driver may have attached through os-brick)
the host builds::

    origin block device(s)
      -> fb-<id>-origin-<image>   dm-linear over the origin segments
    cache device(s) (local SSDs; several are joined end to end by
    fb-<id>-ssd-group, a dm-linear "SSD group")
      -> fb-<id>-cmeta-<image>    dm-linear slice: dm-cache metadata
      -> fb-<id>-cdata-<image>    dm-linear slice: dm-cache data
    fb-<id>-cache-<image>         dm-cache (smq, writethrough) over origin

and per VM, with ``[fastboot_dm] snapshot_type = thin`` (the default)::

    <state_path>/thin/pool.meta, pool.data   files, attached with losetup
    fb-<id>-pool-thin             one thin-pool per engine (error_if_no_space)
    fb-<id>-vm-<vm>               thin volume <thin_id> of the pool, the
                                  image's cache as its external origin

or with ``snapshot_type = snapshot``::

    <state_path>/cow/<vm>.cow     sparse file, attached with losetup
    fb-<id>-vm-<vm>               persistent dm-snapshot of the cache

``<id>`` is a hash of the state path, so two engines never share devices.
VM writes land in the VM's copy-on-write file; nothing ever writes to the
cache device of an image, so the cache mode only matters for safety.

Stale blocks: a dm-cache serves only the blocks its metadata maps. Each
image gets its own metadata slice, and a slice is wiped (its superblock
zeroed, so dm-cache formats empty metadata) whenever it is given to an
image and again when the image is removed. An origin removed and another
added in its place therefore starts cold, whatever the data slice holds.
The metadata of an image is kept across a deactivate/activate only when
the cache was shut down cleanly, and only if the origin still has the
identity (size and serial/WWID) recorded when it was added; otherwise the
slice is wiped and the cache starts cold again.

Why dm-thin by default (``tox -e bench-kernel`` measures all of this in
one run, dm-snapshot against dm-thin over the same cache):

- data safety: when a dm-snapshot's copy-on-write store fills up (or the
  file system under its sparse file does), or when the origin returns a
  read error while a first write copies a chunk, the kernel marks the
  snapshot Invalid: every block the VM wrote becomes unreadable. A full
  thin-pool instead fails the writes with ENOSPC (earlier data stays
  readable) and takes writes again once grown; an origin read error fails
  only that write;
- metadata: one transactional pool metadata device (committed on every
  flush) instead of one exception table per file, read in full whenever
  a snapshot is activated;
- discard: thin volumes return discarded blocks to the pool, dm-snapshot
  does not support discard at all;
- throughput: dm-snapshot splits every I/O into chunks (8 KiB by
  default), dm-thin into blocks (64 KiB): sequential reads and first
  sequential writes were about 2.5 times faster through thin (random
  4 KiB reads and overwrites were not faster);
- scale: neither slows down as VMs of one image accumulate (the K-th VM
  is created about as fast as the 1st), since nothing writes to the
  origin: there is no snapshot-origin target to fan writes out.

What thin costs: its block is at least 64 KiB, so scattered 4 KiB first
writes took 14 MiB of pool per MiB written (dm-snapshot: 2 MiB), and the
pool is a fixed-size, fully allocated file (``thin_pool_size_mib``).
``snapshot_type = snapshot`` stays selectable; the type of each VM is
recorded, so a change applies to new VMs only.

Every privileged call goes through ``fastboot_nova.privsep.dm`` and
``fastboot_nova.privsep.loop``.
"""

import contextlib
import dataclasses
import logging
import os
import tempfile
import time

from fastboot_nova.conf import dm as dm_opts
from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.i18n import _
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.loop
from fastboot_nova.storage import base
from fastboot_nova.storage.dm import pool as pool_mod
from fastboot_nova.storage.dm import tree
from fastboot_nova.storage import names

LOG = logging.getLogger(__name__)

ISSUE = 'Kernel (dm) backend'
SECTOR = 512
#: Slices of the cache device start on 1 MiB boundaries.
ALIGN_SECTORS = 2048
#: Bytes zeroed at the start of a metadata slice: the dm-cache superblock.
WIPE_BYTES = 4096
#: Device kinds, in the order they are removed.
KINDS = ('vm', 'pool', 'cache', 'cdata', 'cmeta', 'origin', 'mp', 'ssd')
POOL = 'thin'
#: The name of the SSD group device (kind ``ssd``).
SSD_GROUP = 'group'


class NotSupportedByBackend(exception.FastbootException):
    message = _("The dm backend does not support %(verb)s yet (issue "
                "'%(issue)s'): %(reason)s")


class CacheDeviceError(exception.FastbootException):
    message = _("Cache device %(device)s is unusable: %(reason)s")


class KernelSupportMissing(exception.FastbootException):
    message = _("The kernel lacks the device-mapper target(s) %(targets)s "
                "(modules %(modules)s could not be loaded): the dm backend "
                "cannot build images")


#: The device-mapper targets the engine builds on, by snapshot type.
TARGETS = {'thin': ('linear', 'cache', 'thin-pool', 'thin'),
           'snapshot': ('linear', 'cache', 'snapshot')}


@dataclasses.dataclass
class DmReconcileReport(base.ReconcileReport):
    #: VM snapshot devices re-created from their copy-on-write files.
    restored_vms: list = dataclasses.field(default_factory=list)
    #: Loop devices of copy-on-write files no VM uses, detached.
    detached_loops: list = dataclasses.field(default_factory=list)


class HostDevices:
    """Unprivileged facts about block devices, from sysfs."""

    @staticmethod
    def _sysfs(path):
        st = os.stat(path)
        return '/sys/dev/block/%d:%d' % (os.major(st.st_rdev),
                                         os.minor(st.st_rdev))

    def is_block(self, path):
        return fastboot_nova.privsep.dm._is_block_device(path)

    def sectors(self, path):
        return fastboot_nova.privsep.dm.device_sectors(path)

    def identity(self, path):
        """``<sectors>:<serial or WWID>``, or just the size if none."""
        sysfs = self._sysfs(path)
        ident = ''
        for rel in ('serial', 'device/wwid', 'device/serial', 'wwid'):
            try:
                with open(os.path.join(sysfs, rel)) as f:
                    ident = f.read().strip()
            except OSError:
                continue
            if ident:
                break
        return '%d:%s' % (self.sectors(path), ident)


def _round_up(value, unit):
    return (value + unit - 1) // unit * unit


def _is_thin(vm_entry):
    # VMs recorded before thin volumes existed are snapshots.
    return vm_entry.get('type', 'snapshot') == 'thin'


def cow_bytes(origin_sectors, chunk_sectors):
    """Size of a COW store that can never overflow for this origin.

    A persistent dm-snapshot stores one header chunk, the data chunks and
    one metadata chunk per ``chunk_bytes / 16`` exceptions. The file is
    sparse: it takes only what the VM writes.
    """
    chunks = -(-origin_sectors // chunk_sectors)
    per_meta = chunk_sectors * SECTOR // 16
    meta = -(-chunks // per_meta) + 1
    return (1 + chunks + meta + 1) * chunk_sectors * SECTOR


def cache_meta_sectors(nr_blocks):
    """dm-cache metadata size: 4 MiB plus 16 bytes per block, doubled."""
    return _round_up((4 << 20) // SECTOR + 2 * (16 * nr_blocks) // SECTOR,
                     ALIGN_SECTORS)


def parse_cache_status(text):
    """The fields of a dm-cache ``dmsetup status`` line we use."""
    f = text.split()
    if len(f) < 14 or f[2] != 'cache':
        return None
    used, total = (int(x) for x in f[6].split('/'))
    return {'block_sectors': int(f[5]), 'used_blocks': used,
            'total_blocks': total, 'read_hits': int(f[7]),
            'read_misses': int(f[8]), 'write_hits': int(f[9]),
            'write_misses': int(f[10]), 'demotions': int(f[11]),
            'promotions': int(f[12]), 'dirty': int(f[13])}


def fsync_dir(path):
    """Make a rename or a new file in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sparse_copy(src, dst):
    """Copy ``src`` to ``dst`` keeping holes (SEEK_DATA / SEEK_HOLE)."""
    with open(src, 'rb') as fin, open(dst, 'wb') as fout:
        size = os.fstat(fin.fileno()).st_size
        fout.truncate(size)
        pos = 0
        while pos < size:
            try:
                pos = os.lseek(fin.fileno(), pos, os.SEEK_DATA)
            except OSError:
                break  # only a hole is left
            end = os.lseek(fin.fileno(), pos, os.SEEK_HOLE)
            fin.seek(pos)
            fout.seek(pos)
            left = end - pos
            while left:
                block = fin.read(min(left, 1 << 20))
                if not block:
                    break
                fout.write(block)
                left -= len(block)
            pos = end
        fout.flush()
        os.fsync(fout.fileno())


class DmEngine(base.LocalEngine):
    """Block engine on device-mapper targets of the host kernel."""

    DATA_DIRS = ('cow', 'thin')

    def __init__(self, conf, state_path=None, execute=None, devices=None,
                 cache_device=None):
        if not hasattr(conf, dm_opts.GROUP_NAME):
            dm_opts.register_opts(conf)
        self.conf = conf
        self.opts = getattr(conf, dm_opts.GROUP_NAME)
        self._init_state(state_path or conf.fastboot.state_path)
        self.cow_dir = os.path.join(self.state_path, 'cow')
        self.thin_dir = os.path.join(self.state_path, 'thin')
        #: Prefix of every device-mapper name this engine owns.
        self.prefix = 'fb-%s-' % self._digest
        self.devices = devices or HostDevices()
        members = cache_device or self.opts.cache_device or []
        if isinstance(members, str):
            members = [members]
        #: The configured cache devices, in order.
        self.cache_members = list(members)
        #: What the image slices are cut from: the one cache device, or
        #: the SSD group over several.
        self.cache_device = (
            self.dm_path(self.dm_name('ssd', SSD_GROUP))
            if len(self.cache_members) > 1 else
            (self.cache_members[0] if self.cache_members else None))
        # Unprivileged helpers (none yet) would use this runner.
        self.execute = execute
        self._kernel_ok = False

    # -- names, paths, locks --------------------------------------------

    def dm_name(self, kind, name):
        return '%s%s-%s' % (self.prefix, kind, name)

    @staticmethod
    def dm_path(dm_name):
        return '/dev/mapper/' + dm_name

    def _image_devices(self, image):
        """Device names of an image, in creation order."""
        return [self.dm_name(k, image)
                for k in ('origin', 'cmeta', 'cdata', 'cache')]

    def _cow_path(self, vm):
        return os.path.join(self.cow_dir, vm + '.cow')

    def vm_paths(self, vm, entry):
        paths = {'path': self.dm_path(self.dm_name('vm', vm))}
        if not _is_thin(entry):
            paths['cow'] = self._cow_path(vm)
        return paths

    def check_vm_entry(self, vm, entry):
        entry = super().check_vm_entry(vm, entry)
        if _is_thin(entry) and (
                isinstance(entry.get('thin_id'), bool) or
                not isinstance(entry.get('thin_id'), int) or
                entry['thin_id'] < 0):
            raise base.corrupt(self.state, 'VM %s' % vm,
                               'its thin_id is not a device number')
        return entry

    def checked_pool(self, st=None):
        """The thin-pool's state entry, its files checked, or None."""
        st = st or self.state.read()
        pool = st.get('dm', {}).get('pool')
        if pool is None:
            return None
        meta, data = self._pool_files()
        if pool.get('meta') != meta or pool.get('data') != data:
            raise base.corrupt(self.state, 'the thin-pool',
                               'it records files %s, %s where %s, %s are '
                               'expected' % (
                                   names.shown(str(pool.get('meta'))),
                                   names.shown(str(pool.get('data'))),
                                   meta, data))
        return pool

    def _live(self):
        """Names of the live device-mapper devices this engine owns."""
        return {n for n, _maj, _min in
                fastboot_nova.privsep.dm.list_devices()
                if n.startswith(self.prefix)}

    def _remove_if_present(self, name, live=None):
        live = self._live() if live is None else live
        if name in live:
            fastboot_nova.privsep.dm.remove_device(name)
            live.discard(name)
            return True
        return False

    def _check_kernel(self):
        """Refuse to build anything on a kernel without our targets."""
        if self._kernel_ok:
            return
        missing = fastboot_nova.privsep.dm.ensure_targets(
            list(TARGETS[self.opts.snapshot_type]))
        if missing:
            modules = sorted({m for t in missing for m in
                              fastboot_nova.privsep.dm.TARGET_MODULES[t]})
            raise KernelSupportMissing(targets=', '.join(missing),
                                       modules=', '.join(modules))
        self._kernel_ok = True

    # -- the cache device -------------------------------------------------

    def _check_cache_device(self, st):
        device = self.cache_device
        if not device:
            raise CacheDeviceError(device=None,
                                   reason='[fastboot_dm] cache_device is '
                                          'not set')
        dm_st = st.get('dm', {})
        recorded = (dm_st.get('cache_device'),
                    [m[0] for m in dm_st.get('cache_members', [])] or
                    [dm_st.get('cache_device')])
        if st['images'] and recorded != (device, self.cache_members):
            raise CacheDeviceError(
                device=','.join(self.cache_members),
                reason='images are cached on %s; remove them before '
                       'changing cache_device' % ','.join(recorded[1]))
        if len(set(self.cache_members)) != len(self.cache_members):
            raise CacheDeviceError(device=','.join(self.cache_members),
                                   reason='a device is listed twice')
        for member in self.cache_members:
            try:
                fastboot_nova.privsep.dm.check_device(member, 'cache_device',
                                                      must_exist=False)
            except fastboot_nova.privsep.dm.InvalidDmArgument as e:
                raise CacheDeviceError(device=member, reason=e.msg)
            if not self.devices.is_block(member):
                raise CacheDeviceError(device=member,
                                       reason='not a block device')
        if len(self.cache_members) > 1:
            members = dm_st.get('cache_members') if st['images'] else None
            self._ensure_ssd_group(members or [
                [m, self.devices.sectors(m), self.devices.identity(m)]
                for m in self.cache_members])
        return device

    def _ensure_ssd_group(self, members):
        """Join ``members`` (``[device, sectors, identity]``) into the
        SSD group unless it is live; record them.

        A group is rebuilt from what was recorded, in the recorded order,
        and only over the same devices: another order or device would put
        every image's cache slices on other blocks.
        """
        name = self.dm_name('ssd', SSD_GROUP)
        if name not in self._live():
            for dev, sectors, identity in members:
                if not self.devices.is_block(dev) or \
                        self.devices.identity(dev) != identity or \
                        self.devices.sectors(dev) != sectors:
                    raise CacheDeviceError(
                        device=dev, reason='it is not the device the SSD '
                        'group was built on (%s); restore it, or remove '
                        'every image before changing cache_device' %
                        identity)
            fastboot_nova.privsep.dm.create_linear(
                name, [(dev, 0, sectors) for dev, sectors, _i in members])
        with self.state.update() as st:
            st.setdefault('dm', {})['cache_members'] = members
        return self.dm_path(name)

    def _ensure_slice_device(self, device, live):
        """Make sure the device an image's slices are on is there."""
        if device == self.dm_path(self.dm_name('ssd', SSD_GROUP)) and \
                self.dm_name('ssd', SSD_GROUP) not in live:
            members = self.state.read().get('dm', {}).get('cache_members')
            if not members:
                raise CacheDeviceError(device=device,
                                       reason='its members were not '
                                              'recorded')
            self._ensure_ssd_group(members)
            live.add(self.dm_name('ssd', SSD_GROUP))

    def _ssd_group_idle(self, live=None):
        """Remove the SSD group once no image has a slice of it."""
        if not self.state.read()['images']:
            self._remove_if_present(self.dm_name('ssd', SSD_GROUP), live)

    def _allocate(self, st, sectors):
        """First fit of ``sectors`` on the cache device; return start."""
        total = self.devices.sectors(self.cache_device)
        used = sorted((e['cache']['start'],
                       e['cache']['start'] + e['cache']['meta_sectors'] +
                       e['cache']['data_sectors'])
                      for e in st['images'].values() if 'cache' in e)
        pos = 0
        for start, end in used + [(total, total)]:
            if pos + sectors <= start:
                return pos
            pos = max(pos, _round_up(end, ALIGN_SECTORS))
        free = max(0, total - sum(e - s for s, e in used))
        raise exception.CacheFull(image='?', path=self.cache_device,
                                  need=sectors * SECTOR,
                                  free=free * SECTOR)

    # -- images -----------------------------------------------------------

    def _check_location(self, location):
        if not isinstance(location, str) or '://' in location:
            raise NotSupportedByBackend(
                verb='origin %r' % (location,), issue=ISSUE,
                reason='an origin is a local block device (attach a '
                       'volume with "fastboot image add --connection-info"); '
                       'parent hosts\' exports are given to reparent')
        try:
            fastboot_nova.privsep.dm.check_device(location, 'location',
                                                  must_exist=False)
        except fastboot_nova.privsep.dm.InvalidDmArgument as e:
            raise exception.InvalidLocation(location=location,
                                            reason=e.msg)
        if not self.devices.is_block(location):
            raise exception.InvalidLocation(
                location=location, reason='not an existing block device')
        return location

    def _ensure_image(self, image, location):
        """Cache ``image`` unless it is; caller holds the image lock."""
        st = self.state.read()
        entry = st['images'].get(image)
        if entry is not None and entry.get('status') == 'ready':
            if entry['location'] != location:
                raise exception.ImageConflict(image=image,
                                              existing=entry['location'],
                                              location=location)
            live = self._live()
            if not all(n in live for n in self._image_devices(image)):
                LOG.warning('Devices of image %s were missing; restoring',
                            image)
                self._activate_image(image, entry, live)
            return entry
        if entry is not None:
            # An add that was interrupted: start over.
            self._drop_image(image, entry, self._live())
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
        data = _round_up(sectors, block)
        meta = cache_meta_sectors(data // block)
        with self._lock('cachedev', 'alloc'):
            st = self.state.read()
            device = self._check_cache_device(st)
            try:
                start = self._allocate(st, meta + data)
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
        live = self._live()
        try:
            self._build_image(image, entry, live, wipe=True)
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                self._teardown_image(image, self._live(), wipe=True)
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

    def _build_image(self, image, entry, live, wipe):
        """Create the image's missing devices, in order."""
        origin, cmeta, cdata, cache = self._image_devices(image)
        c = entry['cache']
        self._ensure_slice_device(c['device'], live)
        if origin not in live:
            fastboot_nova.privsep.dm.create_linear(
                origin, [tuple(s) for s in entry['segments']])
        if cmeta not in live:
            fastboot_nova.privsep.dm.create_linear(
                cmeta, [(c['device'], c['start'], c['meta_sectors'])])
        if cdata not in live:
            fastboot_nova.privsep.dm.create_linear(
                cdata, [(c['device'], c['start'] + c['meta_sectors'],
                         c['data_sectors'])])
        if cache not in live:
            if wipe:
                fastboot_nova.privsep.dm.wipe_header(cmeta, WIPE_BYTES)
            # From now on the metadata is in use: only a clean remove of
            # the cache makes it trustworthy again.
            with self.state.update() as st:
                if image in st['images']:
                    st['images'][image]['clean'] = False
            fastboot_nova.privsep.dm.create_cache(
                cache, self.dm_path(cmeta), self.dm_path(cdata),
                self.dm_path(origin), c['block_sectors'], c['mode'])

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
            self._build_image(image, entry, live, wipe=wipe)
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                self._teardown_image(image, self._live(), wipe=False)
            raise

    def _teardown_image(self, image, live, wipe):
        """Remove the image's devices, last created first."""
        origin, cmeta, cdata, cache = self._image_devices(image)
        if self._remove_if_present(cache, live):
            # A clean remove flushed and closed the metadata.
            with self.state.update() as st:
                if image in st['images']:
                    st['images'][image]['clean'] = True
        if wipe and cmeta in live:
            fastboot_nova.privsep.dm.wipe_header(cmeta, WIPE_BYTES)
        for name in (cdata, cmeta, origin):
            self._remove_if_present(name, live)
        # The parent paths fed the origin device, gone now.
        tree.drop_parents(self, image)

    def _drop_image(self, image, entry, live):
        self._teardown_image(image, live, wipe=True)
        with self.state.update() as st:
            st['images'].pop(image, None)
        with self._lock('cachedev', 'alloc'):
            self._ssd_group_idle(live)

    # -- VMs --------------------------------------------------------------

    def _disk(self, vm, entry):
        if _is_thin(entry):
            written = 0
            with contextlib.suppress(exception.FastbootException,
                                     IndexError, ValueError):
                # thin status: <mapped sectors> <highest mapped sector>
                written = int(fastboot_nova.privsep.dm.status(
                    self.dm_name('vm', vm)).split()[3]) * SECTOR
            return base.VmDisk(name=vm, image=entry['image'],
                               path=entry['path'], written_bytes=written)
        try:
            written = os.stat(entry['cow']).st_blocks * SECTOR
        except OSError:
            written = 0
        return base.VmDisk(name=vm, image=entry['image'],
                           path=entry['path'], written_bytes=written)

    def _check_not_in_use(self, vm):
        name = self.dm_name('vm', vm)
        if name in self._live() and \
                fastboot_nova.privsep.dm.open_count(name) > 0:
            raise exception.VmDiskInUse(vm=vm)

    def _loops_of(self, path):
        return [dev for dev, back in fastboot_nova.privsep.loop.
                list_attached() if back == path]

    def _detach_cow(self, path):
        for dev in self._loops_of(path):
            fastboot_nova.privsep.loop.detach(dev)

    def _activate_vm(self, vm, entry):
        """Create the VM's device (attaching its COW file if it has one)."""
        if _is_thin(entry):
            fastboot_nova.privsep.dm.create_thin(
                self.dm_name('vm', vm), self._ensure_pool(),
                entry['thin_id'],
                self.dm_path(self.dm_name('cache', entry['image'])))
            return
        loop = fastboot_nova.privsep.loop.attach(entry['cow'])
        try:
            fastboot_nova.privsep.dm.create_snapshot(
                self.dm_name('vm', vm),
                self.dm_path(self.dm_name('cache', entry['image'])),
                loop, entry['chunk_sectors'])
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                fastboot_nova.privsep.loop.detach(loop)
            raise

    def _deactivate_vm(self, vm, entry, live):
        self._remove_if_present(self.dm_name('vm', vm), live)
        if not _is_thin(entry):
            self._detach_cow(entry['cow'])

    # -- the thin-pool ----------------------------------------------------

    def _pool_files(self):
        return (os.path.join(self.thin_dir, 'pool.meta'),
                os.path.join(self.thin_dir, 'pool.data'))

    def _make_pool_files(self, block):
        """Allocate the pool's files in full; return the state entry."""
        meta, data = self._pool_files()
        data_bytes = self.opts.thin_pool_size_mib << 20
        data_bytes -= data_bytes % (block * SECTOR)
        blocks = data_bytes // (block * SECTOR)
        meta_bytes = pool_mod.meta_bytes_for(blocks)
        for path, size in ((meta, meta_bytes), (data, data_bytes)):
            # An exclusive, unpredictable temporary name (mode 0600): a
            # symlink planted in thin/ is never followed.
            fd, tmp = tempfile.mkstemp(
                prefix='.' + os.path.basename(path) + '.', suffix='.tmp',
                dir=self.thin_dir)
            try:
                # Allocated, not sparse: a full pool is then the pool's
                # orderly ENOSPC, never a file system write error. An
                # unwritten extent reads as zeros, so the new metadata
                # is formatted by the kernel.
                os.posix_fallocate(fd, 0, size)
                os.fsync(fd)
                os.close(fd)
                os.rename(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        fsync_dir(self.thin_dir)
        return {'meta': meta, 'data': data, 'block_sectors': block,
                'data_bytes': data_bytes, 'meta_bytes': meta_bytes}

    def _pool_loop(self, path):
        loops = self._loops_of(path)
        return loops[0] if loops else fastboot_nova.privsep.loop.attach(path)

    def _ensure_pool(self):
        """Activate the engine's thin-pool, making it on first use."""
        name = self.dm_name('pool', POOL)
        if name in self._live():
            return name
        with self._lock('pool', POOL):
            return self._ensure_pool_locked()

    def _ensure_pool_locked(self):
        name = self.dm_name('pool', POOL)
        if name in self._live():
            return name
        pool = self.checked_pool()
        if pool is None:
            self._check_kernel()
            pool = self._make_pool_files(self.opts.thin_block_sectors)
            with self.state.update() as st:
                st.setdefault('dm', {})['pool'] = pool
                st['dm'].setdefault('next_thin_id', 0)
        for path in (pool['meta'], pool['data']):
            if not os.path.isfile(path):
                raise exception.StateError(
                    path=path, reason='the thin-pool file is missing')
        loops = [self._pool_loop(pool['meta']),
                 self._pool_loop(pool['data'])]
        blocks = pool['data_bytes'] // (pool['block_sectors'] * SECTOR)
        try:
            fastboot_nova.privsep.dm.create_thin_pool(
                name, loops[0], loops[1], pool['block_sectors'],
                pool_mod.low_water_blocks(blocks))
        except BaseException:
            for dev in loops:
                with contextlib.suppress(exception.FastbootException):
                    fastboot_nova.privsep.loop.detach(dev)
            raise
        return name

    def _deactivate_pool(self, live=None):
        """Remove the pool device; its files (and every VM) stay."""
        self._remove_if_present(self.dm_name('pool', POOL), live)
        for path in self._pool_files():
            self._detach_cow(path)

    def _pool_idle(self):
        """Deactivate the pool if no VM uses it."""
        with self._lock('pool', POOL):
            if not any(_is_thin(e)
                       for e in self.state.read()['vms'].values()):
                self._deactivate_pool()

    def pool_status(self):
        """Size and use of the thin-pool (see :mod:`.pool`), or None."""
        return pool_mod.status(self)

    def grow_pool(self, size_mib):
        """Grow the thin-pool to ``size_mib`` MiB, live."""
        return pool_mod.grow(self, size_mib)

    def _warn_if_pool_low(self):
        with contextlib.suppress(exception.FastbootException):
            st = self.pool_status()
            if st and st['low_space']:
                LOG.warning('The thin-pool of %s is low on space (%d of %d '
                            'MiB used, mode %s): VM writes fail with ENOSPC '
                            'when it is full; grow it with "fastboot pool '
                            'grow"', self.state_path,
                            (st['used_bytes'] or 0) >> 20,
                            st['data_bytes'] >> 20, st['mode'])

    def _new_thin(self, vm, image, location, source_vm=None):
        """Record ``vm`` on ``image`` and create its thin volume.

        With ``source_vm`` (its thin id), the volume is a snapshot of that
        VM's volume, whose device the caller has removed.
        """
        if vm in self.state.read()['vms'] or \
                os.path.lexists(self._cow_path(vm)):
            raise exception.VmExists(vm=vm)
        with self._lock('image', image), self._lock('pool', POOL):
            self._ensure_image(image, location)
            # Recorded under the pool lock: an idle check now sees it.
            pool = self._ensure_pool_locked()
            with self.state.update() as st:
                dev_id = st['dm'].get('next_thin_id', 0)
                st['dm']['next_thin_id'] = dev_id + 1
                st['vms'][vm] = {'image': image, 'type': 'thin',
                                 'thin_id': dev_id,
                                 'path': self.dm_path(
                                     self.dm_name('vm', vm)),
                                 'status': 'creating',
                                 'created_at': time.time()}
        try:
            if source_vm is None:
                fastboot_nova.privsep.dm.thin_message(pool, 'create_thin',
                                                      dev_id)
            else:
                fastboot_nova.privsep.dm.thin_message(pool, 'create_snap',
                                                      dev_id, source_vm)
            self._activate_vm(vm, self.state.read()['vms'][vm])
            with self.state.update() as st:
                st['vms'][vm]['status'] = 'ready'
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                self._remove_if_present(self.dm_name('vm', vm))
            with contextlib.suppress(exception.FastbootException):
                fastboot_nova.privsep.dm.thin_message(pool, 'delete',
                                                      dev_id)
            with self.state.update() as st:
                st['vms'].pop(vm, None)
            raise
        self._warn_if_pool_low()
        return self._disk(vm, self.state.read()['vms'][vm])

    def _delete_thin(self, entry):
        fastboot_nova.privsep.dm.thin_message(self._ensure_pool(), 'delete',
                                              entry['thin_id'])

    def _new_disk(self, vm, image, location, fill):
        """Record ``vm`` on ``image`` and build its disk.

        ``fill(cow_tmp, image_entry)`` writes the copy-on-write file. The
        caller holds the VM lock; the image lock is held while the VM is
        recorded, so remove_image sees it.
        """
        cow = self._cow_path(vm)
        if vm in self.state.read()['vms'] or os.path.lexists(cow):
            raise exception.VmExists(vm=vm)
        with self._lock('image', image):
            image_entry = self._ensure_image(image, location)
            with self.state.update() as st:
                st['vms'][vm] = {'image': image, 'cow': cow,
                                 'path': self.dm_path(
                                     self.dm_name('vm', vm)),
                                 'chunk_sectors':
                                     self.opts.snapshot_chunk_sectors,
                                 'status': 'creating',
                                 'created_at': time.time()}
        tmp = os.path.join(self.cow_dir, '.%s.cow.tmp' % vm)
        try:
            # Mode 0600 before any data is in it (fills keep the mode);
            # a symlink planted at the name is removed, not followed.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            fileutils.create_private(tmp)
            fill(tmp, image_entry)
            os.rename(tmp, cow)
            # The VM's data will live in this file: its name must survive
            # a power loss like the state file does.
            fsync_dir(self.cow_dir)
            self._activate_vm(vm, self.state.read()['vms'][vm])
            with self.state.update() as st:
                st['vms'][vm]['status'] = 'ready'
        except BaseException:
            with contextlib.suppress(exception.FastbootException):
                self._deactivate_vm(vm, {'cow': cow}, self._live())
            for leftover in (tmp, cow):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)
            with self.state.update() as st:
                st['vms'].pop(vm, None)
            raise
        return self._disk(vm, self.state.read()['vms'][vm])

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
            if any(n in self._live() for n in self._image_devices(image)):
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
        chunk = self.opts.snapshot_chunk_sectors
        if self.opts.snapshot_type == 'thin':
            with self._vm_locks(vm):
                disk = self._new_thin(vm, image, location)
            LOG.info('Created VM disk %s (thin) on image %s', vm, image)
            return disk

        def fill(tmp, image_entry):
            with open(tmp, 'wb') as f:
                f.truncate(cow_bytes(image_entry['virtual_size'] // SECTOR,
                                     chunk))
                os.fsync(f.fileno())

        with self._vm_locks(vm):
            disk = self._new_disk(vm, image, location, fill)
        LOG.info('Created VM disk %s on image %s', vm, image)
        return disk

    def destroy(self, vm):
        names.validate(vm, 'VM')
        with self._vm_locks(vm):
            entry = self._vm_entry(vm)
            self._check_not_in_use(vm)
            self._deactivate_vm(vm, entry, self._live())
            if _is_thin(entry):
                self._delete_thin(entry)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._cow_path(vm))
            with self.state.update() as st:
                st['vms'].pop(vm, None)
        if _is_thin(entry):
            self._pool_idle()
        LOG.info('Destroyed VM disk %s', vm)

    def clone(self, vm, destination):
        names.validate(vm, 'VM')
        names.validate(destination, 'VM')
        if vm == destination:
            raise exception.VmExists(vm=destination)
        with self._vm_locks(vm, destination):
            st = self.state.read()
            entry = self._vm_entry(vm, st)
            self._check_not_in_use(vm)
            location = st['images'][entry['image']]['location']
            if _is_thin(entry):
                # create_snap needs its origin volume quiet: the source
                # is not open, so remove its device meanwhile.
                self._remove_if_present(self.dm_name('vm', vm))
                try:
                    return self._new_thin(destination, entry['image'],
                                          location,
                                          source_vm=entry['thin_id'])
                finally:
                    self._activate_vm(vm, entry)
            # A persistent COW store is self-contained (its exceptions
            # name origin chunks), and a closed snapshot has committed
            # all of it: a copy is a valid disk over the same cache.
            return self._new_disk(
                destination, entry['image'], location,
                lambda tmp, _image_entry: sparse_copy(entry['cow'], tmp))

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
            if not all(n in self._live() for n in
                       self._image_devices(image)):
                self._activate_image(image, entry, self._live())
            tree.reparent(self, image, location, alternates)

    def ensure_exports(self):
        return tree.ensure_exports(self)

    def cache_stats(self, image):
        """dm-cache counters of ``image`` (None when it is not active)."""
        name = self.dm_name('cache', image)
        if name not in self._live():
            return None
        return parse_cache_status(fastboot_nova.privsep.dm.status(name))

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
            st = self.state.read()
            entry = st['images'].get(image)
            if entry is None:
                raise exception.ImageNotFound(image=image)
            users = sorted(vm for vm, e in st['vms'].items()
                           if e['image'] == image)
            if users:
                raise exception.ImageInUse(image=image,
                                           vms=', '.join(users))
            live = self._live()
            if self.dm_name('cmeta', image) not in live:
                # Wipe the slice before it is freed, even if the image
                # was not active.
                c = entry['cache']
                self._ensure_slice_device(c['device'], live)
                fastboot_nova.privsep.dm.create_linear(
                    self.dm_name('cmeta', image),
                    [(c['device'], c['start'], c['meta_sectors'])])
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
        live = self._live()
        for vm in sorted(st['vms']):
            name = self.dm_name('vm', vm)
            if name in live and \
                    fastboot_nova.privsep.dm.open_count(name) > 0:
                raise exception.VmDiskInUse(vm=vm)
        for vm, entry in self._checked_vms(st):
            with self._vm_locks(vm):
                self._deactivate_vm(vm, entry, live)
        with self._lock('pool', POOL):
            self._deactivate_pool(live)
        for image in sorted(st['images']):
            with self._lock('image', image):
                # nbd-servers hold the cache open.
                tree.unexport(self, image)
                self._teardown_image(image, live, wipe=False)
        self._remove_if_present(self.dm_name('ssd', SSD_GROUP), live)

    def reconcile(self):
        report = DmReconcileReport()
        st = self.state.read()
        live = self._live()
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
                if entry['cache']['device'] == self.dm_path(
                        self.dm_name('ssd', SSD_GROUP)):
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
                live = self._live()
        for vm, _checked in self._checked_vms(st, report):
            with self._vm_locks(vm):
                self._reconcile_vm(vm, live, expected, report)
        if any(_is_thin(e) for e in self.state.read()['vms'].values()):
            expected.add(self.dm_name('pool', POOL))
        live = self._live()
        self._remove_orphans(live, expected, report)
        if self.dm_name('pool', POOL) not in expected:
            with self._lock('pool', POOL):
                self._deactivate_pool()
        self._reconcile_files(report)
        try:
            report.relayed_images = tree.ensure_exports(self)
        except exception.FastbootException as e:
            LOG.error('Could not restore the exports: %s', e.msg)
        return report

    def _reconcile_vm(self, vm, live, expected, report):
        st = self.state.read()
        entry = st['vms'].get(vm)
        if entry is None:
            return
        entry = self.check_vm_entry(vm, entry)
        name = self.dm_name('vm', vm)
        if _is_thin(entry):
            return self._reconcile_thin(vm, entry, name, live, expected,
                                        report)
        if entry.get('status') != 'ready':
            if name in live and os.path.exists(entry['cow']):
                with self.state.update() as st:
                    st['vms'][vm]['status'] = 'ready'
                report.completed_vms.append(vm)
                expected.add(name)
            else:
                with contextlib.suppress(exception.FastbootException):
                    self._deactivate_vm(vm, entry, live)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry['cow'])
                with self.state.update() as st:
                    st['vms'].pop(vm, None)
                report.dropped_vms.append(vm)
            return
        expected.add(name)
        if name in live:
            return
        if not os.path.exists(entry['cow']):
            report.missing_disks.append(vm)
            return
        if entry['image'] in report.failed_images:
            return
        self._restore_vm(vm, entry, name, live, report)

    def _restore_vm(self, vm, entry, name, live, report):
        try:
            self._activate_vm(vm, entry)
        except exception.FastbootException as e:
            LOG.error('Could not restore the disk of VM %s: %s', vm, e.msg)
            report.missing_disks.append(vm)
        else:
            report.restored_vms.append(vm)
            live.add(name)

    def _reconcile_thin(self, vm, entry, name, live, expected, report):
        if entry.get('status') != 'ready':
            if name in live:
                with self.state.update() as st:
                    st['vms'][vm]['status'] = 'ready'
                report.completed_vms.append(vm)
                expected.add(name)
                return
            with contextlib.suppress(exception.FastbootException):
                self._delete_thin(entry)
            with self.state.update() as st:
                st['vms'].pop(vm, None)
            report.dropped_vms.append(vm)
            return
        expected.add(name)
        if name in live or entry['image'] in report.failed_images:
            return
        self._restore_vm(vm, entry, name, live, report)

    def _remove_orphans(self, live, expected, report):
        def order(name):
            kind = name[len(self.prefix):].split('-', 1)[0]
            return (KINDS.index(kind) if kind in KINDS else len(KINDS),
                    name)

        for name in sorted(live - expected, key=order):
            try:
                fastboot_nova.privsep.dm.remove_device(name)
            except exception.FastbootException as e:
                LOG.warning('Cannot remove orphan device %s: %s', name,
                            e.msg)
                continue
            report.removed_orphan_nodes.append(name)

    def _reconcile_files(self, report):
        st = self.state.read()
        cows = {self._cow_path(vm) for vm, e in self._checked_vms(st)
                if not _is_thin(e)}
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
