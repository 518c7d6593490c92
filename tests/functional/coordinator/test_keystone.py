"""keystone mode: auth_token (faked here) plus the policy rules."""

import fixtures
import webob.dec

from fastboot_nova.coordinator import auth
from fastboot_nova.coordinator import deploy
from fastboot_nova.coordinator import exception
from tests.functional.coordinator import base


class FakeAuthToken:
    """Stands in for keystonemiddleware: the test sets the identity."""

    def __init__(self, app, conf):
        self.app = app

    @webob.dec.wsgify
    def __call__(self, req):
        user = req.headers.get('X-Test-User')
        if not user:
            return webob.Response(status=401, body=b'Authentication required',
                                  content_type='text/plain')
        req.headers['X-Identity-Status'] = 'Confirmed'
        req.headers['X-User-Id'] = user
        req.headers['X-Roles'] = req.headers.get('X-Test-Roles', 'service')
        return self.app


def keystone_conf(test, **overrides):
    conf = test.make_conf(**{'coordinator.auth_strategy': 'keystone',
                             'coordinator.shared_secret': None})
    auth.register_keystone_opts(conf)
    conf.set_override('www_authenticate_uri', 'http://keystone.test/v3',
                      group='keystone_authtoken')
    return conf


class TestKeystone(base.CoordinatorTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatch(
            'keystonemiddleware.auth_token.AuthProtocol', FakeAuthToken))
        conf = keystone_conf(self)
        self.ks = base.Client(self.make_app(conf), secret='')

    def call(self, method, path, user, roles='service', body=None):
        req = webob.Request.blank(path, method=method)
        req.headers['X-Test-User'] = user
        req.headers['X-Test-Roles'] = roles
        if body is not None:
            req.json = body
            req.content_type = 'application/json'
        return req.get_response(self.ks.app)

    def test_unauthenticated_401_json(self):
        resp = self.call('GET', '/v1/hosts', user='')
        self.assertError(401, resp)

    def test_owner_acts_for_its_host_others_403(self):
        resp = self.call('POST', '/v1/hosts', 'user-a',
                         body={'name': 'h1', 'address': 'a'})
        self.assertEqual(201, resp.status_int, resp.text)
        self.assertNotIn('token', resp.json['host'])
        self.assertEqual(200, self.call('PUT', '/v1/hosts/h1/heartbeat',
                                        'user-a').status_int)
        self.assertError(403, self.call('PUT', '/v1/hosts/h1/heartbeat',
                                        'user-b'))
        self.assertEqual(200, self.call('PUT', '/v1/hosts/h1/heartbeat',
                                        'admin-user', roles='admin')
                         .status_int)

    def test_reader_cannot_register(self):
        resp = self.call('POST', '/v1/hosts', 'user-r', roles='reader',
                         body={'name': 'h1', 'address': 'a'})
        self.assertError(403, resp)
        self.assertEqual(200, self.call('GET', '/v1/hosts', 'user-r',
                                        roles='reader').status_int)

    def test_same_user_registers_again_others_409(self):
        body = {'name': 'h1', 'address': '192.0.2.1'}
        self.assertEqual(201, self.call('POST', '/v1/hosts', 'user-a',
                                        body=body).status_int)
        self.assertEqual(200, self.call('POST', '/v1/hosts', 'user-a',
                                        body=body).status_int)
        self.assertError(409, self.call('POST', '/v1/hosts', 'user-b',
                                        body=body), 'reset-token')

    def test_admin_gives_the_host_to_another_user(self):
        body = {'name': 'h1', 'address': '192.0.2.1'}
        self.call('POST', '/v1/hosts', 'squatter', body=body)
        self.assertError(403, self.call('POST', '/v1/hosts/h1/token',
                                        'user-a', body={'owner': 'user-a'}))
        resp = self.call('POST', '/v1/hosts/h1/token', 'admin-user',
                         roles='admin', body={'owner': 'user-a'})
        self.assertEqual(200, resp.status_int, resp.text)
        self.assertIn('token', resp.json['host'])
        self.assertEqual(200, self.call('PUT', '/v1/hosts/h1/heartbeat',
                                        'user-a').status_int)
        self.assertError(403, self.call('PUT', '/v1/hosts/h1/heartbeat',
                                        'squatter'))
        self.assertEqual(200, self.call('POST', '/v1/hosts', 'user-a',
                                        body=body).status_int)

    def test_keystone_default_without_keystone_authtoken_refuses(self):
        # Issue 10 item 11: the default auth strategy with nothing to
        # reach Keystone fails at start and says what to set.
        conf = self.make_conf(**{'coordinator.auth_strategy': 'keystone',
                                 'coordinator.shared_secret': None})
        conf.clear_override('auth_strategy', group='coordinator')
        self.assertEqual('keystone', conf.coordinator.auth_strategy)
        e = self.assertRaises(exception.ConfigurationError,
                              deploy.make_app, conf, membership=False)
        self.assertIn('[keystone_authtoken]', e.msg)
        self.assertIn('auth_strategy = shared_secret', e.msg)
