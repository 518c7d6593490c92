"""Boot real test guests under QEMU.

The guest is built once into ``$FASTBOOT_TEST_CACHE`` (default
``/tmp/fastboot-test-cache``) and reused by later runs; the first build
downloads the Debian kernel package (about 70 MB) and takes 10-15 s.
"""

import json
import os
import shutil
import socket
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


def _overlay(path, backing):
    subprocess.run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', backing,
                    '-F', 'raw', path], check=True)


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


def _qmp(path, command):
    """Run one QMP command on the monitor socket ``path``."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(10)
        sock.connect(path)
        reader = sock.makefile('rb')
        reader.readline()  # greeting
        for cmd in ({'execute': 'qmp_capabilities'}, {'execute': command}):
            sock.sendall(json.dumps(cmd).encode() + b'\n')
            while True:
                msg = json.loads(reader.readline())
                if 'return' in msg or 'error' in msg:
                    break
        if 'error' in msg:
            raise RuntimeError('QMP %s: %s' % (command, msg['error']))
        return msg['return']


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

    def test_two_guests_boot_concurrently(self):
        guest = self.guest
        base_sha = fbase.sha256(guest.image)
        names = ['vm-a', 'vm-b']
        specs = []
        for name in names:
            disk = os.path.join(self.workdir, name + '.qcow2')
            _overlay(disk, guest.image)
            specs.append((name, disk, os.path.join(self.workdir,
                                                   name + '.log')))

        started = time.monotonic()
        results = demo_vm.boot_many(guest, specs, timeout=BOOT_TIMEOUT)
        elapsed = time.monotonic() - started

        for result in results:
            with open(result.console_log, errors='replace') as fh:
                console = fh.read()
            self.assertTrue(result.ok, '%s: %s\n%s' % (
                result.name, result.error, console[-2000:]))
            self.assertEqual(guest.payload_sha256, result.checksum)
            self.assertTrue(result.checksum_ok)
            self.assertLess(result.boot_seconds, BOOT_TIMEOUT)
        self.assertLess(elapsed, BOOT_TIMEOUT)

        # Each VM wrote to its own copy-on-write layer only.
        for name, disk, _log in specs:
            for other in names:
                marker = _read_guest_file(disk, guest.marker_path(other),
                                          self.workdir)
                if other == name:
                    self.assertEqual(name + '\n', marker)
                else:
                    self.assertIsNone(marker)
        self.assertEqual(base_sha, fbase.sha256(guest.image))

    def test_boot_reads_a_small_part_of_the_origin(self):
        """A boot over NBD pulls well under 20% of the origin image.

        query-blockstats has no counters for export-only nodes, so the
        origin is exported the way a host cache serves it: a qcow2 cache
        under a copy-on-read filter. What the boot read is then what the
        cache holds afterwards (rounded up to whole 64 KiB clusters).
        """
        guest = self.guest
        nbd_sock = os.path.join(self.workdir, 'nbd.sock')
        qmp_sock = os.path.join(self.workdir, 'qmp.sock')
        cache = os.path.join(self.workdir, 'cache.qcow2')
        _overlay(cache, guest.image)
        daemon = subprocess.Popen(
            ['qemu-storage-daemon',
             '--blockdev', 'driver=file,node-name=origin-file,'
             'filename=%s,read-only=on' % guest.image.replace(',', ',,'),
             '--blockdev', 'driver=raw,node-name=origin,file=origin-file,'
             'read-only=on',
             '--blockdev', 'driver=qcow2,node-name=cache,backing=origin,'
             'file.driver=file,file.filename=%s' % cache.replace(',', ',,'),
             '--blockdev', 'driver=copy-on-read,node-name=cor,file=cache',
             '--chardev', 'socket,id=qmp0,path=%s,server=on,wait=off'
             % qmp_sock,
             '--monitor', 'chardev=qmp0',
             '--nbd-server', 'addr.type=unix,addr.path=%s' % nbd_sock,
             '--export', 'type=nbd,id=exp0,node-name=cor,name=origin,'
             'writable=off'],
            stdin=subprocess.DEVNULL)
        self.addCleanup(daemon.wait)
        self.addCleanup(daemon.kill)
        deadline = time.monotonic() + 10
        while not (os.path.exists(nbd_sock) and os.path.exists(qmp_sock)):
            self.assertIsNone(daemon.poll(), 'qemu-storage-daemon died')
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)

        disk = os.path.join(self.workdir, 'vm-nbd.qcow2')
        _overlay(disk, 'nbd+unix:///origin?socket=%s' % nbd_sock)
        cached_before = _allocated_bytes(cache)
        result = demo_vm.boot(guest, 'vm-nbd', disk,
                              os.path.join(self.workdir, 'vm-nbd.log'),
                              timeout=BOOT_TIMEOUT)
        self.assertTrue(result.ok, result.error)
        self.assertTrue(result.checksum_ok)
        _qmp(qmp_sock, 'quit')
        daemon.wait(timeout=10)
        pulled = _allocated_bytes(cache) - cached_before
        # At least the payload went through the cache...
        self.assertGreaterEqual(pulled, guest.payload_size)
        # ...and little else.
        self.assertLess(pulled, guest.image_size * 0.2,
                        'boot pulled %d of %d bytes' % (pulled,
                                                        guest.image_size))
