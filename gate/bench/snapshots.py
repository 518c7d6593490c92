"""Parts 2 and 3: how long a per-VM snapshot takes to create.

A fresh engine (its own state path, so its own qemu-storage-daemon) is
given one VM first: that create is cold, it starts the daemon and adds the
image to the cache group (part 3). Then, on the now cached image, M more
VMs are created one at a time and each ``engine.create()`` is timed; right
after each, a bare ``qemu-img create -f qcow2 -b <image file> -F raw``
overlay is timed too, as the baseline (part 2). Interleaving the two
exposes both to the same machine noise. The difference is what the engine
adds to the one ``qemu-img create`` it runs itself: state file updates,
locks, the daemon and export checks.

Every VM and overlay is removed afterwards, and the daemon stopped.
"""

import contextlib
import logging
import os
import time

from fastboot_nova import executor
from fastboot_nova import storage
from gate.bench import storm

LOG = logging.getLogger(__name__)


def bare_overlay_argv(backing, dest, qemu_img='qemu-img'):
    """The baseline: a plain qcow2 overlay over the local image file."""
    return [qemu_img, 'create', '-q', '-f', 'qcow2', '-b', backing,
            '-F', 'raw', dest]


def _timed(fn, *args):
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


def run(conf, origin, image_path, workdir, count,
        execute=executor.execute, qemu_img='qemu-img'):
    """Time a cold create, then ``count`` engine creates and bare overlays.

    :param origin: a started OriginServer; the engine caches its export.
    :param image_path: the local image file the bare overlays back onto.
    :param workdir: a short private directory (it holds unix sockets).
    :returns: dict with ``cold_create_seconds`` and the lists
        ``engine_seconds`` and ``bare_seconds``.
    """
    engine = storage.get_engine(conf,
                                state_path=os.path.join(workdir, 'snap'))
    bare_dir = os.path.join(workdir, 'bare')
    os.makedirs(bare_dir, exist_ok=True)
    cold_vm = 'cold'
    names = storm.vm_names(count, prefix='snap')
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(storm.quietly, engine.shutdown)
        cleanup.callback(storm.quietly, storm.remove_all, engine,
                         [cold_vm] + names, storm.IMAGE_NAME)

        cold = _timed(engine.create, cold_vm, storm.IMAGE_NAME, origin.url)
        LOG.info('snapshots: first (cold) create took %.3fs', cold)

        engine_seconds = []
        bare_seconds = []
        for name in names:
            engine_seconds.append(_timed(engine.create, name,
                                         storm.IMAGE_NAME, origin.url))
            dest = os.path.join(bare_dir, name + '.qcow2')
            bare_seconds.append(_timed(
                execute, *bare_overlay_argv(image_path, dest, qemu_img)))
            # Deleting is not timed, and the engine's disks stay until the
            # end too: both sides create into a directory of the same size.
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(bare_dir, name + '.qcow2'))
    LOG.info('snapshots: %d engine creates in %.2fs, %d bare overlays in '
             '%.2fs', count, sum(engine_seconds), count, sum(bare_seconds))
    return {'cold_create_seconds': cold,
            'engine_seconds': engine_seconds,
            'bare_seconds': bare_seconds}
