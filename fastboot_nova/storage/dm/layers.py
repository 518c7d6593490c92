"""The per-VM copy-on-write layer of the dm backend: one class per type.

As nova's libvirt imagebackend has one class per disk type and a lookup
table, each VM here has a layer type recorded in its state entry
(``type``; VMs recorded before thin volumes existed are snapshots), and
:func:`of` returns its :class:`Layer`. The engine never branches on the
type.

``thin`` (the default, ``[fastboot_dm] snapshot_type``)::

    <state_path>/thin/pool.meta, pool.data   files, attached with losetup
    fb-<id>-pool-thin             one thin-pool per engine (error_if_no_space)
    fb-<id>-vm-<vm>               thin volume <thin_id> of the pool, the
                                  image's cache as its external origin

``snapshot``::

    <state_path>/cow/<vm>.cow     sparse file, attached with losetup
    fb-<id>-vm-<vm>               persistent dm-snapshot of the cache

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
"""

import contextlib
import os

from fastboot_nova import exception
from fastboot_nova import fileutils
import fastboot_nova.privsep.dm
import fastboot_nova.privsep.loop
from fastboot_nova.storage.dm import kernel


class Layer:
    """One layer type; the engine's parts it uses are given at creation."""

    #: The ``type`` recorded in the VM's state entry.
    type = None
    #: Whether the layer lives in the engine's thin-pool.
    uses_pool = False

    def __init__(self, dm, cow_dir, pool, opts):
        """Keep the engine's parts this one works with.

        :param dm: the engine's :class:`kernel.DeviceNames`.
        :param cow_dir: ``<state_path>/cow``.
        :param pool: the engine's :class:`pool.ThinPool`.
        :param opts: the ``[fastboot_dm]`` options.
        """
        self.dm = dm
        self.cow_dir = cow_dir
        self.pool = pool
        self.opts = opts

    def device(self, vm):
        return self.dm.name('vm', vm)

    def origin(self, image):
        """The device a VM's layer reads unwritten blocks from."""
        return self.dm.path(self.dm.name('cache', image))

    def paths(self, vm):
        """``{state key: path}`` derived from the VM's name."""
        return {'path': self.dm.path(self.device(vm))}

    def invalid(self, entry):
        """Why a recorded entry cannot be this layer's, or None."""
        return None

    def locks(self):
        """``(kind, name)`` locks held while a new VM is recorded."""
        return ()

    def new_entry(self, vm, image, image_entry, source):
        """The state entry of a new VM (under the image lock)."""
        raise NotImplementedError

    def build(self, vm, entry, image_entry, source):
        """Make the VM's layer and activate its device."""
        raise NotImplementedError

    def undo(self, vm, entry):
        """Remove what :meth:`build` made; best effort, never raises."""
        raise NotImplementedError

    def activate(self, vm, entry):
        raise NotImplementedError

    def deactivate(self, vm, entry, live):
        self.dm.remove_if_present(self.device(vm), live)

    def delete(self, vm, entry):
        """Delete the VM's data; its device is already removed."""
        raise NotImplementedError

    def written_bytes(self, vm, entry):
        raise NotImplementedError

    @contextlib.contextmanager
    def clone_source(self, vm, entry):
        """Yield the ``source`` of a copy of the (closed) VM's layer."""
        raise NotImplementedError
        yield  # pragma: no cover

    def finished(self, vm, entry, live):
        """Whether an interrupted create had built everything."""
        return self.device(vm) in live

    def data_missing(self, vm, entry):
        """Whether a ready VM's data is gone (it cannot be restored)."""
        return False


class ThinLayer(Layer):
    """A thin volume of the engine's pool, the cache as external origin."""

    type = 'thin'
    uses_pool = True

    def invalid(self, entry):
        dev_id = entry.get('thin_id')
        if isinstance(dev_id, bool) or not isinstance(dev_id, int) or \
                dev_id < 0:
            return 'its thin_id is not a device number'
        return None

    def locks(self):
        # Recorded under the pool lock: an idle check then sees the VM.
        return (('pool', 'thin'),)

    def new_entry(self, vm, image, image_entry, source):
        self.pool.ensure_locked()
        with self.pool.state.update() as st:
            dev_id = self.pool.next_id(st)
        entry = {'image': image, 'type': self.type, 'thin_id': dev_id}
        entry.update(self.paths(vm))
        return entry

    def build(self, vm, entry, image_entry, source):
        if source is None:
            self.pool.message('create_thin', entry['thin_id'])
        else:
            self.pool.message('create_snap', entry['thin_id'], source)
        self.activate(vm, entry)

    def undo(self, vm, entry):
        kernel.best_effort(self.dm.remove_if_present, self.device(vm))
        kernel.best_effort(self.pool.message, 'delete', entry['thin_id'])

    def activate(self, vm, entry):
        fastboot_nova.privsep.dm.create_thin(
            self.device(vm), self.pool.ensure(), entry['thin_id'],
            self.origin(entry['image']))

    def delete(self, vm, entry):
        self.pool.message('delete', entry['thin_id'])

    def written_bytes(self, vm, entry):
        with contextlib.suppress(exception.FastbootException, IndexError,
                                 ValueError):
            # thin status: <mapped sectors> <highest mapped sector>
            return int(fastboot_nova.privsep.dm.status(
                self.device(vm)).split()[3]) * kernel.SECTOR
        return 0

    @contextlib.contextmanager
    def clone_source(self, vm, entry):
        # create_snap needs its origin volume quiet: the source is not
        # open, so remove its device meanwhile.
        self.dm.remove_if_present(self.device(vm))
        try:
            yield entry['thin_id']
        finally:
            self.activate(vm, entry)


class SnapshotLayer(Layer):
    """A persistent dm-snapshot of the cache, its COW store a file."""

    type = 'snapshot'

    def cow(self, vm):
        return os.path.join(self.cow_dir, vm + '.cow')

    def paths(self, vm):
        return dict(super().paths(vm), cow=self.cow(vm))

    def new_entry(self, vm, image, image_entry, source):
        entry = {'image': image,
                 'chunk_sectors': self.opts.snapshot_chunk_sectors}
        entry.update(self.paths(vm))
        return entry

    def build(self, vm, entry, image_entry, source):
        cow = self.cow(vm)
        tmp = os.path.join(self.cow_dir, '.%s.cow.tmp' % vm)
        # Mode 0600 before any data is in it (fills keep the mode); a
        # symlink planted at the name is removed, not followed.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        fileutils.create_private(tmp)
        if source is None:
            with open(tmp, 'wb') as f:
                f.truncate(kernel.cow_bytes(
                    image_entry['virtual_size'] // kernel.SECTOR,
                    entry['chunk_sectors']))
                os.fsync(f.fileno())
        else:
            # A persistent COW store is self-contained (its exceptions
            # name origin chunks), and a closed snapshot has committed
            # all of it: a copy is a valid disk over the same cache.
            kernel.sparse_copy(source, tmp)
        os.rename(tmp, cow)
        # The VM's data will live in this file: its name must survive a
        # power loss like the state file does.
        fileutils.fsync_dir(self.cow_dir)
        self.activate(vm, entry)

    def undo(self, vm, entry):
        kernel.best_effort(self.deactivate, vm, entry, self.dm.live())
        for leftover in (os.path.join(self.cow_dir, '.%s.cow.tmp' % vm),
                         self.cow(vm)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(leftover)

    def activate(self, vm, entry):
        loop = fastboot_nova.privsep.loop.attach(self.cow(vm))
        try:
            fastboot_nova.privsep.dm.create_snapshot(
                self.device(vm), self.origin(entry['image']), loop,
                entry['chunk_sectors'])
        except BaseException:
            kernel.best_effort(fastboot_nova.privsep.loop.detach, loop)
            raise

    def deactivate(self, vm, entry, live):
        super().deactivate(vm, entry, live)
        self.dm.detach_file(self.cow(vm))

    def delete(self, vm, entry):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.cow(vm))

    def written_bytes(self, vm, entry):
        try:
            return os.stat(self.cow(vm)).st_blocks * kernel.SECTOR
        except OSError:
            return 0

    @contextlib.contextmanager
    def clone_source(self, vm, entry):
        yield self.cow(vm)

    def finished(self, vm, entry, live):
        return super().finished(vm, entry, live) and \
            os.path.exists(self.cow(vm))

    def data_missing(self, vm, entry):
        return not os.path.exists(self.cow(vm))


#: Layer classes by the ``type`` of a VM's state entry.
TYPES = {cls.type: cls for cls in (ThinLayer, SnapshotLayer)}


def type_of(entry):
    # VMs recorded before thin volumes existed are snapshots.
    return entry.get('type', 'snapshot')
