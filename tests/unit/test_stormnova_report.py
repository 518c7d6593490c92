"""The storm benchmark's figures and text (gate.stormnova), no services."""

import testtools

from gate.stormnova import report
from gate.stormnova import run


def _storm(profile, n, failed=0, faults=None):
    return {'profile': profile, 'mode': 'one', 'servers': n, 'computes': 2,
            'active': n - failed, 'failed': failed, 'faults': faults or {},
            'all_active_s': None if failed else 10.0, 'p50_s': 5.0,
            'p99_s': 9.0, 'peak_db_connections': 40,
            'peak_queue_messages': 3, 'deepest_queue': 'conductor',
            'deepest_queue_depth': 3, 'cpu_s': {'nova-conductor': 4.0},
            'cleanup': {'clean': True}}


class PercentileTest(testtools.TestCase):

    def test_nearest_rank(self):
        values = list(range(1, 101))
        self.assertEqual(50, run.percentile(values, 50))
        self.assertEqual(99, run.percentile(values, 99))
        self.assertIsNone(run.percentile([], 50))


class BrokeFirstTest(testtools.TestCase):

    def test_first_failing_n_and_its_top_fault(self):
        results = [_storm('defaults', 100),
                   _storm('defaults', 250, 7, {'MessagingTimeout': 5,
                                               'Too many connections': 2}),
                   _storm('tuned', 250)]
        text = report.broke_first(results)
        self.assertIn('N=250', text)
        self.assertIn('"MessagingTimeout" (5 servers)', text)
        self.assertIn('tuned, the same storm had 0 failures', text)

    def test_no_failure_says_so(self):
        text = report.broke_first([_storm('defaults', 20)])
        self.assertIn('did not fail up to N=20', text)

    def test_table_has_a_row_per_storm(self):
        lines = report.table([_storm('defaults', 20),
                              _storm('tuned', 20)]).splitlines()
        self.assertEqual(4, len(lines))
        self.assertIn('tuned', lines[3])


class FaultGroupingTest(testtools.TestCase):

    def test_ids_do_not_split_groups(self):
        a = run._short('Build of instance 0f8b5a2c-1111-2222-3333-'
                       '444455556666 aborted')
        b = run._short('Build of instance 9a9b5a2c-aaaa-bbbb-cccc-'
                       'ddddeeeeffff aborted')
        self.assertEqual(a, b)
