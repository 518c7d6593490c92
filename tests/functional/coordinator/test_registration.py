"""A host name can always be recovered (issue 10, item 4).

Registration is idempotent for the host that proves its own token (or,
with keystone, its own user); a lost reply costs nothing when the host
made its token first; an operator re-issues a token with
``fastboot-coordinator-manage host reset-token`` or, with the admin role,
``POST /v1/hosts/{host}/token``.
"""

import io
import os

import fixtures

from fastboot_nova.coordinator import manage
from fastboot_nova.hierarchy import agent as agent_mod
from fastboot_nova.hierarchy import client as client_mod
from tests.functional.coordinator import base

OWN = 'A' * 43


class TestRegistration(base.CoordinatorTestCase):

    def register(self, name='h1', token=None, address='192.0.2.1'):
        return self.client.request('POST', '/v1/hosts',
                                   {'name': name, 'address': address},
                                   token=token)

    def heartbeat(self, token, name='h1'):
        return self.client.request('PUT', '/v1/hosts/%s/heartbeat' % name,
                                   {}, token=token)

    def test_again_with_its_own_token_is_idempotent(self):
        token = self.register().json['host']['token']
        resp = self.register(token=token, address='192.0.2.7')
        self.assertEqual(200, resp.status_int, resp.text)
        self.assertEqual('192.0.2.7', resp.json['host']['address'])
        self.assertNotIn('token', resp.json['host'])
        self.assertEqual(200, self.heartbeat(token).status_int)

    def test_a_squat_or_a_lost_token_is_a_409_that_says_what_to_do(self):
        self.register()
        for token in (None, 'B' * 43):
            resp = self.register(token=token)
            self.assertError(409, resp, 'host reset-token h1')
        hosts = self.client.request('GET', '/v1/hosts').json['hosts']
        self.assertEqual(['192.0.2.1'], [h['address'] for h in hosts])

    def test_a_token_made_by_the_host_survives_a_lost_reply(self):
        resp = self.register(token=OWN)
        self.assertEqual(201, resp.status_int, resp.text)
        # Never echoed: the host has it.
        self.assertNotIn('token', resp.json['host'])
        # The reply was lost: the retry is the same request.
        self.assertEqual(200, self.register(token=OWN).status_int)
        self.assertEqual(200, self.heartbeat(OWN).status_int)

    def test_a_weak_proposed_token_is_replaced(self):
        resp = self.register(token='short')
        self.assertEqual(201, resp.status_int)
        token = resp.json['host']['token']
        self.assertNotEqual('short', token)
        self.assertError(403, self.heartbeat('short'))

    def test_api_reset_needs_an_operator_with_shared_secret(self):
        self.register()
        resp = self.client.request('POST', '/v1/hosts/h1/token')
        self.assertError(403, resp, 'fastboot-coordinator-manage host '
                                    'reset-token')

    def test_manage_reset_token(self):
        old = self.register().json['host']['token']
        conf_file = os.path.join(self.state_path, 'c.conf')
        with open(conf_file, 'w') as f:
            f.write('[coordinator]\nstate_path = %s\n' % self.state_path)
        out = self.useFixture(fixtures.MockPatch('sys.stdout',
                                                 io.StringIO())).mock
        self.assertEqual(0, manage.main(['--config-file', conf_file, 'host',
                                         'reset-token', 'h1']))
        new = out.getvalue().strip()
        self.assertEqual(43, len(new))
        self.assertError(403, self.heartbeat(old))
        self.assertEqual(200, self.heartbeat(new).status_int)
        # The squatter lost it; the right host registers again with it.
        self.assertEqual(200, self.register(token=new).status_int)
        err = self.useFixture(fixtures.MockPatch('sys.stderr',
                                                 io.StringIO())).mock
        self.assertEqual(1, manage.main(['--config-file', conf_file, 'host',
                                         'reset-token', 'nope']))
        self.assertIn('nope', err.getvalue())

    def test_agent_registers_once_across_a_lost_reply(self):
        """The real client and agent; the first reply never arrives."""
        kept = []
        client = client_mod.CoordinatorClient('http://coordinator/v1', 'h9',
                                              secret=base.SECRET)
        client.session = _WebobSession(self.app, drop_first=True)
        agent = agent_mod.HostAgent(None, client, '192.0.2.9',
                                    on_token=kept.append)
        self.assertRaises(client_mod.CoordinatorUnavailable, agent.register)
        # The token was kept before the request; the retry recovers.
        agent.register()
        self.assertEqual(1, len(set(kept)))
        self.assertEqual(200, self.heartbeat(kept[0], name='h9').status_int)


class _WebobSession:
    """A requests-like session calling the WSGI app in-process."""

    def __init__(self, app, drop_first=False):
        self.app = app
        self.drop = drop_first

    def request(self, method, url, json=None, params=None, timeout=None,
                headers=None):
        import requests
        import webob
        path = url.split('://', 1)[1].split('/', 1)[1]
        req = webob.Request.blank('/' + path, method=method,
                                  headers=headers or {})
        if params:
            req.query_string = '&'.join('%s=%s' % kv for kv in params.items())
        if json is not None:
            req.json = json
            req.content_type = 'application/json'
        resp = req.get_response(self.app)
        if self.drop:
            self.drop = False
            raise requests.ConnectionError('reply lost')
        out = requests.Response()
        out.status_code = resp.status_int
        out._content = resp.body
        return out
