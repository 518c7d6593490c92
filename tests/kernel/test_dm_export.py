"""Export a host's cache over NBD and attach it over two paths, for real.

One TCG guest plays parent and child over loopback (see
``tests/kernel/guest_export.py``): the parent exports the dm-cache device
of an image through two nbd-servers, the child builds a dm-multipath
device over two NBD connections, caches it in its own cache group and
reads through a VM snapshot; a server is stopped mid-read and the read
must complete with the right data through the other path.

Skipped unless FASTBOOT_KERNEL_TESTS=1 (``tox -e kernel`` sets it).
"""

import json
import os
import random

import testtools

from tests.kernel import kguest
from tests.kernel import test_dm_engine

CACHE2_MIB = 128
#: Smaller than the engine test's origin: every byte crosses NBD (twice
#: per read: parent cache, then child) under TCG.
ORIGIN_MIB = 16


class TestDmExport(test_dm_engine.KernelTestCase):

    def setUp(self):
        super().setUp()
        self.origin = os.path.join(self.tmp, 'origin-export.raw')
        self.sha = test_dm_engine._write_origin(self.origin, ORIGIN_MIB,
                                                'origin-export')
        self.cache2 = os.path.join(self.tmp, 'cache2.raw')
        with open(self.cache2, 'wb') as f:
            f.write(random.Random('cache2').randbytes(CACHE2_MIB << 20))

    def test_export_multipath_failover(self):
        # vdb state, vdc origin, vdd parent cache, vde child cache.
        disks = [(self.state, 'state'), (self.origin, 'origin1'),
                 (self.cache, 'cache0'), (self.cache2, 'cache1')]
        args = {'scenario': 'export', 'privsep': 'daemon',
                'origin': '/dev/vdc', 'cache': '/dev/vdd',
                'cache2': '/dev/vde', 'sha': self.sha}
        res = kguest.run(self.guest, test_dm_engine.SOURCE_DIR, disks,
                         ['%s=%s' % kv for kv in sorted(args.items())],
                         console_log=os.path.join(self.tmp, 'console.log'))
        self.addDetail('console', testtools.content.text_content(
            res.console[-20000:]))
        self.assertIsNotNone(res.result, 'no result on the console (QEMU '
                             'exit %s); console:\n%s' % (
                                 res.returncode, res.console[-4000:]))
        self.addDetail('result', testtools.content.text_content(
            json.dumps(res.result, indent=1, sort_keys=True)))
        info = res.result.get('info', {})
        print('\n[ktest-export] guest wall %.1fs, runner %.1fs, timings %s; '
              'nbd connect %s s, create_multipath %s s, read across the '
              'path loss %s s' % (
                  res.wall_seconds, res.result.get('runner_seconds', 0),
                  res.result.get('timings'), info.get('seconds_connect'),
                  info.get('seconds_create_multipath'),
                  info.get('failover_read_seconds')))
        self.assertIsNone(res.result.get('error'))
        checks = res.result['checks']
        failed = {k: v for k, v in checks.items() if not v[0]}
        self.assertEqual({}, failed)
        for name in ('two_paths', 'mpath_reads_origin', 'bad_input_refused',
                     'bad_input_nothing_built', 'child_vm_reads_origin',
                     'read_survives_path_loss', 'one_path_failed',
                     'no_path_read_fails', 'detach_disconnects',
                     'no_dm_devices_left'):
            self.assertIn(name, checks)
        self.assertTrue(res.result['ok'])
