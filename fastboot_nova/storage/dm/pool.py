"""The dm backend's thin-pool: its status, low-space warning and growth.

One thin-pool per engine holds every VM's writes (``snapshot_type =
thin``). It lives in two fully allocated files under
``<state_path>/thin``, attached with losetup, and is created with the first
VM at ``[fastboot_dm] thin_pool_size_mib``. A full pool fails VM writes
with ENOSPC and keeps all data; growing it makes them work again:

1. extend ``pool.data`` (and ``pool.meta`` in proportion) with
   ``posix_fallocate``, so the new space is really there;
2. ``losetup --set-capacity`` on their loop devices;
3. reload the pool's table with the new length and resume it: the pool
   is suspended only for the table swap, and the kernel also picks up the
   larger metadata device.

The new sizes are recorded last. A crash in between leaves files larger
than recorded, which is harmless: the pool is activated over the whole
file, and growing again records the sizes.
"""

import os

from fastboot_nova import exception
from fastboot_nova.i18n import _
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.loop

SECTOR = 512
MiB = 1 << 20
#: Metadata blocks of a thin-pool, as ``dmsetup status`` counts them.
META_BLOCK = 4096
#: A pool is low on space below this share of free data blocks; its
#: kernel low-water mark is the same.
LOW_WATER_SHARE = 10


class PoolError(exception.FastbootException):
    message = _("Cannot grow the thin-pool: %(reason)s")


def meta_bytes_for(data_blocks):
    """Metadata bytes for a pool of ``data_blocks`` data blocks.

    thin_metadata_size's estimate, doubled, at least 8 MiB, in whole MiB.
    """
    size = max(8 * MiB, 2 * 64 * data_blocks + 4 * MiB)
    return (size + MiB - 1) // MiB * MiB


def low_water_blocks(data_blocks):
    return data_blocks // LOW_WATER_SHARE


def parse_status(text):
    """The fields of a thin-pool ``dmsetup status`` line, or None."""
    f = text.split()
    if len(f) < 8 or f[2] != 'thin-pool':
        return None
    if f[3] == 'Fail':
        return {'mode': 'fail'}
    meta_used, meta_total = (int(x) for x in f[4].split('/'))
    data_used, data_total = (int(x) for x in f[5].split('/'))
    return {'meta_used_blocks': meta_used, 'meta_total_blocks': meta_total,
            'data_used_blocks': data_used, 'data_total_blocks': data_total,
            # rw, ro (metadata trouble) or out_of_data_space.
            'mode': f[7]}


def status(engine):
    """Size and use of ``engine``'s pool, or None before its first VM.

    ``low_space`` is true once free data blocks fall under the low-water
    mark: grow the pool (``fastboot pool grow``) before VMs see ENOSPC.
    """
    pool = engine.checked_pool()
    if pool is None:
        return None
    block_bytes = pool['block_sectors'] * SECTOR
    result = {'data_bytes': pool['data_bytes'],
              'meta_bytes': pool['meta_bytes'],
              'block_bytes': block_bytes, 'files': [pool['meta'],
                                                    pool['data']],
              'active': False, 'used_bytes': None, 'used_meta_bytes': None,
              'mode': None, 'low_space': None}
    name = engine.dm_name('pool', 'thin')
    if name not in engine._live():
        return result
    parsed = parse_status(fastboot_nova.privsep.dm.status(name)) or {}
    result.update(active=True, mode=parsed.get('mode'))
    if 'data_total_blocks' in parsed:
        total = parsed['data_total_blocks']
        used = parsed['data_used_blocks']
        result.update(
            used_bytes=used * block_bytes,
            used_meta_bytes=parsed['meta_used_blocks'] * META_BLOCK,
            low_space=(total - used) < low_water_blocks(total) or
            parsed['mode'] != 'rw')
    return result


def _extend(path, size):
    """Grow file ``path`` to ``size`` bytes, allocated."""
    fd = os.open(path, os.O_WRONLY)
    try:
        if os.fstat(fd).st_size < size:
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
    finally:
        os.close(fd)


def grow(engine, size_mib):
    """Grow ``engine``'s pool to ``size_mib`` MiB of data; return status.

    :raises PoolError: no pool yet, not larger than now, or not enough
        free space for the files.
    """
    if isinstance(size_mib, bool) or not isinstance(size_mib, int) or \
            size_mib <= 0:
        raise PoolError(reason='expected a size in MiB, got %r' %
                        (size_mib,))
    with engine._lock('pool', 'thin'):
        pool = engine.checked_pool()
        if pool is None:
            raise PoolError(reason='there is no pool yet: it is made with '
                                   'the first VM, at [fastboot_dm] '
                                   'thin_pool_size_mib')
        block_bytes = pool['block_sectors'] * SECTOR
        data_bytes = (size_mib * MiB) // block_bytes * block_bytes
        if data_bytes <= pool['data_bytes']:
            raise PoolError(reason='it holds %d MiB already; it can only '
                                   'grow' % (pool['data_bytes'] // MiB))
        blocks = data_bytes // block_bytes
        meta_bytes = max(pool['meta_bytes'], meta_bytes_for(blocks))
        need = (data_bytes - pool['data_bytes'] +
                meta_bytes - pool['meta_bytes'])
        fs = os.statvfs(os.path.dirname(pool['data']))
        free = fs.f_bavail * fs.f_frsize
        if need > free:
            raise PoolError(reason='%d MiB more are needed in %s, %d MiB '
                                   'are free' % (need // MiB,
                                                 os.path.dirname(
                                                     pool['data']),
                                                 free // MiB))
        _extend(pool['meta'], meta_bytes)
        _extend(pool['data'], data_bytes)
        name = engine.dm_name('pool', 'thin')
        if name in engine._live():
            loops = []
            for path in (pool['meta'], pool['data']):
                devs = engine._loops_of(path)
                if len(devs) != 1:
                    raise PoolError(reason='%s is attached to %s, expected '
                                           'one loop device' % (path, devs))
                fastboot_nova.privsep.loop.set_capacity(devs[0])
                loops.append(devs[0])
            fastboot_nova.privsep.dm.grow_thin_pool(
                name, loops[0], loops[1], pool['block_sectors'],
                low_water_blocks(blocks))
        with engine.state.update() as st:
            st['dm']['pool'].update(data_bytes=data_bytes,
                                    meta_bytes=meta_bytes)
    return status(engine)
