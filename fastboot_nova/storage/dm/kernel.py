"""What the dm backend's parts share: device names, host facts, errors.

:class:`DeviceNames` is one engine's namespace of device-mapper devices
(``fb-<id>-<kind>-<name>``) and the loop devices of its files: the cache
device, the thin-pool, the VM layers and the tree all create and remove
devices through it, never through each other's private methods.
"""

import contextlib
import os

from fastboot_nova import exception
from fastboot_nova.i18n import _
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.loop

ISSUE = 'Kernel (dm) backend'
SECTOR = 512
#: Slices of the cache device start on 1 MiB boundaries.
ALIGN_SECTORS = 2048
#: Bytes zeroed at the start of a metadata slice: the dm-cache superblock.
WIPE_BYTES = 4096
#: Device kinds, in the order they are removed.
KINDS = ('vm', 'pool', 'cache', 'cdata', 'cmeta', 'origin', 'mp', 'ssd')

#: The device-mapper targets the engine builds on, by snapshot type.
TARGETS = {'thin': ('linear', 'cache', 'thin-pool', 'thin'),
           'snapshot': ('linear', 'cache', 'snapshot')}


class NotSupportedByBackend(exception.FastbootException):
    message = _("The dm backend does not support %(verb)s yet (issue "
                "'%(issue)s'): %(reason)s")


class CacheDeviceError(exception.FastbootException):
    message = _("Cache device %(device)s is unusable: %(reason)s")


class KernelSupportMissing(exception.FastbootException):
    message = _("The kernel lacks the device-mapper target(s) %(targets)s "
                "(modules %(modules)s could not be loaded): the dm backend "
                "cannot build images")


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


class DeviceNames:
    """The device-mapper devices and loop devices of one engine."""

    def __init__(self, prefix):
        #: Prefix of every device-mapper name this engine owns.
        self.prefix = prefix
        self._kernel_ok = set()

    def name(self, kind, name):
        return '%s%s-%s' % (self.prefix, kind, name)

    @staticmethod
    def path(dm_name):
        return '/dev/mapper/' + dm_name

    def live(self):
        """Names of the live device-mapper devices this engine owns."""
        return {n for n, _maj, _min in
                fastboot_nova.privsep.dm.list_devices()
                if n.startswith(self.prefix)}

    def remove_if_present(self, name, live=None):
        """Remove device ``name`` if it is live; keep ``live`` in step."""
        live = self.live() if live is None else live
        if name in live:
            fastboot_nova.privsep.dm.remove_device(name)
            live.discard(name)
            return True
        return False

    def open_count(self, name):
        return fastboot_nova.privsep.dm.open_count(name)

    def is_open(self, name, live=None):
        live = self.live() if live is None else live
        return name in live and self.open_count(name) > 0

    @staticmethod
    def loops_of(path):
        return [dev for dev, back in fastboot_nova.privsep.loop.
                list_attached() if back == path]

    def detach_file(self, path):
        """Detach every loop device of file ``path``."""
        for dev in self.loops_of(path):
            fastboot_nova.privsep.loop.detach(dev)

    def loop_of(self, path):
        """The loop device of ``path``, attaching it if it has none."""
        loops = self.loops_of(path)
        return loops[0] if loops else fastboot_nova.privsep.loop.attach(path)

    def order(self, name):
        """Sort key: devices of later kinds are removed first."""
        kind = name[len(self.prefix):].split('-', 1)[0]
        return (KINDS.index(kind) if kind in KINDS else len(KINDS), name)

    def check_targets(self, snapshot_type):
        """Refuse to build anything on a kernel without our targets."""
        if snapshot_type in self._kernel_ok:
            return
        missing = fastboot_nova.privsep.dm.ensure_targets(
            list(TARGETS[snapshot_type]))
        if missing:
            modules = sorted({m for t in missing for m in
                              fastboot_nova.privsep.dm.TARGET_MODULES[t]})
            raise KernelSupportMissing(targets=', '.join(missing),
                                       modules=', '.join(modules))
        self._kernel_ok.add(snapshot_type)


def round_up(value, unit):
    return (value + unit - 1) // unit * unit


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
    return round_up((4 << 20) // SECTOR + 2 * (16 * nr_blocks) // SECTOR,
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


def sparse_copy(src, dst):
    """Copy ``src`` to ``dst`` keeping holes (SEEK_DATA / SEEK_HOLE).

    ``dst`` keeps its mode when it exists (a 0600 file stays 0600).
    """
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


def best_effort(call, *args):
    """Run a clean-up step; a failure must not hide the original error."""
    with contextlib.suppress(exception.FastbootException):
        return call(*args)


def check_origin(devices, location):
    """``location`` if it is a usable origin: a local block device."""
    if not isinstance(location, str) or '://' in location:
        raise NotSupportedByBackend(
            verb='origin %r' % (location,), issue=ISSUE,
            reason='an origin is a local block device (attach a volume '
                   'with "fastboot image add --connection-info"); parent '
                   'hosts\' exports are given to reparent')
    try:
        fastboot_nova.privsep.dm.check_device(location, 'location',
                                              must_exist=False)
    except fastboot_nova.privsep.dm.InvalidDmArgument as e:
        raise exception.InvalidLocation(location=location, reason=e.msg)
    if not devices.is_block(location):
        raise exception.InvalidLocation(
            location=location, reason='not an existing block device')
    return location
