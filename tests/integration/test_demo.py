"""``fastboot demo`` end to end: real guests through the real cache group."""

import json
import os
import subprocess
import tempfile

from oslotest import base

from fastboot_nova.demo import runner
from fastboot_nova import exception
from tests.functional import base as fbase

CACHE_DIR = os.environ.get('FASTBOOT_TEST_CACHE',
                           '/tmp/fastboot-test-cache')


class TestDemo(base.BaseTestCase):

    def _daemons_under(self, path):
        out = subprocess.run(['pgrep', '-af', 'qemu-'], capture_output=True,
                             text=True).stdout
        return [line for line in out.splitlines() if path in line]

    def test_two_guests_boot_from_snapshots_of_one_cached_origin(self):
        workdir = tempfile.mkdtemp(prefix='fbd-', dir='/tmp')
        report_path = os.path.join(workdir, 'report.json')
        result = runner.run_demo(fbase.make_conf(), vms=2,
                                 report=report_path, cache_dir=CACHE_DIR,
                                 state_path=os.path.join(workdir, 's'))
        with open(report_path) as f:
            self.assertEqual(result, json.load(f))
        self.assertEqual(['vm01', 'vm02'],
                         [vm['name'] for vm in result['vms']])
        for vm in result['vms']:
            self.assertTrue(vm['ok'], vm)
            self.assertTrue(vm['checksum_ok'], vm)
            self.assertGreater(vm['boot_seconds'], 0)
            # The guest wrote its marker: into its own snapshot.
            self.assertGreater(vm['written_bytes'], 0)
        # Both guests read the 4 MiB payload; the origin served it once.
        self.assertGreater(result['origin_bytes_read'], 4 * 1024 * 1024)
        self.assertLess(result['origin_bytes_read'],
                        0.2 * result['image_bytes'])
        self.assertLess(result['origin_bytes_read'],
                        1.5 * 4 * 1024 * 1024 + 1024 * 1024)
        # Everything it started is gone.
        self.assertEqual([], self._daemons_under(workdir))
        self.assertEqual([], os.listdir(os.path.join(workdir, 's', 'host',
                                                     'vms')))

    def test_bad_vm_count_is_refused_before_any_work(self):
        self.assertRaises(exception.FastbootException, runner.run_demo,
                          fbase.make_conf(), vms=0,
                          cache_dir='/nonexistent/never-created')
        self.assertFalse(os.path.exists('/nonexistent/never-created'))
