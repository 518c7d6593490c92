"""The host agent against a fake coordinator, engine and probe."""

import json
import os
import threading
import time

import fixtures
from oslotest import base

from fastboot_nova.hierarchy import agent as agent_mod
from fastboot_nova.hierarchy import client as client_mod
from tests.unit import fakes

P1 = 'nbd://10.0.0.2:10809/img'
P2 = 'nbd://10.0.0.3:10809/img'


def parents(*hosts):
    """Parents from (name, url) pairs; None is the origin."""
    sources = [client_mod.Source(host=None) if h is None else
               client_mod.Source(host=h[0], export_url=h[1]) for h in hosts]
    return client_mod.Parents(primary=sources[0],
                              alternates=tuple(sources[1:]))


class FakeClient:

    def __init__(self):
        self.token = None
        self.host = 'h1'
        self.calls = []
        self.assignment = parents(None)
        self.down = False
        self.heartbeat_error = None

    def _check(self):
        if self.down:
            raise client_mod.CoordinatorUnavailable(url='x', reason='down')

    @staticmethod
    def new_token():
        return 'own-token'

    def register(self, address, failure_domain=None):
        self._check()
        self.calls.append(('register', address, failure_domain))
        self.token = self.token or 'tok'

    def heartbeat(self):
        self._check()
        self.calls.append(('heartbeat',))
        if self.heartbeat_error:
            error, self.heartbeat_error = self.heartbeat_error, None
            raise error

    def report_cache(self, volume, export_url, warm=False, parent=False):
        self._check()
        self.calls.append(('report', volume, parent))

    def drop_cache(self, volume):
        self._check()
        self.calls.append(('drop', volume))

    def parents(self, volume):
        self._check()
        return self.assignment


class TestHostAgent(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.origin = os.path.join(tmp, 'origin.raw')
        open(self.origin, 'w').close()
        self.engine = fakes.FakeEngine(state_path=tmp)
        self.client = FakeClient()
        self.alive = {P1: True, P2: True}
        self.events = os.path.join(tmp, 'events.jsonl')
        self.tokens = []
        self.agent = agent_mod.HostAgent(
            self.engine, self.client, '10.0.0.9',
            probe=lambda url: self.alive[url], events_path=self.events,
            on_token=self.tokens.append)

    def reparents(self):
        return [c[1:] for c in self.engine.calls if c[0] == 'reparent']

    def read_events(self):
        with open(self.events) as f:
            return [json.loads(line) for line in f]

    def last_event(self):
        e = self.read_events()[-1]
        return (e['old_parent'], e['new_parent'], e['reason'])

    def other_agent(self, **kwargs):
        """Another process's agent of the same host: same engine, files."""
        client = FakeClient()
        client.assignment = self.client.assignment
        return client, agent_mod.HostAgent(
            self.engine, client, '10.0.0.9',
            probe=lambda url: self.alive[url], events_path=self.events,
            **kwargs)

    def test_leave_drops_the_cache_at_the_coordinator(self):
        self.agent.attach('img', self.origin)
        self.agent.leave('img')
        self.assertEqual(('drop', 'img'), self.client.calls[-1])
        self.assertNotIn('img', self.agent.following)
        # Coordinator down: a warning, nothing raised.
        self.client.down = True
        self.agent.leave('img')

    def test_cache_removed_by_another_process_leaves_the_tree(self):
        self.agent.attach('img', self.origin)
        self.engine.remove_image('img')  # ``fastboot image remove``
        self.agent.check()
        self.assertIn(('drop', 'img'), self.client.calls)
        self.assertEqual({}, self.agent.following)
        # Once: the next round has nothing to leave.
        self.agent.check()
        self.assertEqual(1, self.client.calls.count(('drop', 'img')))

    def test_attach_reports_and_follows_the_assignment(self):
        self.client.assignment = parents(('p1', P1), ('p2', P2), None)
        self.agent.attach('img', self.origin)
        self.assertIn(('report', 'img', False), self.client.calls)
        self.assertEqual([('img', P1, (P2,))], self.reparents())

    def test_parents_that_are_no_host_s_export_are_refused(self):
        # What a malicious host reported, passed on by the coordinator:
        # another engine's local socket, another image, the host's own
        # export. None of them is read; the good alternate is.
        self.client.assignment = parents(
            ('evil', 'nbd+unix:///otherimg?socket=/var/lib/x/nbd.sock'),
            ('evil2', 'nbd://10.0.0.7:10809/otherimg'),
            ('evil3', '/dev/sda'),
            ('p2', P2), None)
        self.agent.attach('img', self.origin)
        self.assertEqual([('img', P2)], self.reparents())
        self.assertEqual('p2', self.agent.following['img'].primary.host)

    def test_only_refused_parents_means_the_origin(self):
        self.client.assignment = parents(
            ('evil', 'nbd+unix:///img?socket=/run/nbd.sock'), None)
        self.agent.attach('img', self.origin)
        self.assertEqual([], self.reparents())
        self.assertIsNone(self.agent.following['img'].primary.host)

    def test_probe_never_connects_to_a_local_socket(self):
        self.assertFalse(agent_mod.probe(
            'nbd+unix:///img?socket=/nonexistent/nbd.sock'))
        self.assertFalse(agent_mod.probe('/dev/sda'))

    def test_origin_assignment_of_a_new_cache_changes_nothing(self):
        # A new cache reads from the origin already.
        self.agent.attach('img', self.origin)
        self.assertEqual([], self.reparents())
        self.assertEqual(parents(None), self.agent.following['img'])
        self.assertFalse(os.path.exists(self.events))

    def test_origin_assignment_points_the_cache_at_the_origin(self):
        self.client.assignment = parents(('p1', P1), None)
        self.agent.attach('img', self.origin)
        self.client.assignment = parents(None)
        self.agent.check()
        self.assertEqual(('img', self.origin), self.reparents()[-1])
        self.assertEqual(('p1', None, 'rebalanced'), self.last_event())

    def test_coordinator_down_keeps_the_origin(self):
        self.client.down = True
        self.agent.attach('img', self.origin)
        self.assertEqual([], self.reparents())
        self.assertIsNone(self.agent.following['img'])
        # Back: the next round joins the tree.
        self.client.down = False
        self.client.assignment = parents(('p1', P1), None)
        self.agent.check()
        self.assertEqual([('img', P1)], self.reparents())

    def test_every_round_restores_the_exports(self):
        self.agent.attach('img', self.origin)
        self.agent.check()
        self.assertIn(('ensure_exports',), self.engine.calls)
        # A failure there is logged; the round goes on.
        self.engine.exports_error = 'no relay'
        self.client.assignment = parents(('p1', P1), None)
        self.agent.check()
        self.assertEqual(('img', P1), self.reparents()[-1])

    def test_dead_parent_fails_over_to_the_next_live_source(self):
        self.client.assignment = parents(('p1', P1), ('p2', P2), None)
        self.agent.attach('img', self.origin)
        self.alive[P1] = False
        # The coordinator has not noticed yet: it still says p1.
        self.agent.check()
        self.assertEqual(('img', P2), self.reparents()[-1])
        self.assertIn(('report', 'img', 'p2'), self.client.calls)
        with open(self.events) as f:
            event = json.loads(f.readlines()[-1])
        self.assertEqual(('p1', 'p2', 'parent p1 unreachable'),
                         (event['old_parent'], event['new_parent'],
                          event['reason']))

    def test_all_parents_dead_means_the_origin(self):
        self.client.assignment = parents(('p1', P1), ('p2', P2), None)
        self.agent.attach('img', self.origin)
        self.alive[P1] = self.alive[P2] = False
        self.client.down = True  # and the coordinator is gone too
        self.agent.check()
        self.assertEqual(('img', self.origin), self.reparents()[-1])

    def test_rebalanced_assignment_is_applied(self):
        self.agent.attach('img', self.origin)
        self.client.assignment = parents(('p2', P2), None)
        self.agent.check()
        self.assertEqual(('img', P2), self.reparents()[-1])
        count = len(self.reparents())
        self.agent.check()  # unchanged: no re-parenting
        self.assertEqual(count, len(self.reparents()))

    def test_register_keeps_the_token(self):
        self.agent.register()
        # Made and kept before the registration is sent.
        self.assertEqual(['own-token'], self.tokens)
        # With a token that still works, no second registration.
        self.agent.register()
        self.assertEqual(1, len([c for c in self.client.calls
                                 if c[0] == 'register']))

    def test_token_issued_by_the_coordinator_replaces_the_own(self):
        # A coordinator that does not take the host's token issues one.
        self.client.new_token = lambda: None
        self.agent.register()
        self.assertEqual([None, 'tok'], self.tokens)

    def test_registration_retried_with_the_same_token(self):
        self.client.down = True
        self.assertRaises(client_mod.CoordinatorUnavailable,
                          self.agent.register)
        self.client.down = False
        self.agent.register()
        self.assertEqual(['own-token'], self.tokens)
        self.assertEqual('own-token', self.client.token)

    def test_refused_heartbeat_registers_again_and_rejoins(self):
        self.agent.register()
        self.agent.attach('img', self.origin)
        self.client.heartbeat_error = client_mod.CoordinatorError(
            url='x', reason='404 host h1 is not registered')
        self.agent.check()
        self.assertEqual(2, len([c for c in self.client.calls
                                 if c[0] == 'register']))

    def test_images_cached_by_other_processes_join_too(self):
        self.engine.add_image('img', self.origin)
        self.client.assignment = parents(('p1', P1), None)
        self.agent.check()
        self.assertEqual([('img', P1)], self.reparents())

    def test_assignment_applied_by_another_process_is_not_repeated(self):
        # `fastboot create` embeds an agent that joins the tree and
        # applies the assignment; the `fastboot agent` process then finds
        # the image: same assignment, so no second re-parent, no second
        # "assigned" event.
        self.client.assignment = parents(('p1', P1), ('p2', P2), None)
        self.agent.attach('img', self.origin)
        self.assertEqual([(None, 'p1', 'assigned')],
                         [(e['old_parent'], e['new_parent'], e['reason'])
                          for e in self.read_events()])
        client, daemon = self.other_agent()
        daemon.check()
        self.assertIn(('report', 'img', False), client.calls)
        self.assertEqual(1, len(self.reparents()))
        self.assertEqual(1, len(self.read_events()))
        self.assertEqual(self.client.assignment, daemon.following['img'])
        # A real change later is one event, from the process that made it.
        client.assignment = parents(('p2', P2), None)
        daemon.check()
        self.assertEqual([('img', P2)], self.reparents()[1:])
        self.assertEqual(2, len(self.read_events()))
        self.assertEqual(('p1', 'p2', 'rebalanced'), self.last_event())

    def test_new_process_names_the_parent_the_engine_reads_from(self):
        self.client.assignment = parents(('p1', P1), None)
        self.agent.attach('img', self.origin)
        client, daemon = self.other_agent()
        client.assignment = parents(('p2', P2), ('p1', P1), None)
        daemon.check()
        self.assertEqual(('img', P2, (P1,)), self.reparents()[-1])
        self.assertEqual(('p1', 'p2', 'assigned'), self.last_event())

    def test_agents_of_one_host_change_a_cache_one_at_a_time(self):
        # Both processes join the same new image at once. Without the
        # host-wide lock both would see the cache on the origin, both
        # re-parent it and both log "assigned".
        lock_path = os.path.join(os.path.dirname(self.events), 'follow.lock')
        self.client.assignment = parents(('p1', P1), None)
        self.engine.add_image('img', self.origin)
        real_reparent = self.engine.reparent

        def slow_reparent(*args, **kwargs):
            time.sleep(0.3)
            return real_reparent(*args, **kwargs)
        self.useFixture(fixtures.MonkeyPatch(
            'tests.unit.fakes.FakeEngine.reparent',
            lambda engine, *a, **k: slow_reparent(*a, **k)))
        agents = [self.other_agent(lock_path=lock_path)[1]
                  for _ in range(2)]
        threads = [threading.Thread(target=a.check) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(1, len(self.reparents()))
        self.assertEqual([(None, 'p1', 'assigned')],
                         [(e['old_parent'], e['new_parent'], e['reason'])
                          for e in self.read_events()])
