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


class _FlakyClient:
    """Answers the listed outcomes in order: an ApiError or a list."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def servers(self, prefix):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class PollTest(testtools.TestCase):

    def test_api_5xx_on_a_list_is_counted_and_retried(self):
        from gate.stormnova import client as client_mod
        err = client_mod.ApiError('GET', '/servers/detail', 500,
                                  'NeutronClientException')
        ok = [{'id': 'a', 'name': 'st-b0-1', 'status': 'ACTIVE'}]
        client = _FlakyClient(err, ok)
        self.patch(run.time, 'sleep', lambda s: None)
        done, servers, errors = run._poll(client, 'st-', {}, 0.0, 1,
                                          float('inf'), 1.0)
        self.assertEqual(['a'], list(done))
        self.assertEqual(ok, servers)
        self.assertEqual([1], list(errors.values()))
        self.assertIn('NeutronClientException', next(iter(errors)))

    def test_api_4xx_on_a_list_is_an_error_of_the_run(self):
        from gate.stormnova import client as client_mod
        err = client_mod.ApiError('GET', '/servers/detail', 403, 'denied')
        self.patch(run.time, 'sleep', lambda s: None)
        self.assertRaises(client_mod.ApiError, run._poll,
                          _FlakyClient(err), 'st-', {}, 0.0, 1,
                          float('inf'), 1.0)
