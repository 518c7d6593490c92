"""``fastboot demo``: a boot storm on one machine, end to end.

1. build (once, then reuse) a tiny guest from Debian packages;
2. serve its disk image read-only over NBD as the origin "array";
3. start a block engine with embedded defaults and give every VM a private
   snapshot over the host cache of that origin;
4. boot all guests at once under QEMU; each reads a known payload from its
   disk and prints its checksum;
5. report boot times, checksums and the bytes the origin had to read,
   then tear everything down.
"""

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time

from fastboot_nova.demo import guest as guest_mod
from fastboot_nova.demo import notice
from fastboot_nova.demo import origin as origin_mod
from fastboot_nova.demo import vm as vm_mod
from fastboot_nova import exception
from fastboot_nova import storage

LOG = logging.getLogger(__name__)

IMAGE_NAME = 'demo-image'
MAX_VMS = 64
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser('~'), '.cache',
                                 'fastboot')


def run_demo(conf, vms=8, report=None, cache_dir=None, keep=False,
             progress=None, state_path=None, timeout=vm_mod.DEFAULT_TIMEOUT):
    """Run the demo; return the report as a dict.

    :param report: path of a JSON file to write the report to.
    :param state_path: work directory (a short temporary one by default).
    :param keep: leave the engine, disks and logs in place for inspection.
    """
    if not 1 <= vms <= MAX_VMS:
        raise exception.FastbootException(
            'the demo boots 1 to %d VMs, not %s' % (MAX_VMS, vms))
    if report is not None:
        report_dir = os.path.dirname(os.path.abspath(report))
        if not os.path.isdir(report_dir):
            raise exception.InvalidDestination(
                destination=report, reason='its directory does not exist')
    cache_dir = cache_dir or DEFAULT_CACHE_DIR
    os.makedirs(cache_dir, exist_ok=True)
    guest = guest_mod.build_guest(cache_dir, progress=progress)

    own_workdir = state_path is None
    workdir = state_path or tempfile.mkdtemp(prefix='fb-demo-', dir='/tmp')
    os.makedirs(workdir, exist_ok=True)
    with contextlib.ExitStack() as cleanup:
        if own_workdir and not keep:
            cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        result = _storm(conf, guest, vms, workdir, keep, progress, timeout,
                        cleanup)
    if report is not None:
        with open(report, 'w', encoding='utf-8') as f:
            json.dump(result, f, indent=2)
    return result


def _storm(conf, guest, vms, workdir, keep, progress, timeout, cleanup):
    origin_dir = os.path.join(workdir, 'origin')
    os.makedirs(origin_dir, exist_ok=True)
    origin = origin_mod.OriginServer(guest.image, export='demo',
                                     run_dir=origin_dir)
    origin.start()
    cleanup.callback(origin.stop)
    notice.notify(progress, 'origin %s exported at %s', guest.image,
                  origin.url)

    engine = storage.get_engine(conf,
                                state_path=os.path.join(workdir, 'host'))
    names = ['vm%02d' % i for i in range(1, vms + 1)]
    if not keep:
        cleanup.callback(engine.shutdown)
        cleanup.callback(_remove_all, engine, names)

    started = time.monotonic()
    disks = {}
    for name in names:
        disks[name] = engine.create(name, IMAGE_NAME, origin.url)
    create_seconds = time.monotonic() - started
    notice.notify(progress, 'created %d VM snapshots in %.2fs', vms,
                  create_seconds)

    log_dir = os.path.join(workdir, 'logs')
    os.makedirs(log_dir, exist_ok=True)
    notice.notify(progress, 'booting %d guests at once (%s)', vms,
                  vm_mod.choose_accel(guest))
    results = vm_mod.boot_many(
        guest, [(name, disks[name].path,
                 os.path.join(log_dir, name + '.log')) for name in names],
        timeout=timeout)
    storm_seconds = time.monotonic() - started
    origin_bytes = origin.bytes_read()
    written = {d.name: d.written_bytes for d in engine.list()}
    for r in results:
        if not r.ok:
            notice.notify(progress, '%s failed: %s (console log %s)', r.name,
                          r.error, r.console_log)

    return {
        'vms': [{'name': r.name,
                 'boot_seconds': (round(r.boot_seconds, 3)
                                  if r.boot_seconds is not None else None),
                 'ok': r.ok,
                 'checksum_ok': r.checksum_ok,
                 'error': r.error,
                 'written_bytes': written.get(r.name, 0)}
                for r in results],
        'origin_bytes_read': origin_bytes,
        'image_bytes': guest.image_size,
        'cache_cluster_size': conf.fastboot_qemu.cache_cluster_size,
        'accel': results[0].accel if results else None,
        'create_seconds': round(create_seconds, 3),
        'storm_seconds': round(storm_seconds, 3),
        'work_dir': workdir if keep else None,
    }


def _remove_all(engine, names):
    for name in names:
        with contextlib.suppress(exception.VmNotFound):
            engine.destroy(name)
    with contextlib.suppress(exception.ImageNotFound):
        engine.remove_image(IMAGE_NAME)
