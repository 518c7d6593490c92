"""The host agent against a fake coordinator, engine and probe."""

import json
import os

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

    def register(self, address, failure_domain=None):
        self._check()
        self.calls.append(('register', address, failure_domain))
        self.token = 'tok'

    def heartbeat(self):
        self._check()
        self.calls.append(('heartbeat',))
        if self.heartbeat_error:
            error, self.heartbeat_error = self.heartbeat_error, None
            raise error

    def report_cache(self, volume, export_url, warm=False, parent=False):
        self._check()
        self.calls.append(('report', volume, parent))

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

    def test_attach_reports_and_follows_the_assignment(self):
        self.client.assignment = parents(('p1', P1), ('p2', P2), None)
        self.agent.attach('img', self.origin)
        self.assertIn(('report', 'img', False), self.client.calls)
        self.assertEqual([('img', P1, (P2,))], self.reparents())

    def test_origin_assignment_points_the_cache_at_the_origin(self):
        self.agent.attach('img', self.origin)
        self.assertEqual([('img', self.origin)], self.reparents())

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
        self.assertEqual(['tok'], self.tokens)
        # With a token that still works, no second registration.
        self.agent.register()
        self.assertEqual(1, len([c for c in self.client.calls
                                 if c[0] == 'register']))

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
