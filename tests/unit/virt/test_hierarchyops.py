"""The compute host's agent (hierarchyops) against fakes.

A fake coordinator client and engine under the real HostAgent and
CacheOps; the functional-nova tests run the real coordinator and engine.
"""

import os
import threading

import fixtures
from oslo_config import cfg
from oslotest import base

from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.hierarchy import agent as agent_mod
from fastboot_nova.hierarchy import host as host_mod
from fastboot_nova.virt import cacheops as cacheops_mod
from tests.unit import fakes
from tests.unit.hierarchy import test_agent

P1 = 'nbd://10.0.0.2:10809/cinder-vol'
IMAGE = 'cinder-vol'
SECRET = 'not-for-logs-7f3a'


def make_conf(**overrides):
    conf = cfg.ConfigOpts()
    fastboot_conf.register_opts(conf)
    conf([], project='fastboot', default_config_files=[])
    overrides.setdefault('use_cachegroup', True)
    overrides.setdefault('use_cache_snapshot', True)
    for key, value in overrides.items():
        conf.set_override(key, value, group='fastboot')
    return conf


class TestHierarchyOps(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.log = self.useFixture(fixtures.FakeLogger(
            level='INFO', format='%(levelname)s %(message)s'))
        tmp = self.useFixture(fixtures.TempDir()).path
        self.origin = os.path.join(tmp, 'origin.raw')
        open(self.origin, 'w').close()
        self.engine = fakes.FakeEngine(state_path=tmp)
        self.client = test_agent.FakeClient()
        self.client.assignment = test_agent.parents(('p1', P1), None)
        self.client.timeout = 1.0
        self.made = []

    def make_agent(self, conf, engine, host=None):
        self.made.append(host)
        return agent_mod.HostAgent(engine, self.client, '10.0.0.9',
                                   interval=0.2, probe=lambda url: True)

    def cacheops(self, make_agent=None, **overrides):
        conf = make_conf(**overrides)
        ops = cacheops_mod.CacheOps(conf, engine_factory=lambda c: self.engine)
        if make_agent is not False:
            ops.hierarchy._make_agent = make_agent or self.make_agent
        self.addCleanup(ops.hierarchy.stop)
        return ops

    def parents_of(self, image):
        (cached,) = [i for i in self.engine.list_images() if i.name == image]
        return cached.parents

    def test_without_coordinator_nothing_changes(self):
        ops = self.cacheops()
        ops.hierarchy.start('cmp1')
        self.assertEqual([], self.made)
        self.assertIsNone(ops.prepare(IMAGE, self.origin))
        # The engine caches the image when the disk is made, as before.
        self.assertEqual({}, self.engine.images)
        ops.hierarchy.stop()
        self.assertEqual([], self.client.calls)

    def test_disabled_cache_group_starts_no_agent(self):
        ops = self.cacheops(coordinator_url='http://c:9870/v1',
                            use_cache_snapshot=False)
        ops.hierarchy.start('cmp1')
        self.assertEqual([], self.made)

    def test_first_cache_joins_the_tree_before_the_disk(self):
        ops = self.cacheops(coordinator_url='http://c:9870/v1')
        ops.hierarchy.start('cmp1')
        self.assertEqual(['cmp1'], self.made)
        self.assertEqual(('register', '10.0.0.9', None), self.client.calls[0])
        cached = ops.prepare(IMAGE, self.origin)
        self.assertEqual(IMAGE, cached.name)
        verbs = [c[0] for c in self.engine.calls]
        self.assertLess(verbs.index('add_image'), verbs.index('reparent'))
        self.assertIn(('report', IMAGE, False), self.client.calls)
        self.assertEqual((P1,), self.parents_of(IMAGE))

    def test_start_rejoins_the_caches_that_exist(self):
        # Cached before nova-compute restarted; the engine knows, memory
        # does not.
        self.engine.add_image(IMAGE, self.origin)
        ops = self.cacheops(coordinator_url='http://c:9870/v1')
        ops.hierarchy.start('cmp1')
        self.assertEqual((P1,), self.parents_of(IMAGE))
        self.assertIn(IMAGE, ops.hierarchy.agent.following)

    def test_loop_runs_until_stopped(self):
        ops = self.cacheops(coordinator_url='http://c:9870/v1')
        ops.hierarchy.start('cmp1')
        thread = ops.hierarchy._thread
        self.assertTrue(thread.daemon)
        beats = threading.Event()
        heartbeat = self.client.heartbeat

        def counting():
            heartbeat()
            beats.set()
        self.client.heartbeat = counting
        self.assertTrue(beats.wait(30))
        ops.hierarchy.stop()
        self.assertFalse(thread.is_alive())
        ops.hierarchy.stop()  # a second stop is a no-op
        # Started again (nova-compute restarted in one process): a new loop.
        ops.hierarchy.start('cmp1')
        self.assertIsNot(thread, ops.hierarchy._thread)
        self.assertTrue(ops.hierarchy._thread.is_alive())

    def test_idle_cache_reopened_at_the_origin_follows_its_parent_again(self):
        ops = self.cacheops(coordinator_url='http://c:9870/v1')
        ops.hierarchy.start('cmp1')
        ops.prepare(IMAGE, self.origin)
        self.assertEqual((P1,), self.parents_of(IMAGE))
        # No disk uses the cache: prepare re-opens the origin, which drops
        # the parents; the agent must put them back.
        ops.prepare(IMAGE, self.origin)
        self.assertEqual([('reparent', IMAGE, P1),
                          ('reparent', IMAGE, self.origin),
                          ('reparent', IMAGE, P1)],
                         [c for c in self.engine.calls
                          if c[0] == 'reparent'])
        self.assertEqual((P1,), self.parents_of(IMAGE))

    def test_idle_cache_leaves_the_tree_then_goes(self):
        ops = self.cacheops(coordinator_url='http://c:9870/v1')
        ops.hierarchy.start('cmp1')
        ops.prepare(IMAGE, self.origin)
        self.engine.create('nova-1', IMAGE, self.origin)
        # In use: kept.
        self.assertFalse(ops.remove_if_idle(IMAGE))
        self.engine.destroy('nova-1')
        self.assertTrue(ops.remove_if_idle(IMAGE))
        self.assertEqual([], self.engine.list_images())
        self.assertIn(('drop', IMAGE), self.client.calls)
        self.assertNotIn(IMAGE, ops.hierarchy.agent.following)
        # Gone already: nothing to do.
        self.assertFalse(ops.remove_if_idle(IMAGE))

    def test_keep_idle_caches(self):
        ops = self.cacheops(keep_idle_caches=True)
        ops.engine.add_image(IMAGE, self.origin)
        self.assertFalse(ops.remove_if_idle(IMAGE))
        self.assertEqual([IMAGE],
                         [i.name for i in self.engine.list_images()])

    def test_idle_cache_engine_failure_keeps_it(self):
        ops = self.cacheops()
        ops.engine.add_image(IMAGE, self.origin)
        self.useFixture(fixtures.MockPatchObject(
            self.engine, 'remove_image',
            side_effect=exception.DaemonError(reason='daemon gone')))
        self.assertFalse(ops.remove_if_idle(IMAGE))
        self.assertIn('Could not remove idle cache %s' % IMAGE,
                      self.log.output)

    def test_coordinator_down_reads_from_the_origin(self):
        self.client.down = True
        ops = self.cacheops(coordinator_url='http://c:9870/v1')
        ops.hierarchy.start('cmp1')
        self.assertIn('Coordinator unusable', self.log.output)
        cached = ops.prepare(IMAGE, self.origin)
        self.assertEqual(IMAGE, cached.name)
        self.assertEqual((), self.parents_of(IMAGE))
        self.assertIn('reading from the origin', self.log.output)

    def test_real_client_unreachable_logs_no_secret(self):
        # Nothing listens on port 9 of localhost: connection refused.
        ops = self.cacheops(make_agent=False,
                            coordinator_url='http://127.0.0.1:9/v1',
                            coordinator_secret=SECRET,
                            export_address='10.0.0.9',
                            heartbeat_interval=60)
        host_mod.save_token(self.engine, 'tok-' + SECRET)
        ops.hierarchy.start('cmp1')
        self.assertEqual('cmp1', ops.hierarchy.agent.client.host)
        cached = ops.prepare(IMAGE, self.origin)
        self.assertEqual((), cached.parents)
        self.assertIn('WARNING Coordinator unusable for ' + IMAGE,
                      self.log.output)
        self.assertNotIn(SECRET, self.log.output)

    def test_host_name_option_wins_over_nova_host(self):
        ops = self.cacheops(make_agent=False,
                            coordinator_url='http://127.0.0.1:9/v1',
                            export_address='10.0.0.9', host_name='rack1-7',
                            heartbeat_interval=60)
        ops.hierarchy.start('cmp1')
        self.assertEqual('rack1-7', ops.hierarchy.agent.client.host)

    def test_coordinator_without_export_address_is_refused(self):
        ops = self.cacheops(make_agent=False,
                            coordinator_url='http://127.0.0.1:9/v1')
        self.assertRaises(exception.FastbootException,
                          ops.hierarchy.start, 'cmp1')
        self.assertIsNone(ops.hierarchy._thread)
