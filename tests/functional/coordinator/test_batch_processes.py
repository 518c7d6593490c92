"""The batch API and fastboot-runner as real processes.

OpenStack is the file-backed fake (fake_openstack); the coordinator, the
runners, the database (SQLite here, MariaDB in test_mysql) and the tooz
locks are real. The runner is SIGKILLed between Nova creating the servers
and the runner recording them: its replacement must finish the batch
without creating any server twice.
"""

import time

from tests.functional.coordinator import batch_processes


class TestBatchProcesses(batch_processes.BatchProcessTestCase):

    def post(self, count, key='k1'):
        snapshot = self.store.add_snapshot(batch_processes.PROJECT)
        resp = self.http('POST', '/v1/batches', key=key, body={
            'source': {'volume_snapshot_id': snapshot}, 'count': count,
            'flavor': 'm1.small', 'name': 'render', 'networks': 'none'})
        self.assertEqual(202, resp.status_code, resp.text)
        return resp.json()['batch']['id']

    def test_batch_goes_active_and_is_deleted(self):
        runner = self.process('runner')
        runner.start()
        batch_id = self.post(4)
        batch = self.wait_state(batch_id, ('ACTIVE', 'PARTIAL', 'ERROR'))
        self.assertEqual('ACTIVE', batch['state'], batch)
        self.assertEqual({'ACTIVE': 4}, batch['server_states'])
        self.assertEqual(4, len(self.store.read()['servers']))
        timeline = self.http('GET', '/v1/batches/%s/timeline' % batch_id)
        self.assertEqual(4, len(timeline.json()['timeline']['servers']))
        resp = self.http('DELETE', '/v1/batches/%s?purge=true' % batch_id)
        self.assertEqual(202, resp.status_code, resp.text)
        self.wait_state(batch_id, ('DELETED',))
        state = self.store.read()
        self.assertEqual(({}, {}, {}, {}), (
            state['servers'], state['volumes'], state['images'],
            state['trusts']))

    def test_runner_killed_mid_batch_replaced_no_duplicates(self):
        self.store.set(hang_after_create=30)
        first = self.process('runner', 'runner1')
        first.start()
        batch_id = self.post(5)
        deadline = time.monotonic() + 60
        while not self.store.read()['servers']:
            self.assertLess(time.monotonic(), deadline, first.log_tail())
            time.sleep(0.1)
        # Nova has the servers; the runner has not recorded them.
        first.kill()
        self.store.set(hang_after_create=0)
        second = self.process('runner', 'runner2')
        second.start()
        batch = self.wait_state(batch_id, ('ACTIVE', 'PARTIAL', 'ERROR'))
        self.assertEqual('ACTIVE', batch['state'], batch)
        servers = self.store.read()['servers']
        self.assertEqual(5, len(servers))
        self.assertEqual(1, self.store.read()['calls'].count(
            'create_servers'))
        self.assertEqual(set(servers), {s['id'] for s in batch['servers']})

    def test_two_runners_share_the_work(self):
        self.store.set(server_ticks=3)
        for n in (1, 2):
            self.process('runner', 'runner%d' % n).start()
        ids = [self.post(3, key='k%d' % i) for i in range(4)]
        for batch_id in ids:
            batch = self.wait_state(batch_id, ('ACTIVE', 'PARTIAL', 'ERROR'))
            self.assertEqual('ACTIVE', batch['state'], batch)
        self.assertEqual(12, len(self.store.read()['servers']))
        self.assertEqual(4, self.store.read()['calls'].count(
            'create_servers'))
