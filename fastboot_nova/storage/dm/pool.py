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

import contextlib
import logging
import os
import tempfile

from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.i18n import _
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.loop
from fastboot_nova.storage.dm import kernel

LOG = logging.getLogger(__name__)

SECTOR = kernel.SECTOR
#: The pool's name (``fb-<id>-pool-thin``) and lock.
POOL = 'thin'
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


def _extend(path, size):
    """Grow file ``path`` to ``size`` bytes, allocated."""
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        if os.fstat(fd).st_size < size:
            os.posix_fallocate(fd, 0, size)
            os.fsync(fd)
    finally:
        os.close(fd)


def _allocate_file(directory, path, size):
    """Write ``path`` as a fully allocated ``size``-byte file, 0600.

    Through an exclusive, unpredictable temporary name: a symlink
    planted in the directory is never followed.
    """
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=directory)
    try:
        # Allocated, not sparse: a full pool is then the pool's orderly
        # ENOSPC, never a file system write error. An unwritten extent
        # reads as zeros, so the new metadata is formatted by the kernel.
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


class ThinPool:
    """The one thin-pool of an engine: files, device, status, growth."""

    def __init__(self, state, dm, directory, opts, lock):
        """Keep the engine's parts this one works with.

        :param state: the engine's :class:`StateFile`.
        :param dm: the engine's :class:`kernel.DeviceNames`.
        :param directory: ``<state_path>/thin``, where the files live.
        :param opts: the ``[fastboot_dm]`` options.
        :param lock: ``lock(kind, name)``, the engine's lock factory.
        """
        self.state = state
        self.dm = dm
        self.directory = directory
        self.opts = opts
        self._lock = lock
        self.name = dm.name('pool', POOL)

    def lock(self):
        return self._lock('pool', POOL)

    def files(self):
        return (os.path.join(self.directory, 'pool.meta'),
                os.path.join(self.directory, 'pool.data'))

    def entry(self, st=None):
        """The pool's state entry, its files checked, or None.

        The files are derived from the state path: an entry naming other
        files is corruption, never extended or attached.
        """
        st = st or self.state.read()
        pool = st.get('dm', {}).get('pool')
        if pool is None:
            return None
        meta, data = self.files()
        if pool.get('meta') != meta or pool.get('data') != data:
            raise exception.StateError(
                path=self.state.path,
                reason='the thin-pool records files %s, %s where %s, %s '
                       'are expected; the state file was changed outside '
                       'fastboot, nothing was done' % (
                           str(pool.get('meta'))[:80],
                           str(pool.get('data'))[:80], meta, data))
        return pool

    def _make_files(self, block):
        """Allocate the pool's files in full; return the state entry."""
        meta, data = self.files()
        data_bytes = self.opts.thin_pool_size_mib << 20
        data_bytes -= data_bytes % (block * SECTOR)
        blocks = data_bytes // (block * SECTOR)
        meta_bytes = meta_bytes_for(blocks)
        for path, size in ((meta, meta_bytes), (data, data_bytes)):
            _allocate_file(self.directory, path, size)
        fileutils.fsync_dir(self.directory)
        return {'meta': meta, 'data': data, 'block_sectors': block,
                'data_bytes': data_bytes, 'meta_bytes': meta_bytes}

    def ensure(self):
        """Activate the pool, making it on first use; return its name."""
        if self.name in self.dm.live():
            return self.name
        with self.lock():
            return self.ensure_locked()

    def ensure_locked(self):
        """:meth:`ensure`, for a caller that holds :meth:`lock`."""
        if self.name in self.dm.live():
            return self.name
        pool = self.entry()
        if pool is None:
            self.dm.check_targets('thin')
            pool = self._make_files(self.opts.thin_block_sectors)
            with self.state.update() as st:
                st.setdefault('dm', {})['pool'] = pool
                st['dm'].setdefault('next_thin_id', 0)
        for path in (pool['meta'], pool['data']):
            if not os.path.isfile(path):
                raise exception.StateError(
                    path=path, reason='the thin-pool file is missing')
        loops = [self.dm.loop_of(pool['meta']), self.dm.loop_of(pool['data'])]
        blocks = pool['data_bytes'] // (pool['block_sectors'] * SECTOR)
        try:
            fastboot_nova.privsep.dm.create_thin_pool(
                self.name, loops[0], loops[1], pool['block_sectors'],
                low_water_blocks(blocks))
        except BaseException:
            for dev in loops:
                kernel.best_effort(fastboot_nova.privsep.loop.detach, dev)
            raise
        return self.name

    def next_id(self, st):
        """Take the next thin device number (in a state update)."""
        dev_id = st['dm'].get('next_thin_id', 0)
        st['dm']['next_thin_id'] = dev_id + 1
        return dev_id

    def message(self, *words):
        fastboot_nova.privsep.dm.thin_message(self.ensure(), *words)

    def deactivate(self, live=None):
        """Remove the pool device; its files (and every VM) stay."""
        self.dm.remove_if_present(self.name, live)
        for path in self.files():
            self.dm.detach_file(path)

    def idle(self, in_use):
        """Deactivate the pool unless ``in_use()`` (asked under the lock)."""
        with self.lock():
            if not in_use():
                self.deactivate()

    def status(self):
        """Size and use of the pool, or None before its first VM.

        ``low_space`` is true once free data blocks fall under the
        low-water mark: grow the pool (``fastboot pool grow``) before VMs
        see ENOSPC.
        """
        pool = self.entry()
        if pool is None:
            return None
        block_bytes = pool['block_sectors'] * SECTOR
        result = {'data_bytes': pool['data_bytes'],
                  'meta_bytes': pool['meta_bytes'],
                  'block_bytes': block_bytes,
                  'files': [pool['meta'], pool['data']],
                  'active': False, 'used_bytes': None,
                  'used_meta_bytes': None, 'mode': None, 'low_space': None}
        if self.name not in self.dm.live():
            return result
        parsed = parse_status(
            fastboot_nova.privsep.dm.status(self.name)) or {}
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

    def warn_if_low(self, where):
        with contextlib.suppress(exception.FastbootException):
            st = self.status()
            if st and st['low_space']:
                LOG.warning('The thin-pool of %s is low on space (%d of %d '
                            'MiB used, mode %s): VM writes fail with ENOSPC '
                            'when it is full; grow it with "fastboot pool '
                            'grow"', where, (st['used_bytes'] or 0) >> 20,
                            st['data_bytes'] >> 20, st['mode'])

    def grow(self, size_mib):
        """Grow the pool to ``size_mib`` MiB of data; return status.

        :raises PoolError: no pool yet, not larger than now, or not enough
            free space for the files.
        """
        if isinstance(size_mib, bool) or not isinstance(size_mib, int) or \
                size_mib <= 0:
            raise PoolError(reason='expected a size in MiB, got %r' %
                            (size_mib,))
        with self.lock():
            pool = self.entry()
            if pool is None:
                raise PoolError(reason='there is no pool yet: it is made '
                                       'with the first VM, at [fastboot_dm] '
                                       'thin_pool_size_mib')
            block_bytes = pool['block_sectors'] * SECTOR
            data_bytes = (size_mib * MiB) // block_bytes * block_bytes
            if data_bytes <= pool['data_bytes']:
                raise PoolError(reason='it holds %d MiB already; it can '
                                       'only grow' % (pool['data_bytes'] //
                                                      MiB))
            blocks = data_bytes // block_bytes
            meta_bytes = max(pool['meta_bytes'], meta_bytes_for(blocks))
            self._check_space(pool, data_bytes, meta_bytes)
            _extend(pool['meta'], meta_bytes)
            _extend(pool['data'], data_bytes)
            if self.name in self.dm.live():
                self._reload(pool, blocks)
            with self.state.update() as st:
                st['dm']['pool'].update(data_bytes=data_bytes,
                                        meta_bytes=meta_bytes)
        return self.status()

    @staticmethod
    def _check_space(pool, data_bytes, meta_bytes):
        need = (data_bytes - pool['data_bytes'] +
                meta_bytes - pool['meta_bytes'])
        directory = os.path.dirname(pool['data'])
        fs = os.statvfs(directory)
        free = fs.f_bavail * fs.f_frsize
        if need > free:
            raise PoolError(reason='%d MiB more are needed in %s, %d MiB '
                                   'are free' % (need // MiB, directory,
                                                 free // MiB))

    def _reload(self, pool, blocks):
        loops = []
        for path in (pool['meta'], pool['data']):
            devs = self.dm.loops_of(path)
            if len(devs) != 1:
                raise PoolError(reason='%s is attached to %s, expected '
                                       'one loop device' % (path, devs))
            fastboot_nova.privsep.loop.set_capacity(devs[0])
            loops.append(devs[0])
        fastboot_nova.privsep.dm.grow_thin_pool(
            self.name, loops[0], loops[1], pool['block_sectors'],
            low_water_blocks(blocks))
