"""A small boot storm on real Nova processes: 0 failures, full cleanup.

Runs ``python -m gate.stormnova`` (the ``bench-storm`` benchmark) at a
small size with the ``fastboot-tune`` profile: 30 servers on 2
nova-compute processes, sent in bulks of 10, so both the one-request
path of Nova (multi-create) and several concurrent requests run. It
checks what the storm reports, never its timing: every server went
ACTIVE, then every server, instance directory and placement usage is
gone, and no service process is left.
"""

import json
import os
import subprocess
import sys
import tempfile

import testtools

SERVERS = 30
COMPUTES = 2
BULK = 10


class StormSmokeTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        if os.geteuid() != 0:
            self.skipTest('needs root: MariaDB, RabbitMQ and the services '
                          'run as in ministack')

    def test_tuned_storm_all_active_and_clean(self):
        with tempfile.TemporaryDirectory(prefix='storm-smoke-') as tmp:
            out = os.path.join(tmp, 'storm.json')
            run = subprocess.run(
                [sys.executable, '-m', 'gate.stormnova',
                 '--counts', str(SERVERS), '--computes', str(COMPUTES),
                 '--profiles', 'tuned', '--modes', 'batches',
                 '--bulk-size', str(BULK), '--json', out],
                capture_output=True, text=True, timeout=2300)
            self.assertEqual(0, run.returncode,
                             run.stdout[-4000:] + run.stderr[-4000:])
            with open(out) as f:
                doc = json.load(f)
        self.assertNotIn('still running', run.stdout)
        [storm] = doc['storms']
        self.assertEqual(('tuned', 'batches', SERVERS),
                         (storm['profile'], storm['mode'],
                          storm['servers']))
        self.assertEqual({}, storm['faults'])
        # Every server list the storm polled answered (no API 5xx).
        self.assertEqual({}, storm['list_errors'])
        self.assertEqual(SERVERS, storm['active'])
        self.assertIsNotNone(storm['all_active_s'])
        self.assertGreater(storm['peak_db_connections'], 0)
        cleanup = storm['cleanup']
        self.assertEqual(0, cleanup['servers_left'])
        self.assertEqual(0, cleanup['instance_dirs_left'])
        self.assertEqual({}, cleanup['placement_usages_left'])
        self.assertTrue(cleanup['clean'])
        # The tuned profile was written into the files before the start.
        [profile] = doc['profiles']
        self.assertTrue(profile['changes'])
