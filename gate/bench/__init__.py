"""The fastboot benchmark: ``python -m gate.bench``.

One run measures, on this machine and against baselines measured in the
same run (figures are printed as ratios, never compared with numbers
written down elsewhere):

1. the bytes the origin serves when N VMs boot from one image, fastboot
   (one host cache, per-VM overlays, real guests booted under QEMU) vs N
   full copies (:mod:`gate.bench.storm`);
2. the time of one per-VM snapshot create, ``engine.create()`` vs a bare
   ``qemu-img create`` overlay, M times each
   (:mod:`gate.bench.snapshots`);
3. the first, cold create of an image vs the later ones (same module).

The image is the demo guest (:func:`fastboot_nova.demo.guest.build_guest`),
served by an :class:`~fastboot_nova.demo.origin.OriginServer`. Everything
the run starts (daemons, guests, files in a private temporary directory)
is stopped and removed when it ends, also on an error or Ctrl-C.
"""

import contextlib
import logging
import os
import shutil
import tempfile
import time

from fastboot_nova.demo import guest as guest_mod
from fastboot_nova.demo import origin as origin_mod
from gate.bench import report
from gate.bench import snapshots as snapshots_mod
from gate.bench import storm

LOG = logging.getLogger(__name__)

DEFAULT_VMS = 8
DEFAULT_SNAPSHOTS = 50
QUICK_VMS = 4
QUICK_SNAPSHOTS = 20
MAX_VMS = 64
MAX_SNAPSHOTS = 1000
CACHE_ENV = 'FASTBOOT_TEST_CACHE'


def default_cache_dir(environ=os.environ):
    """Where the demo guest is built and kept.

    ``$FASTBOOT_TEST_CACHE``, else ``~/.cache/fastboot`` (the default of
    ``fastboot demo``).
    """
    return environ.get(CACHE_ENV) or os.path.join(
        os.path.expanduser('~'), '.cache', 'fastboot')


def run_bench(conf, vms=DEFAULT_VMS, snapshots=DEFAULT_SNAPSHOTS,
              cache_dir=None, quick=False):
    """Run every measurement once.

    :returns: the dict of :func:`gate.bench.report.build_result`.
    """
    phases = {}
    started = time.perf_counter()
    guest = guest_mod.build_guest(
        os.path.expanduser(cache_dir or default_cache_dir()))
    phases['guest'] = time.perf_counter() - started
    params = {
        'vms': vms,
        'snapshots': snapshots,
        'quick': quick,
        'image_bytes': guest.image_size,
        'image_allocated_bytes': storm.allocated_bytes(guest.image),
        'cluster_size': conf.fastboot_qemu.cache_cluster_size,
        'guest': guest.directory,
    }
    with contextlib.ExitStack() as cleanup:
        # Short, under /tmp: engines keep unix sockets in their state path.
        workdir = tempfile.mkdtemp(prefix='fb-bench-', dir='/tmp')
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        origin_dir = os.path.join(workdir, 'origin')
        os.mkdir(origin_dir)
        origin = origin_mod.OriginServer(guest.image, export='bench',
                                         run_dir=origin_dir)
        # Registered before start(): stop() is safe on a daemon that
        # never came up, and one that came up half-way must go.
        cleanup.callback(storm.quietly, origin.stop)
        origin.start()
        LOG.info('Origin %s exported at %s', guest.image, origin.url)

        t = time.perf_counter()
        fast = storm.run_fastboot(conf, guest, origin, workdir, vms)
        phases['storm'] = time.perf_counter() - t
        t = time.perf_counter()
        copies = storm.run_full_copies(origin, workdir, vms,
                                       qemu_img=conf.fastboot_qemu.qemu_img)
        phases['full_copy'] = time.perf_counter() - t
        t = time.perf_counter()
        snaps = snapshots_mod.run(
            conf, origin, guest.image, workdir, snapshots,
            qemu_img=conf.fastboot_qemu.qemu_img)
        phases['snapshots'] = time.perf_counter() - t
    return report.build_result(params, fast, copies, snaps, phases)
