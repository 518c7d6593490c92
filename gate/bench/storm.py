"""Part 1: what a boot storm of N VMs costs the origin, fastboot vs copies.

The origin is an :class:`~fastboot_nova.demo.origin.OriginServer`: it
serves the demo guest image over NBD and counts the bytes its daemon
reads (``rchar`` of its process), which is the load the storm puts on a
real storage array.

fastboot
    One engine (one host cache group) gives each of the N VMs a private
    qcow2 overlay over the cache of the origin, then all N guests boot at
    once under QEMU and read their payload. Measured: the origin bytes
    for the whole storm, the wall time of the N ``engine.create`` calls
    (the first one cold: it starts the daemon), and the local disk the
    cache and the overlays use afterwards. The creates copy no data: the
    guests fetch what they read during their boots, so that cost is in
    the boot times, not in the provisioning time.

full copy (the baseline)
    What Nova's image cache or a Cinder clone does: every VM gets its own
    copy of the image, here ``qemu-img convert -f raw -O raw`` from the
    origin's NBD export to a local file, one VM after the other, each copy
    deleted once measured to spare the disk. Measured: the same three
    figures. ``qemu-img convert`` asks NBD which areas are holes and does
    not read them, so this baseline is cheaper than a byte-for-byte copy
    (a Glance download or a ``dd`` clone): the ratio flatters the
    baseline, not fastboot.
"""

import contextlib
import logging
import os
import time

from fastboot_nova.demo import vm as vm_mod
from fastboot_nova import exception
from fastboot_nova import executor
from fastboot_nova import storage

LOG = logging.getLogger(__name__)

IMAGE_NAME = 'bench-image'
_LOG_TAIL = 600


def allocated_bytes(path):
    """Bytes ``path`` occupies on disk (holes not counted)."""
    return os.stat(path).st_blocks * 512


def vm_names(count, prefix='vm'):
    """``['vm01', 'vm02', ...]``, zero-padded to sort in order."""
    width = max(2, len(str(count)))
    return ['%s%0*d' % (prefix, width, i) for i in range(1, count + 1)]


def quietly(fn, *args):
    """Call ``fn(*args)`` for cleanup: log a failure, never raise it.

    One failed step then neither stops the others nor hides the error
    that started the cleanup.
    """
    try:
        fn(*args)
    except Exception:
        LOG.exception('Cleanup step %s%r failed', getattr(fn, '__name__', fn),
                      args)


def remove_all(engine, vms, image):
    """Destroy ``vms`` and drop ``image`` from ``engine``'s cache group."""
    for vm in vms:
        try:
            engine.destroy(vm)
        except exception.VmNotFound:
            pass
        except Exception:
            LOG.exception('Could not destroy VM %s', vm)
    with contextlib.suppress(exception.ImageNotFound):
        engine.remove_image(image)


def _console_tail(path):
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - _LOG_TAIL))
            return f.read().decode('utf-8', 'replace')
    except OSError:
        return ''


def run_fastboot(conf, guest, origin, workdir, vms,
                 timeout=vm_mod.DEFAULT_TIMEOUT):
    """Create ``vms`` VM disks through the engine and boot them all.

    :param origin: a started OriginServer serving ``guest.image``.
    :param workdir: a short private directory (it holds unix sockets).
    :returns: dict of the figures, see the module docstring.
    """
    names = vm_names(vms)
    engine = storage.get_engine(conf,
                                state_path=os.path.join(workdir, 'host'))
    log_dir = os.path.join(workdir, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(quietly, engine.shutdown)
        cleanup.callback(quietly, remove_all, engine, names, IMAGE_NAME)
        origin.reset_counter()

        disks = []
        create_seconds = []
        for name in names:
            started = time.perf_counter()
            disks.append(engine.create(name, IMAGE_NAME, origin.url))
            create_seconds.append(time.perf_counter() - started)
        LOG.info('fastboot: created %d VM disks in %.2fs', vms,
                 sum(create_seconds))

        accel = vm_mod.choose_accel(guest)
        LOG.info('fastboot: booting %d guests at once (%s)', vms, accel)
        boot_started = time.perf_counter()
        results = vm_mod.boot_many(
            guest, [(d.name, d.path, os.path.join(log_dir, d.name + '.log'))
                    for d in disks], timeout=timeout, accel=accel)
        storm_seconds = time.perf_counter() - boot_started
        origin_bytes = origin.bytes_read()

        failures = []
        for r in results:
            if not (r.ok and r.checksum_ok):
                failures.append('%s: %s' % (r.name, r.error))
                LOG.error('VM %s failed: %s; console ends with:\n%s',
                          r.name, r.error, _console_tail(r.console_log))
        images = engine.list_images()
        local_disk = sum(i.cached_bytes for i in images) + sum(
            d.written_bytes for d in engine.list())
        LOG.info('fastboot: %d/%d guests ok in %.1fs, origin read %d bytes',
                 sum(r.ok for r in results), vms, storm_seconds,
                 origin_bytes)
    return {
        'origin_bytes': origin_bytes,
        'create_seconds': sum(create_seconds),
        'first_create_seconds': create_seconds[0],
        'storm_seconds': storm_seconds,
        'local_disk_bytes': local_disk,
        'boots_total': len(results),
        'boots_ok': sum(r.ok for r in results),
        'checksums_ok': sum(r.checksum_ok for r in results),
        'boot_seconds': [r.boot_seconds for r in results],
        'accel': accel,
        'failures': failures,
    }


def copy_argv(source_url, dest, qemu_img='qemu-img'):
    """The ``qemu-img convert`` command making one full copy."""
    return [qemu_img, 'convert', '-f', 'raw', '-O', 'raw', source_url, dest]


def run_full_copies(origin, workdir, vms, execute=executor.execute,
                    qemu_img='qemu-img'):
    """Make ``vms`` full copies of the origin, one after the other.

    Each copy is deleted as soon as its size is recorded, so the run
    needs the disk space of one copy only.

    :returns: dict with ``origin_bytes``, ``seconds`` (all copies) and
        ``local_disk_bytes`` (what the copies would occupy together).
    """
    copy_dir = os.path.join(workdir, 'copies')
    os.makedirs(copy_dir, exist_ok=True)
    origin.reset_counter()
    seconds = 0.0
    local_disk = 0
    for name in vm_names(vms):
        dest = os.path.join(copy_dir, name + '.raw')
        try:
            started = time.perf_counter()
            execute(*copy_argv(origin.url, dest, qemu_img))
            seconds += time.perf_counter() - started
            local_disk += allocated_bytes(dest)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
    origin_bytes = origin.bytes_read()
    LOG.info('full copy: %d copies in %.2fs, origin read %d bytes', vms,
             seconds, origin_bytes)
    return {'origin_bytes': origin_bytes, 'seconds': seconds,
            'local_disk_bytes': local_disk}
