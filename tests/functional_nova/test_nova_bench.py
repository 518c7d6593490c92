"""The Nova benchmark's quick path, end to end (python -m ...bench.nova)."""

import json
import os
import shutil
import tempfile

from oslotest import base

from gate.bench import nova as bench_nova

MiB = 1024 * 1024


def make_image(path, size=32 * MiB, data_every=MiB, data=128 * 1024):
    """A sparse raw image with some real data in every MiB."""
    with open(path, 'wb') as f:
        f.truncate(size)
        for offset in range(0, size, data_every):
            f.seek(offset)
            f.write(os.urandom(data))


class TestNovaBenchQuick(base.BaseTestCase):
    """Not a nova TestCase: the benchmark starts its own cloud."""

    def setUp(self):
        super().setUp()
        try:
            bench_nova.check_dependencies()
        except bench_nova.MissingDependency as e:
            self.skipTest(str(e))
        self.dir = tempfile.mkdtemp(prefix='fbnbt-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.image = os.path.join(self.dir, 'image.raw')
        make_image(self.image)

    def test_quick_report(self):
        report_path = os.path.join(self.dir, 'report.json')
        # The quick path with the counts cut down: this is a test of the
        # benchmark, not a measurement.
        rc = bench_nova.main(['--quick', '--counts', '3', '--image',
                              self.image, '--json', report_path])
        with open(report_path, encoding='utf-8') as f:
            result = json.load(f)
        self.assertEqual(0, rc, result)
        self.assertEqual(1, result['result_version'])
        self.assertEqual([3], result['params']['counts'])
        self.assertEqual('one', result['params']['fastboot_requests'])
        self.assertEqual('boot_fastboot_image',
                         result['params']['fastboot_boot'])
        self.assertEqual(1, result['params']['volume_size_gib'])
        (run,) = result['runs']
        stock, fast = run['stock'], run['fastboot']
        self.assertEqual(3, run['count'])
        for mode in (stock, fast):
            self.assertEqual(3, mode['servers_active'])
            self.assertGreater(mode['active_seconds'], 0)
            self.assertGreater(mode['delete_seconds'], 0)
            self.assertLess(mode['request_seconds'], mode['active_seconds'])
        # Stock: Cinder copied the snapshot once per server, for real.
        self.assertEqual(3, stock['volumes_created'])
        self.assertEqual(3, stock['root_volumes'])
        self.assertEqual(3, stock['volumes_deleted'])
        self.assertEqual(1, stock['api_requests'])
        # Each copy wrote at least the image's data (4 MiB of it).
        self.assertGreaterEqual(stock['bytes_copied'], 3 * 4 * MiB)
        # fastboot: one request (a fastboot image), one copy, one shared
        # root volume, a disk per server made by the real engine.
        self.assertEqual(1, fast['api_requests'])
        self.assertEqual(1, fast['volumes_created'])
        self.assertEqual(1, fast['root_volumes'])
        self.assertEqual(3, fast['fastboot_disks'])
        self.assertEqual(1, fast['hosts_used'])
        self.assertEqual(1, fast['caches'])
        self.assertGreaterEqual(fast['bytes_copied'], 4 * MiB)
        self.assertGreater(fast['overlay_bytes'], 0)
        self.assertLess(fast['bytes_written'], stock['bytes_written'])
        self.assertLess(fast['volume_bytes'], stock['volume_bytes'])
        ratios = run['ratios']
        self.assertAlmostEqual(1 / 3, ratios['volumes_created'])
        self.assertLess(ratios['bytes_written'], 1)
        for key in ('active_seconds', 'delete_seconds'):
            self.assertGreater(ratios[key], 0)

    def test_per_server_requests(self):
        # The older fastboot path, kept for comparison: a request per
        # server booting from the shared volume.
        report_path = os.path.join(self.dir, 'report.json')
        rc = bench_nova.main(['--counts', '2', '--image', self.image,
                              '--fastboot-requests', 'per-server',
                              '--json', report_path])
        with open(report_path, encoding='utf-8') as f:
            result = json.load(f)
        self.assertEqual(0, rc, result)
        self.assertEqual('per-server', result['params']['fastboot_requests'])
        (run,) = result['runs']
        fast = run['fastboot']
        self.assertEqual(2, fast['servers_active'])
        self.assertEqual(2, fast['api_requests'])
        self.assertEqual(1, fast['volumes_created'])
        self.assertEqual(2, fast['fastboot_disks'])
