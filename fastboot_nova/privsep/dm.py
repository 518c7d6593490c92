"""Privileged device-mapper calls: narrow, typed, validated.

Every entrypoint checks its arguments before anything runs, builds the
table itself and runs ``dmsetup`` with an argument list (never a shell,
never a caller-supplied command). Tables go to dmsetup on standard input,
so a multi-segment table needs no quoting at all.

Every device the daemon acts on is confined to fastboot's own (see
:mod:`fastboot_nova.privsep.utils`): names ``fb-<id>-``, devices built
on only when the host does not use them otherwise.

Tests run the entrypoints in-process with the context's client mode off
and replace the runner and device facts of :mod:`~.utils` and
:func:`_write_zeros` with fakes; see ``tests/unit/dm/fakes.py``.

Through the privsep daemon, lists come back as tuples.
"""

import os
import re

import fastboot_nova.privsep
from fastboot_nova.privsep import utils
# Shared with the other topic modules; kept here for the callers in
# fastboot_nova.storage.dm.
from fastboot_nova.privsep.utils import check_device
from fastboot_nova.privsep.utils import check_int
from fastboot_nova.privsep.utils import check_name  # noqa: F401
from fastboot_nova.privsep.utils import check_own_name
from fastboot_nova.privsep.utils import DmCommandFailed
from fastboot_nova.privsep.utils import InvalidDmArgument
from fastboot_nova.privsep.utils import MAX_SECTORS
from fastboot_nova.privsep.utils import NAME_RE  # noqa: F401
from fastboot_nova.privsep.utils import Refused  # noqa: F401
from fastboot_nova.privsep.utils import run_tool
from fastboot_nova.privsep.utils import ToolMissing  # noqa: F401

CACHE_MODES = ('writethrough', 'passthrough', 'writeback')
#: dm-cache: multiple of 64 sectors (32 KiB), at most 2^21 (1 GiB).
CACHE_BLOCK_MIN, CACHE_BLOCK_MAX = 64, 1 << 21
#: dm-snapshot: power of two, 8 sectors (4 KiB) to 2^20 sectors.
CHUNK_MIN, CHUNK_MAX = 8, 1 << 20
#: dm-thin: multiple of 128 sectors (64 KiB), at most 2^21 (1 GiB).
THIN_BLOCK_MIN, THIN_BLOCK_MAX = 128, 1 << 21
#: Thin device ids are 24 bits.
THIN_ID_MAX = (1 << 24) - 1
THIN_MESSAGES = ('create_thin', 'create_snap', 'delete')
#: A table may hold at most this many linear segments.
MAX_SEGMENTS = 256
#: Bytes :func:`wipe_header` may zero.
MAX_WIPE = 1 << 20

#: Kernel modules that provide each device-mapper target we use.
TARGET_MODULES = {'linear': (), 'snapshot': ('dm-snapshot',),
                  'cache': ('dm-cache', 'dm-cache-smq'),
                  'thin-pool': ('dm-thin-pool',), 'thin': ('dm-thin-pool',)}
MODPROBE = 'modprobe'


def _is_block_device(path):
    """Whether ``path`` is a block device (for the engine's HostDevices)."""
    return utils._is_block_device(path)


def device_sectors(path):
    """Size of block device ``path`` in 512-byte sectors."""
    return utils.device_sectors(path)


def _write_zeros(path, length):
    # O_EXCL on a block device: refuse one that is in use (claimed by a
    # target or mounted).
    fd = os.open(path, os.O_WRONLY | os.O_EXCL)
    try:
        os.write(fd, b'\0' * length)
        os.fsync(fd)
    finally:
        os.close(fd)


# -- validation (unprivileged, importable by callers) --------------------

def linear_table(segments):
    """The table of a dm-linear device over ``segments``.

    :param segments: list of ``(device, offset_sectors, length_sectors)``;
        concatenated in order.
    """
    if not isinstance(segments, (list, tuple)) or not segments or \
            len(segments) > MAX_SEGMENTS:
        raise InvalidDmArgument(what='segments', value=segments,
                                reason='expected 1 to %d segments' %
                                MAX_SEGMENTS)
    lines = []
    start = 0
    for seg in segments:
        if not isinstance(seg, (list, tuple)) or len(seg) != 3:
            raise InvalidDmArgument(
                what='segment', value=seg,
                reason='expected (device, offset, length)')
        device, offset, length = seg
        check_device(device)
        check_int(offset, 'offset', 0, MAX_SECTORS)
        check_int(length, 'length', 1, MAX_SECTORS)
        lines.append('%d %d linear %s %d' % (start, length, device, offset))
        start += length
    if start > MAX_SECTORS:
        raise InvalidDmArgument(what='segments', value=start,
                                reason='the device would be too large')
    return '\n'.join(lines) + '\n'


def snapshot_table(origin_dev, cow_dev, chunk_sectors, length):
    """The table of a persistent dm-snapshot of ``origin_dev``."""
    check_device(origin_dev, 'origin_dev')
    check_device(cow_dev, 'cow_dev')
    check_int(length, 'length', 1, MAX_SECTORS)
    check_int(chunk_sectors, 'chunk_sectors', CHUNK_MIN, CHUNK_MAX)
    if chunk_sectors & (chunk_sectors - 1):
        raise InvalidDmArgument(what='chunk_sectors', value=chunk_sectors,
                                reason='expected a power of two')
    if origin_dev == cow_dev:
        raise InvalidDmArgument(what='cow_dev', value=cow_dev,
                                reason='it is the origin')
    return '0 %d snapshot %s %s P %d\n' % (length, origin_dev, cow_dev,
                                           chunk_sectors)


def cache_table(metadata_dev, cache_dev, origin_dev, block_sectors, mode,
                length):
    """The table of a dm-cache (smq policy) over ``origin_dev``."""
    devices = {'metadata_dev': metadata_dev, 'cache_dev': cache_dev,
               'origin_dev': origin_dev}
    for what, dev in devices.items():
        check_device(dev, what)
    if len(set(devices.values())) != 3:
        raise InvalidDmArgument(what='devices', value=sorted(
            devices.values()), reason='they must be three distinct devices')
    check_int(length, 'length', 1, MAX_SECTORS)
    check_int(block_sectors, 'block_sectors', CACHE_BLOCK_MIN,
              CACHE_BLOCK_MAX)
    if block_sectors % 64:
        raise InvalidDmArgument(what='block_sectors', value=block_sectors,
                                reason='expected a multiple of 64')
    if mode not in CACHE_MODES:
        raise InvalidDmArgument(what='mode', value=mode,
                                reason='expected one of %s' %
                                ', '.join(CACHE_MODES))
    return '0 %d cache %s %s %s %d 1 %s smq 0\n' % (
        length, metadata_dev, cache_dev, origin_dev, block_sectors, mode)


def thin_pool_table(metadata_dev, data_dev, block_sectors,
                    low_water_blocks, length):
    """The table of a thin-pool that errors (ENOSPC) when it is full."""
    check_device(metadata_dev, 'metadata_dev')
    check_device(data_dev, 'data_dev')
    if metadata_dev == data_dev:
        raise InvalidDmArgument(what='data_dev', value=data_dev,
                                reason='it is the metadata device')
    check_int(block_sectors, 'block_sectors', THIN_BLOCK_MIN,
              THIN_BLOCK_MAX)
    if block_sectors % THIN_BLOCK_MIN:
        raise InvalidDmArgument(what='block_sectors', value=block_sectors,
                                reason='expected a multiple of 128')
    check_int(length, 'length', block_sectors, MAX_SECTORS)
    check_int(low_water_blocks, 'low_water_blocks', 0,
              length // block_sectors)
    # error_if_no_space: a full pool fails writes at once instead of
    # queueing them (and hanging the VMs) for no_space_timeout.
    return '0 %d thin-pool %s %s %d %d 1 error_if_no_space\n' % (
        length // block_sectors * block_sectors, metadata_dev, data_dev,
        block_sectors, low_water_blocks)


def thin_table(pool_dev, dev_id, origin_dev, length):
    """The table of thin volume ``dev_id`` with an external origin."""
    check_device(pool_dev, 'pool_dev')
    check_device(origin_dev, 'origin_dev')
    check_int(dev_id, 'dev_id', 0, THIN_ID_MAX)
    check_int(length, 'length', 1, MAX_SECTORS)
    return '0 %d thin %s %d %s\n' % (length, pool_dev, dev_id, origin_dev)


# -- running dmsetup -----------------------------------------------------

def _swap_table(name, table):
    """Load ``table`` into live device ``name`` and resume it.

    The device is suspended only for the swap. If the new table does not
    resume, it is dropped and the device resumes with its old one.
    """
    utils.dmsetup('reload', name, name, stdin=table)
    try:
        utils.dmsetup('resume', name, name)
    except DmCommandFailed:
        utils.dmsetup('clear', name, name, ok_codes=(0, 1))
        utils.dmsetup('resume', name, name, ok_codes=(0, 1))
        raise


# -- entrypoints ---------------------------------------------------------

@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_linear(name, segments):
    """Create dm-linear ``name`` over ``segments``; return its path.

    :param segments: list of ``(device, offset_sectors, length_sectors)``;
        each device is fastboot's own, a configured cache device or one
        the host does not use.
    """
    check_own_name(name)
    table = linear_table(segments)
    for device, _offset, _length in segments:
        utils.check_host_device(device, 'segment')
    return utils.create_device(name, table)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_snapshot(name, origin_dev, cow_dev, chunk_sectors):
    """Create a persistent dm-snapshot ``name``; return its path.

    The snapshot opens its origin read-only: nothing may write to the
    origin while snapshots use it (ours is a read-only cache), so no
    snapshot-origin target is needed.
    """
    check_own_name(name)
    utils.check_own_device(origin_dev, 'origin_dev')
    utils.check_host_device(cow_dev, 'cow_dev')
    table = snapshot_table(origin_dev, cow_dev, chunk_sectors,
                           device_sectors(origin_dev))
    return utils.create_device(name, table)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_cache(name, metadata_dev, cache_dev, origin_dev, block_sectors,
                 mode='writethrough'):
    """Create dm-cache ``name`` (policy smq) over ``origin_dev``.

    All three devices are fastboot's own (its slices and origin device).
    """
    check_own_name(name)
    for what, dev in (('metadata_dev', metadata_dev),
                      ('cache_dev', cache_dev), ('origin_dev', origin_dev)):
        utils.check_own_device(dev, what)
    table = cache_table(metadata_dev, cache_dev, origin_dev, block_sectors,
                        mode, device_sectors(origin_dev))
    return utils.create_device(name, table)


def _pool_table(metadata_dev, data_dev, block_sectors, low_water_blocks):
    utils.check_host_device(metadata_dev, 'metadata_dev')
    utils.check_host_device(data_dev, 'data_dev')
    return thin_pool_table(metadata_dev, data_dev, block_sectors,
                           low_water_blocks, device_sectors(data_dev))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_thin_pool(name, metadata_dev, data_dev, block_sectors,
                     low_water_blocks):
    """Create thin-pool ``name`` over the whole of ``data_dev``.

    A metadata device whose first block is zero is formatted; one holding
    pool metadata is opened as it is, with every thin volume in it.
    """
    check_own_name(name, kind='pool')
    return utils.create_device(name, _pool_table(
        metadata_dev, data_dev, block_sectors, low_water_blocks))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def grow_thin_pool(name, metadata_dev, data_dev, block_sectors,
                   low_water_blocks):
    """Reload thin-pool ``name`` over the whole of its grown ``data_dev``.

    Only growth: a table not longer than the live one is refused. The pool
    is suspended only while the tables swap (its thin volumes' I/O waits
    meanwhile), and a grown metadata device is taken up too. If the new
    table does not resume, the old one is put back.
    """
    check_own_name(name, kind='pool')
    table = _pool_table(metadata_dev, data_dev, block_sectors,
                        low_water_blocks)
    live = utils.dmsetup('table', name, name).split()
    if len(live) < 3 or live[2] != 'thin-pool':
        raise InvalidDmArgument(what='name', value=name,
                                reason='not a thin-pool')
    if int(table.split()[1]) <= int(live[1]):
        raise InvalidDmArgument(what='data_dev', value=data_dev,
                                reason='not larger than the pool (%s '
                                       'sectors)' % live[1])
    _swap_table(name, table)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def retarget_linear(name, device):
    """Point origin device ``name`` (dm-linear) at the whole of ``device``.

    ``device`` must have the length of ``name``. The device is suspended
    only for the table swap; what is stacked on it (a dm-cache) never
    notices. If the new table does not resume, the old one is put back.
    """
    check_own_name(name, kind='origin')
    utils.check_host_device(device)
    lines = [line.split() for line in utils.dmsetup('table', name, name)
             .splitlines() if line.strip()]
    if not lines or any(len(f) < 3 or f[2] != 'linear' for f in lines):
        raise InvalidDmArgument(what='name', value=name,
                                reason='not a dm-linear device')
    length = sum(int(f[1]) for f in lines)
    if device_sectors(device) != length:
        raise InvalidDmArgument(what='device', value=device,
                                reason='its size differs from %s (%d '
                                       'sectors)' % (name, length))
    _swap_table(name, linear_table([(device, 0, length)]))


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def thin_message(pool, verb, dev_id, origin_id=None):
    """Send ``create_thin``, ``create_snap`` or ``delete`` to a pool."""
    check_own_name(pool, 'pool', kind='pool')
    if verb not in THIN_MESSAGES:
        raise InvalidDmArgument(what='verb', value=verb,
                                reason='expected one of %s' %
                                ', '.join(THIN_MESSAGES))
    args = [verb, str(check_int(dev_id, 'dev_id', 0, THIN_ID_MAX))]
    if verb == 'create_snap':
        args.append(str(check_int(origin_id, 'origin_id', 0, THIN_ID_MAX)))
    elif origin_id is not None:
        raise InvalidDmArgument(what='origin_id', value=origin_id,
                                reason='only create_snap takes one')
    utils.dmsetup('message', pool, pool, '0', *args)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def create_thin(name, pool, dev_id, origin_dev):
    """Create thin volume ``name`` (id ``dev_id`` of ``pool``).

    ``origin_dev`` is its external read-only origin (fastboot's cache
    device of the image): blocks the volume never wrote read from there,
    and nothing ever writes to it.
    """
    check_own_name(name)
    check_own_name(pool, 'pool', kind='pool')
    utils.check_own_device(origin_dev, 'origin_dev')
    table = thin_table('/dev/mapper/' + pool, dev_id, origin_dev,
                       device_sectors(origin_dev))
    return utils.create_device(name, table)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def remove_device(name):
    """Remove fastboot's device ``name``; fails while it is open."""
    utils.dmsetup('remove', check_own_name(name), '--retry', name)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def table(name):
    """``dmsetup table`` of ``name`` (devices shown as major:minor)."""
    return utils.dmsetup('table', check_own_name(name), name)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def status(name):
    """``dmsetup status`` of ``name``."""
    return utils.dmsetup('status', check_own_name(name), name)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def open_count(name):
    """How many openers device ``name`` has."""
    out = utils.dmsetup('info', check_own_name(name), '--columns',
                        '--noheadings', '--options', 'open', name)
    return int(out.strip())


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def list_devices():
    """Every device-mapper device: list of ``[name, major, minor]``."""
    out = utils.dmsetup('ls', None)
    devices = []
    for line in out.splitlines():
        m = re.match(r'^(\S+)\s+\((\d+)[:, ]\s*(\d+)\)$', line.strip())
        if m:
            devices.append([m.group(1), int(m.group(2)), int(m.group(3))])
    return sorted(devices)


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def wipe_header(name, length):
    """Zero the first ``length`` bytes of metadata slice ``name``.

    Used on a dm-cache metadata slice (``fb-<id>-cmeta-<image>``, nothing
    else) before it is (re)used, so the cache target formats fresh, empty
    metadata instead of trusting an old one.
    """
    path = '/dev/mapper/' + check_own_name(name, kind='cmeta')
    check_int(length, 'length', 512, MAX_WIPE)
    if not utils._is_block_device(path):
        raise InvalidDmArgument(what='name', value=name,
                                reason='no such device-mapper device')
    _write_zeros(path, length)


def _loaded_targets():
    out = utils.dmsetup('targets', None)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _module_on_disk(module):
    """Whether the running kernel has ``module`` built in or installed."""
    if os.path.isdir('/sys/module/' + module.replace('-', '_')):
        return True
    pattern = re.compile(r'/%s\.ko(\.[a-z]+)?$' % re.escape(module))
    for index in ('modules.builtin', 'modules.dep'):
        try:
            with open('/lib/modules/%s/%s' % (os.uname().release,
                                               index)) as f:
                if any(pattern.search(line.split(':', 1)[0].strip())
                       for line in f):
                    return True
        except OSError:
            continue
    return False


def _smq_available():
    # dm-cache loads its policies on demand; dmsetup targets does not
    # list them.
    return _module_on_disk('dm-cache-smq')


@fastboot_nova.privsep.sys_admin_pctxt.entrypoint
def ensure_targets(targets):
    """Load the modules of device-mapper ``targets``; return what is missing.

    :param targets: names from :data:`TARGET_MODULES`.
    :returns: sorted list of targets (``cache`` also stands for its smq
        policy) the kernel lacks: not loaded after ``modprobe`` and not
        installed either. ``modprobe`` needs CAP_SYS_MODULE, which the
        privsep daemon does not have; an installed module is loaded by the
        kernel itself when a table first uses its target.
    """
    if not isinstance(targets, (list, tuple)) or not targets or \
            any(not isinstance(t, str) or t not in TARGET_MODULES
                for t in targets):
        raise InvalidDmArgument(what='targets', value=targets,
                                reason='expected names among %s' %
                                ', '.join(sorted(TARGET_MODULES)))

    def missing():
        loaded = _loaded_targets()
        gone = {t for t in targets if t not in loaded}
        if 'cache' in targets and 'cache' not in gone and \
                not _smq_available():
            gone.add('cache')
        return gone

    gone = missing()
    if not gone:
        return []
    for module in sorted({m for t in gone for m in TARGET_MODULES[t]}):
        # A failure shows up as a target still missing below.
        run_tool([MODPROBE, '-q', module])
    return sorted(t for t in missing()
                  if not all(_module_on_disk(m) for m in TARGET_MODULES[t]))
