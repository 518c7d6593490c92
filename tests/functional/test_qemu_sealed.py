"""Data integrity across sealing a complete cache and daemon restarts.

Sealing (``direct_complete_cache``, on by default) re-opens a prefetched
cache read-only without copy-on-read and gives new VMs the cache file as
their backing. Real qemu-img / qemu-io / qemu-storage-daemon: a VM that
reads through the export while the cache is sealed and the daemon killed
and restarted must get every byte right, and a VM on the sealed file must
read and write like any qcow2 overlay without touching cache or origin.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from tests.functional import base

MiB = 1024 * 1024


def _expected(origin_path, directory, writes):
    """A raw copy of the origin with ``writes`` ((offset, byte, length))."""
    path = os.path.join(directory, 'expected.raw')
    shutil.copyfile(origin_path, path)
    with open(path, 'r+b') as f:
        for offset, byte, length in writes:
            f.seek(offset)
            f.write(bytes([byte]) * length)
    return base.sha256(path)


class TestSealedCache(base.TestCase):

    def setUp(self):
        super().setUp()
        # Every cluster holds data, so a whole-disk read takes a while.
        self.origin = self.useFixture(base.OriginFixture(data_clusters=1024))
        self.engine = self.useFixture(base.EngineFixture()).engine
        self.dir = tempfile.mkdtemp(prefix='fbsteady-t-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def _convert(self, disk, name, rate=None):
        out = os.path.join(self.dir, name)
        argv = ['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw']
        if rate:
            argv += ['-r', str(rate)]
        return out, subprocess.Popen(argv + [disk, out],
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)

    def test_reads_through_seal_and_daemon_restart_and_direct_vm(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        base.qemu_io(a.path, 'write -P 0x5a 2M 64k')
        want_a = _expected(self.origin.path, self.dir,
                           [(2 * MiB, 0x5a, 64 * 1024)])
        # A slow reader of the whole disk, on the daemon's export.
        out, reader = self._convert(a.path, 'a.raw', rate=16 * MiB)
        time.sleep(0.5)
        self.engine.prefetch('img')        # seals: the export drops
        self.assertTrue(self.engine.state.read()['images']['img']['sealed'])
        os.kill(self.engine.daemon.pid(), signal.SIGKILL)
        time.sleep(0.2)
        report = self.engine.reconcile()   # restarts the daemon, sealed
        self.assertTrue(report.daemon_restarted)
        self.assertIsNone(reader.poll(), 'the reader ended too early to '
                          'overlap the seal and the restart')
        _stdout, stderr = reader.communicate(timeout=120)
        self.assertEqual(0, reader.returncode, stderr)
        self.assertEqual(want_a, base.sha256(out))

        # A VM created now reads the sealed file itself: no origin, no
        # daemon needed.
        b = self.engine.create('vm-b', 'img', self.origin.url)
        cache = os.path.join(self.engine.state_path, 'caches', 'img.qcow2')
        info = subprocess.run(['qemu-img', 'info', '-U', b.path],
                              capture_output=True, text=True, check=True)
        self.assertIn('backing file: %s\n' % cache, info.stdout)
        self.origin.server.stop()
        self.engine.shutdown()
        base.qemu_io(b.path, 'write -P 0xc3 1M 4k', 'write -P 0x3c 40M 1M')
        base.qemu_io(b.path, 'read -P 0xc3 1M 4k', 'read -P 0x3c 40M 1M',
                     'read -P %d %d 64k' % (self.origin.pattern(5),
                                            5 * base.CLUSTER))
        out_b, reader = self._convert(b.path, 'b.raw')
        _stdout, stderr = reader.communicate(timeout=120)
        self.assertEqual(0, reader.returncode, stderr)
        os.unlink(os.path.join(self.dir, 'expected.raw'))
        self.assertEqual(
            _expected(self.origin.path, self.dir,
                      [(MiB, 0xc3, 4096), (40 * MiB, 0x3c, MiB)]),
            base.sha256(out_b))
        # The cache took no VM write and still equals the origin.
        out_c = os.path.join(self.dir, 'cache.raw')
        subprocess.run(['qemu-img', 'convert', '-U', '-f', 'qcow2', '-O',
                        'raw', cache, out_c], check=True)
        self.assertEqual(self.origin.sha256, base.sha256(out_c))

    def test_the_daemon_and_direct_vms_share_the_sealed_file(self):
        self.engine.create('vm-a', 'img', self.origin.url)
        self.engine.prefetch('img')
        b = self.engine.create('vm-b', 'img', self.origin.url)
        # A VM holding its disk open (qemu-io reads while the daemon also
        # has the cache open): shared read locks, no conflict.
        base.qemu_io(b.path, 'read -P 1 0 64k')
        base.qemu_io(self.engine.export_url('img'), 'read -P 1 0 64k',
                     fmt='raw', read_only=True)
        # Nothing may open the sealed cache for writing while the daemon
        # serves it.
        cache = os.path.join(self.engine.state_path, 'caches', 'img.qcow2')
        proc = subprocess.run(['qemu-io', '-f', 'qcow2', '-c',
                               'write 0 4k', cache], capture_output=True,
                              text=True, check=False)
        self.assertIn('lock', proc.stdout + proc.stderr)
        # A sealed image is removed like any other once no VM uses it.
        self.engine.destroy('vm-a')
        self.engine.destroy('vm-b')
        self.engine.remove_image('img')
        self.assertFalse(os.path.exists(cache))
        with self.engine.daemon.qmp() as qmp:
            self.assertEqual([], qmp.execute('query-block-exports'))
