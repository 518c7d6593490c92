"""The runner's logic on a real SQLite database and tooz file locks, with
the fake cloud (tests/unit/coordinator/fake_cloud.py) for OpenStack."""

import os
import threading

import fixtures
from oslo_config import cfg
from oslotest import base

from fastboot_nova.coordinator.batches import runner as runner_mod
from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import context
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import batches as batch_db
from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator.db import models
from fastboot_nova.coordinator import locks
from tests.unit.coordinator import fake_cloud

PROJECT = 'p1'


class RunnerTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        path = self.useFixture(fixtures.TempDir()).path
        self.conf = cfg.ConfigOpts()
        config.parse_args([], conf=self.conf, default_config_files=[])
        self.conf.set_override('state_path', path, group='coordinator')
        self.db = db_api.Database(self.conf)
        self.addCleanup(self.db.dispose)
        migration.upgrade(self.db.get_engine())
        self.queries = batch_db.BatchQueries(self.db)
        self.ctx = context.admin_context()
        self.clouds = fake_cloud.FakeCloudFactory(
            os.path.join(path, 'cloud.json'))
        self.store = self.clouds.store
        self.snapshot = self.store.add_snapshot(PROJECT)
        self.sleeps = []

    def runner(self, runner_id='r1'):
        coordination = locks.Coordination(self.conf, membership=False)
        coordination.start()
        self.addCleanup(coordination.stop)
        return runner_mod.Runner(self.conf, self.db, coordination,
                                 self.clouds, self.ctx, runner_id=runner_id,
                                 sleep=self.sleeps.append)

    def batch(self, count=3, key='k', priority=10, snapshot=None,
              **request):
        cloud = self.clouds.for_user(context.RequestContext(
            project_id=PROJECT))
        body = dict({'networks': 'none'}, **request)
        batch, _ = self.queries.create(
            self.ctx, PROJECT, 'u1', key, key, body,
            {'name': 'render', 'source_type': 'snapshot',
             'source_id': snapshot or self.snapshot, 'count': count,
             'flavor': 'm1.small', 'priority': priority,
             'trust_id': cloud.create_trust()})
        return batch.id

    def run_until_done(self, runner, batch_id, passes=20):
        for _ in range(passes):
            runner.run_once()
            batch = self.queries.get(self.ctx, batch_id)
            if batch.state in batch_db.FINAL_STATES:
                return batch
        self.fail('batch %s still %s' % (batch_id, batch.state))

    def servers(self):
        """The fake Nova's servers, but those it is deleting."""
        return {sid: server
                for sid, server in self.store.read()['servers'].items()
                if server['task_state'] != 'deleting'}

    def deleting(self):
        return [sid for sid, server in self.store.read()['servers'].items()
                if server['task_state'] == 'deleting']

    def calls(self, name):
        return self.store.read()['calls'].count(name)


class TestRunner(RunnerTestCase):

    def test_happy_path_origin_once_servers_active(self):
        batch = self.run_until_done(self.runner(), self.batch(count=3))
        self.assertEqual('ACTIVE', batch.state)
        self.assertIsNone(batch.fault)
        state = self.store.read()
        (vid, volume), = state['volumes'].items()
        self.assertTrue(volume['readonly'])
        self.assertTrue(volume['multiattach'])
        self.assertEqual({'fastboot_cacheable': 'true'}, volume['metadata'])
        self.assertEqual(self.snapshot, volume['source'])
        (iid, image), = state['images'].items()
        self.assertEqual(vid, image['fastboot_origin_volume'])
        self.assertEqual((vid, iid), (batch.origin_volume_id,
                                      batch.image_id))
        self.assertEqual(3, len(state['servers']))
        self.assertEqual(1, self.calls('create_servers'))
        self.assertEqual({s.server_id for s in batch.servers},
                         set(state['servers']))
        self.assertEqual(['ACTIVE'] * 3, [s.state for s in batch.servers])
        phases = [(e.server_id is None, e.phase)
                  for e in self.queries.events(self.ctx, batch.id)]
        self.assertEqual([(True, 'accepted'), (True, 'origin_ready')],
                         phases[:2])
        self.assertEqual(3, phases.count((False, 'requested')))
        self.assertEqual(3, phases.count((False, 'ACTIVE')))

    def test_second_batch_reuses_origin(self):
        runner = self.runner()
        first = self.run_until_done(runner, self.batch(key='a'))
        second = self.run_until_done(runner, self.batch(key='b', count=2))
        self.assertEqual(first.origin_volume_id, second.origin_volume_id)
        self.assertEqual(first.image_id, second.image_id)
        self.assertEqual(1, len(self.store.read()['volumes']))
        self.assertEqual(1, self.calls('create_origin_volume'))
        self.assertEqual(5, len(self.servers()))

    def test_bulks(self):
        self.conf.set_override('bulk_size', 2, group='batches')
        batch = self.run_until_done(self.runner(), self.batch(count=5))
        self.assertEqual('ACTIVE', batch.state)
        self.assertEqual(3, self.calls('create_servers'))
        self.assertEqual(5, len(self.servers()))

    def test_polls_one_list_per_request_one_session_per_batch(self):
        self.store.set(server_ticks=4)
        trusts = []
        for_trust = self.clouds.for_trust

        def counted(trust_id):
            trusts.append(trust_id)
            return for_trust(trust_id)

        self.clouds.for_trust = counted
        runner = self.runner()
        batch_id = self.batch(count=5)
        passes = 0
        while self.queries.get(self.ctx, batch_id).state != 'ACTIVE':
            runner.run_once()
            passes += 1
            self.assertLess(passes, 20)
        # Five servers watched over several passes without a GET per
        # server, and one Keystone session for the whole batch.
        self.assertGreaterEqual(passes, 3)
        self.assertEqual(0, self.calls('get_server'))
        self.assertLessEqual(self.calls('find_servers'), passes + 1)
        self.assertEqual(1, len(trusts))
        # An ended batch's session is dropped: its deletion, later,
        # authenticates again.
        runner.run_once()
        self.queries.request_delete(self.ctx, batch_id, PROJECT, False)
        self.assertEqual('DELETED',
                         self.run_until_done(runner, batch_id).state)
        self.assertEqual(2, len(trusts))

    def test_requested_is_when_the_request_was_sent(self):
        # Nova's API may take seconds to answer a multi-create: that time
        # belongs to the phases after "requested", not before it.
        self.store.set(hang_after_create=1)
        runner = self.runner()
        batch_id = self.batch(count=2)
        runner.run_once()
        answered = models.utcnow()
        requested = [e.at for e in self.queries.events(self.ctx, batch_id)
                     if e.phase == 'requested']
        self.assertEqual(2, len(requested))
        for at in requested:
            self.assertGreaterEqual((answered - at).total_seconds(), 1)

    def test_server_missing_from_the_list_is_asked_by_id(self):
        self.store.set(server_ticks=3)
        runner = self.runner()
        batch_id = self.batch(count=2)
        runner.run_once()
        gone = self.queries.get(self.ctx, batch_id).servers[0]
        with self.store.state() as data:
            del data['servers'][gone.server_id]
        batch = self.run_until_done(runner, batch_id)
        self.assertEqual('ACTIVE', batch.state)
        self.assertEqual(1, self.calls('get_server'))
        slot = batch.servers[0]
        self.assertEqual(1, slot.attempts)
        self.assertEqual('deleted outside the batch', slot.fault)
        self.assertNotEqual(gone.server_id, slot.server_id)

    def test_server_error_retried(self):
        self.store.fail('server', 'error')
        batch = self.run_until_done(self.runner(), self.batch(count=3))
        self.assertEqual('ACTIVE', batch.state)
        retried = [s for s in batch.servers if s.attempts]
        self.assertEqual(1, len(retried))
        self.assertEqual('No valid host was found.', retried[0].fault)
        self.assertEqual(3, len(self.servers()))
        self.assertEqual(1, len(self.deleting()))  # the ERROR one
        self.assertEqual(20, batch.priority)  # now a retry

    def test_retries_exhausted_partial_with_faults(self):
        self.conf.set_override('max_server_retries', 1, group='batches')
        self.store.fail('server', 'error', times=2)
        batch = self.run_until_done(self.runner(), self.batch(count=1,
                                                               key='x'))
        self.assertEqual('ERROR', batch.state)
        self.assertEqual('1 of 1 servers failed', batch.fault)
        self.assertEqual('No valid host was found.', batch.servers[0].fault)
        self.assertEqual(2, batch.servers[0].attempts)
        self.assertEqual({}, self.servers())

        # All three fail, then the first of the three retries too.
        self.store.fail('server', 'error', times=4)
        batch = self.run_until_done(self.runner(), self.batch(count=3,
                                                               key='y'))
        self.assertEqual('PARTIAL', batch.state)
        self.assertEqual(['ACTIVE', 'ACTIVE', 'ERROR'],
                         sorted(s.state for s in batch.servers))
        self.assertEqual(2, len(self.servers()))

    def test_nova_5xx_retried_within_bounds(self):
        self.store.fail('create_servers', '500', times=2)
        batch = self.run_until_done(self.runner(), self.batch(count=2))
        self.assertEqual('ACTIVE', batch.state)
        self.assertEqual(3, self.calls('create_servers'))
        self.assertEqual(2, len(self.servers()))
        self.assertEqual([2.0, 4.0], self.sleeps[:2])

    def test_nova_5xx_forever_records_fault(self):
        self.conf.set_override('cloud_retries', 2, group='batches')
        self.store.fail('create_servers', '500', times=10)
        batch = self.run_until_done(self.runner(), self.batch(count=2))
        self.assertEqual('ERROR', batch.state)
        self.assertEqual(3, self.calls('create_servers'))
        for slot in batch.servers:
            self.assertIn('Nova did not create the server', slot.fault)
        self.assertEqual({}, self.servers())

    def test_timeout_after_create_no_duplicates(self):
        # Nova created them but the answer was lost: found, not re-sent.
        self.store.fail('create_servers', 'timeout')
        batch = self.run_until_done(self.runner(), self.batch(count=4))
        self.assertEqual('ACTIVE', batch.state)
        self.assertEqual(1, self.calls('create_servers'))
        self.assertEqual(4, len(self.servers()))

    def test_runner_dies_after_send_next_one_resumes(self):
        batch_id = self.batch(count=4)
        dying = self.runner('dying')
        real = fake_cloud.FakeCloud.create_servers

        def create_then_die(cloud, *args, **kwargs):
            real(cloud, *args, **kwargs)
            raise SystemExit('killed')
        with fixtures.MockPatchObject(fake_cloud.FakeCloud, 'create_servers',
                                      create_then_die):
            self.assertRaises(SystemExit, dying.run_once)
        self.assertEqual(4, len(self.servers()))
        batch = self.run_until_done(self.runner('r2'), batch_id)
        self.assertEqual('ACTIVE', batch.state)
        self.assertEqual(4, len(self.servers()))
        self.assertEqual(set(self.servers()),
                         {s.server_id for s in batch.servers})
        self.assertEqual('r2', batch.runner)

    def test_runner_dies_before_send_next_one_sends(self):
        batch_id = self.batch(count=2)
        dying = self.runner('dying')

        def die(*args, **kwargs):
            raise SystemExit('killed')
        with fixtures.MockPatchObject(fake_cloud.FakeCloud, 'create_servers',
                                      die):
            self.assertRaises(SystemExit, dying.run_once)
        self.assertEqual({}, self.servers())
        batch = self.run_until_done(self.runner('r2'), batch_id)
        self.assertEqual('ACTIVE', batch.state)
        self.assertEqual(2, len(self.servers()))

    def test_two_runners_concurrently_no_duplicates(self):
        self.store.set(server_ticks=3)
        ids = [self.batch(count=3, key='k%d' % i) for i in range(4)]
        runners = [self.runner('a'), self.runner('b')]

        def loop(runner):
            for _ in range(15):
                runner.run_once()
        threads = [threading.Thread(target=loop, args=(r,)) for r in runners]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for batch_id in ids:
            self.assertEqual('ACTIVE',
                             self.queries.get(self.ctx, batch_id).state)
        self.assertEqual(12, len(self.servers()))
        self.assertEqual(1, self.calls('create_origin_volume'))

    def test_priority_order(self):
        user = self.batch(key='u', priority=10)
        ha = self.batch(key='h', priority=30)
        retry = self.batch(key='r', priority=20)
        self.assertEqual([ha, retry, user], self.queries.work(self.ctx))

    def test_origin_volume_error(self):
        real = fake_cloud.FakeCloud.get_volume

        def broken(cloud, volume_id):
            return dict(real(cloud, volume_id), status='error')
        with fixtures.MockPatchObject(fake_cloud.FakeCloud, 'get_volume',
                                      broken):
            batch = self.run_until_done(self.runner(), self.batch())
        self.assertEqual('ERROR', batch.state)
        self.assertIn('is error', batch.fault)
        self.assertEqual({}, self.store.read()['volumes'])
        self.assertIsNone(self.queries.origin_get(self.ctx, self.snapshot))

    def test_snapshot_gone_unavailable(self):
        with self.store.state() as data:
            data['snapshots'][self.snapshot]['status'] = 'deleting'
        batch = self.run_until_done(self.runner(), self.batch())
        self.assertEqual('ERROR', batch.state)
        self.assertIn('deleting, not available', batch.fault)
        self.assertEqual({}, self.store.read()['volumes'])


class TestDelete(RunnerTestCase):

    def setUp(self):
        super().setUp()
        self.r = self.runner()
        self.batch_id = self.batch(count=2)
        self.run_until_done(self.r, self.batch_id)

    def delete(self, purge):
        self.queries.request_delete(self.ctx, self.batch_id, PROJECT, purge)
        return self.run_until_done(self.r, self.batch_id)

    def test_delete_keeps_origin(self):
        batch = self.delete(purge=False)
        self.assertEqual('DELETED', batch.state)
        self.assertEqual(['DELETED'] * 2, [s.state for s in batch.servers])
        state = self.store.read()
        self.assertEqual({}, state['servers'])
        self.assertEqual(1, len(state['volumes']))
        self.assertEqual(1, len(state['images']))
        self.assertEqual({}, state['trusts'])

    def test_trust_and_origin_outlive_the_servers(self):
        # Nova deletes asynchronously (three looks here) and its computes
        # use the trust's tokens meanwhile: the trust and the origin go
        # once the servers have.
        self.store.set(delete_ticks=3)
        self.queries.request_delete(self.ctx, self.batch_id, PROJECT, True)
        self.r.run_once()
        self.assertEqual('DELETING',
                         self.queries.get(self.ctx, self.batch_id).state)
        state = self.store.read()
        self.assertEqual((2, 1, 1), (len(self.deleting()),
                                     len(state['trusts']),
                                     len(state['volumes'])))
        batch = self.run_until_done(self.r, self.batch_id)
        self.assertEqual('DELETED', batch.state)
        state = self.store.read()
        self.assertEqual(({}, {}, {}, {}),
                         (state['servers'], state['trusts'],
                          state['volumes'], state['images']))
        # Asked once each: not again while Nova is deleting them.
        self.assertEqual(2, self.calls('delete_server'))

    def test_a_failed_nova_delete_is_asked_again(self):
        self.store.set(delete_ticks=2)
        self.queries.request_delete(self.ctx, self.batch_id, PROJECT, False)
        self.r.run_once()
        # Nova's delete of one failed: the server is back in ERROR.
        failed = self.deleting()[0]
        with self.store.state() as data:
            data['servers'][failed].update(status='ERROR', task_state=None)
        batch = self.run_until_done(self.r, self.batch_id)
        self.assertEqual('DELETED', batch.state)
        self.assertEqual({}, self.store.read()['servers'])
        self.assertEqual(3, self.calls('delete_server'))

    def test_purge_removes_origin_unless_used(self):
        other = self.batch(count=1, key='other')
        self.run_until_done(self.r, other)
        self.delete(purge=True)
        state = self.store.read()
        self.assertEqual(1, len(state['volumes']))  # the other batch's
        self.queries.request_delete(self.ctx, other, PROJECT, True)
        self.run_until_done(self.r, other)
        state = self.store.read()
        self.assertEqual(({}, {}, {}), (state['volumes'], state['images'],
                                        state['servers']))
        self.assertIsNone(self.queries.origin_get(self.ctx, self.snapshot))
