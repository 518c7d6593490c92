"""Benchmark (not a test: stestr does not discover it): time to all-ACTIVE
of ``openstack fastboot batch create --count N --wait`` versus the same N
servers by hand with the README's recipe (origin volume from the
snapshot, stub image with its properties, ``server create --min N --max
N --wait``), same snapshot, same run, each from its first command.

Run on a ministack that is up::

    python -m testtools.run tests.ministack.bench_batch

(MINISTACK_BENCH_COUNT, default 4). Prints and writes JSON under
MINISTACK_OUTPUT (default .ministack-output/), with the load average.
"""

import os
import shutil
import tempfile
import time
import uuid

from tests.ministack import base
from tests.ministack import batch_helpers
from tests.ministack import test_batch

COUNT = int(os.environ.get('MINISTACK_BENCH_COUNT', '4'))


class BenchBatch(batch_helpers.BatchScenarioMixin, base.MinistackTestCase):

    def setUp(self):
        # TestBatch.setUp's super() is bound to TestBatch: not borrowable.
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='fbmsb-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    _write = test_batch.TestBatch._write
    timeline_text = test_batch.TestBatch.timeline_text

    def test_batch_versus_by_hand(self):
        guest, snap, images = self.bootable_snapshot()
        load_before = batch_helpers.load_average()
        start = time.monotonic()
        batch = self.batch('create', '--snapshot', snap, '--count',
                           str(COUNT), '--flavor', 'ms.tiny', '--network',
                           'none', '--name', 'msbench', '--wait',
                           '--wait-timeout', '1800', timeout=1900)
        batch_s = time.monotonic() - start
        self.addCleanup(self.quiet, 'fastboot', 'batch', 'delete',
                        '--purge', batch['id'])
        self.assertEqual('ACTIVE', batch['state'], batch)
        table = self.timeline_text(batch['id'])
        timeline = self.batch('timeline', batch['id'])
        batch_servers = self.batch_servers(batch['id'])
        self.assert_consoles(guest, batch_servers)
        # The batch's servers go before the by-hand ones boot: both get
        # the same two computes.
        self.batch('delete', batch['id'], parse=False)
        self.wait_for('batch servers gone', lambda: not (
            set(batch_servers) & {s['ID'] for s in self.openstack(
                'server', 'list', '--all-projects', user='admin')}),
            timeout=900)

        load_middle = batch_helpers.load_average()
        hand_s, hand_servers = self.by_hand(snap, images, COUNT,
                                            uuid.uuid4().hex[:8])
        self.addCleanup(self.quiet, 'server', 'delete', '--wait',
                        *hand_servers)
        self.assertEqual(COUNT, len(hand_servers))
        self.assert_consoles(guest, hand_servers)
        self._write('bench-batch-vs-hand', {
            'count': COUNT,
            'batch_seconds_to_all_active': round(batch_s, 1),
            'by_hand_seconds_to_all_active': round(hand_s, 1),
            'batch_over_by_hand': round(batch_s / hand_s, 3),
            'load_average_before_batch': load_before,
            'load_average_before_by_hand': load_middle,
            'load_average_after': batch_helpers.load_average(),
            'timeline': timeline, 'table': table})
