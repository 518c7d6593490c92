"""Boot real test guests under QEMU on disks the real engine makes.

Every VM disk comes from a QemuEngine (qemu-storage-daemon, a qcow2
cache under a copy-on-read filter, exported over NBD; a qcow2 overlay per
VM): the tests fail if the cache group regresses, not only if QEMU does.

The guest is built once into ``$FASTBOOT_TEST_CACHE`` (default
``/tmp/fastboot-test-cache``) and reused by later runs; the first build
downloads the Debian kernel package (about 70 MB) and takes 10-15 s.
"""

import json
import os
import shutil
import subprocess
import time
import unittest

import fixtures
from oslotest import base

from fastboot_nova.demo import guest as demo_guest
from fastboot_nova.demo import vm as demo_vm
from tests.functional import base as fbase

CACHE_DIR = os.environ.get('FASTBOOT_TEST_CACHE',
                           '/tmp/fastboot-test-cache')
BOOT_TIMEOUT = 120

_REQUIRED = ('qemu-system-x86_64', 'qemu-img', 'apt-get', 'dpkg', 'depmod',
             'mkfs.ext4', 'debugfs')


def _engine(workdir):
    """A real qemu engine whose state lives in ``workdir``."""
    from fastboot_nova.storage.qemu import engine as qemu_engine
    return qemu_engine.QemuEngine(fbase.make_conf(),
                                  state_path=os.path.join(workdir, 'state'))


def _read_guest_file(overlay, inner, workdir):
    """Contents of file ``inner`` of the ext4 in qcow2 ``overlay``, or None.

    Flattened to a sparse raw file first: debugfs reads raw images only,
    and this needs no mount, loop or nbd device on the host.
    """
    flat = os.path.join(workdir, os.path.basename(overlay) + '.raw')
    subprocess.run(['qemu-img', 'convert', '-O', 'raw', overlay, flat],
                   check=True)
    try:
        # A clean file system first: the guest must have unmounted it.
        subprocess.run(['e2fsck', '-fn', flat], check=True,
                       capture_output=True)
        proc = subprocess.run(['debugfs', '-R', 'cat %s' % inner, flat],
                              check=True, capture_output=True)
        # debugfs prints errors on stderr and exits 0.
        if b'not found' in proc.stderr:
            return None
        return proc.stdout.decode()
    finally:
        os.unlink(flat)


def _allocated_bytes(qcow2):
    """Bytes of guest data held in ``qcow2`` itself, not its backing."""
    out = subprocess.run(['qemu-img', 'map', '-U', '--output=json', qcow2],
                         check=True, capture_output=True).stdout
    return sum(e['length'] for e in json.loads(out)
               if e['data'] and e['depth'] == 0)


class GuestBootTest(base.BaseTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        missing = [c for c in _REQUIRED if not shutil.which(c)]
        if missing:
            raise unittest.SkipTest('missing tools: %s' % ', '.join(missing))
        cls.guest = demo_guest.build_guest(CACHE_DIR)

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path

    def engine(self):
        engine = _engine(self.workdir)
        self.addCleanup(engine.shutdown)
        return engine

    def test_two_guests_boot_concurrently(self):
        guest = self.guest
        base_sha = fbase.sha256(guest.image)
        engine = self.engine()
        names = ['vm-a', 'vm-b']
        specs = []
        for name in names:
            disk = engine.create(name, 'img', guest.image)
            specs.append((name, disk.path, os.path.join(self.workdir,
                                                        name + '.log')))
        (cached,) = engine.list_images()
        self.assertEqual(('vm-a', 'vm-b'), tuple(sorted(cached.vms)))

        started = time.monotonic()
        results = demo_vm.boot_many(guest, specs, timeout=BOOT_TIMEOUT)
        elapsed = time.monotonic() - started

        self.assertEqual(len(names), len(results))
        for result in results:
            with open(result.console_log, errors='replace') as fh:
                console = fh.read()
            self.assertTrue(result.ok, '%s: %s\n%s' % (
                result.name, result.error, console[-2000:]))
            self.assertEqual(guest.payload_sha256, result.checksum)
            self.assertTrue(result.checksum_ok)
            self.assertLess(result.boot_seconds, BOOT_TIMEOUT)
        self.assertLess(elapsed, BOOT_TIMEOUT)

        # Each VM wrote to its own copy-on-write layer only (read back
        # through the cache export, which must still serve).
        for name, disk, _log in specs:
            for other in names:
                marker = _read_guest_file(disk, guest.marker_path(other),
                                          self.workdir)
                if other == name:
                    self.assertEqual(name + '\n', marker)
                else:
                    self.assertIsNone(marker)
        written = {d.name: d.written_bytes for d in engine.list()}
        self.assertEqual(set(names), set(written))
        self.assertTrue(all(written.values()), written)
        self.assertEqual(base_sha, fbase.sha256(guest.image))

    def test_boot_reads_a_small_part_of_the_origin(self):
        """A boot pulls well under 20% of the origin into the host cache.

        The engine's cache is a qcow2 file under a copy-on-read filter:
        what the boot read from the origin is what the cache file holds
        afterwards (rounded up to whole clusters). A second VM's boot on
        the warm cache pulls almost nothing more.
        """
        guest = self.guest
        engine = self.engine()
        first = engine.create('vm-1', 'img', guest.image)
        (cache_file,) = [os.path.join(engine.cache_dir, f)
                         for f in os.listdir(engine.cache_dir)]
        engine.shutdown()
        cached_before = _allocated_bytes(cache_file)
        # Daemon and export back, as after a host restart.
        engine.reconcile()
        result = demo_vm.boot(guest, 'vm-1', first.path,
                              os.path.join(self.workdir, 'vm-1.log'),
                              timeout=BOOT_TIMEOUT)
        self.assertTrue(result.ok, result.error)
        self.assertTrue(result.checksum_ok)
        # Stopped, so the daemon has flushed the cache's metadata; the
        # next create starts it again.
        engine.shutdown()
        pulled = _allocated_bytes(cache_file) - cached_before
        # At least the payload went through the cache...
        self.assertGreaterEqual(pulled, guest.payload_size)
        # ...and little else.
        self.assertLess(pulled, guest.image_size * 0.2,
                        'boot pulled %d of %d bytes' % (pulled,
                                                        guest.image_size))
        # A second VM boots from the warm cache.
        second = engine.create('vm-2', 'img', guest.image)
        result = demo_vm.boot(guest, 'vm-2', second.path,
                              os.path.join(self.workdir, 'vm-2.log'),
                              timeout=BOOT_TIMEOUT)
        self.assertTrue(result.ok, result.error)
        self.assertTrue(result.checksum_ok)
        engine.shutdown()
        more = _allocated_bytes(cache_file) - cached_before - pulled
        self.assertLess(more, pulled * 0.1,
                        'warm boot pulled %d more bytes' % more)
