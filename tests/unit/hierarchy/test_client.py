"""The coordinator client: requests, headers, errors."""

from unittest import mock

import fixtures
from keystoneauth1 import loading as ks_loading
from keystoneauth1 import session as ks_session
from oslo_config import cfg
from oslotest import base
import requests
from requests_mock.contrib import fixture as rm_fixture

from fastboot_nova.conf import coordinator as coordinator_conf
from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.hierarchy import client as client_mod
from fastboot_nova.hierarchy import host as host_mod

URL = 'http://coord.test:8790/v1'


class TestClient(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.mock = self.useFixture(rm_fixture.Fixture())
        self.client = client_mod.CoordinatorClient(URL, 'h1', secret='s3')

    def test_register_keeps_the_token_and_sends_the_secret(self):
        self.mock.post(URL + '/hosts', status_code=201,
                       json={'host': {'name': 'h1', 'token': 't0k'}})
        self.client.register('10.0.0.2', 'rack1')
        req = self.mock.last_request
        self.assertEqual({'name': 'h1', 'address': '10.0.0.2',
                          'failure_domain': 'rack1'}, req.json())
        self.assertEqual('s3', req.headers['X-Fastboot-Secret'])
        self.assertEqual('t0k', self.client.token)
        self.mock.put(URL + '/hosts/h1/heartbeat', json={})
        self.client.heartbeat()
        self.assertEqual('t0k', self.mock.last_request.headers[
            'X-Fastboot-Host-Token'])

    def test_parents(self):
        self.mock.get(URL + '/volumes/img/parents?host=h1', json={
            'volume': 'img', 'host': 'h1', 'depth': 2,
            'primary': {'host': 'h0', 'export_url': 'nbd://a:1/img'},
            'alternates': [{'origin': True}]})
        p = self.client.parents('img')
        self.assertEqual(('h0', 'nbd://a:1/img', 2),
                         (p.primary.host, p.primary.export_url, p.depth))
        self.assertTrue(p.alternates[0].is_origin)
        self.assertEqual(['nbd://a:1/img'], p.parent_urls())

    def test_parent_urls_end_at_the_origin(self):
        a = client_mod.Source(host='a', export_url='nbd://a:1/img')
        b = client_mod.Source(host='b', export_url='nbd://b:1/img')
        origin = client_mod.Source(host=None)
        self.assertEqual(['nbd://a:1/img', 'nbd://b:1/img'],
                         client_mod.Parents(a, (b, origin)).parent_urls())
        # Sources after the origin are never read: with the origin first,
        # a host reads from the origin only, whatever the alternates.
        self.assertEqual([], client_mod.Parents(origin, (a, b))
                         .parent_urls())
        self.assertEqual(['nbd://a:1/img'],
                         client_mod.Parents(a, (origin, b)).parent_urls())

    def test_report_cache_with_a_failed_over_parent(self):
        self.mock.put(URL + '/hosts/h1/caches/img', json={'cache': {}})
        self.client.report_cache('img', 'nbd://b:2/img', parent=None)
        self.assertEqual({'export_url': 'nbd://b:2/img', 'warm': False,
                          'parent': None}, self.mock.last_request.json())

    def test_errors(self):
        self.mock.put(URL + '/hosts/h1/heartbeat', status_code=404,
                      json={'error': {'code': 404,
                                      'message': 'no host h1'}})
        e = self.assertRaises(client_mod.CoordinatorError,
                              self.client.heartbeat)
        self.assertNotIsInstance(e, client_mod.CoordinatorUnavailable)
        self.assertIn('no host h1', str(e))
        self.mock.put(URL + '/hosts/h1/heartbeat', status_code=503,
                      text='down')
        self.assertRaises(client_mod.CoordinatorUnavailable,
                          self.client.heartbeat)
        self.mock.put(URL + '/hosts/h1/heartbeat',
                      exc=client_mod.requests.ConnectionError('refused'))
        self.assertRaises(client_mod.CoordinatorUnavailable,
                          self.client.heartbeat)

    def test_bad_host_name(self):
        self.assertRaises(exception.InvalidName,
                          client_mod.CoordinatorClient, URL, 'a/b')


class TestKeystoneSession(base.BaseTestCase):
    """Issue 10 item 11: hosts authenticate with a keystoneauth1 session."""

    def setUp(self):
        super().setUp()
        self.mock = self.useFixture(rm_fixture.Fixture())
        self.conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(self.conf)
        self.conf([], default_config_files=[])
        coordinator_conf.register_client_opts(self.conf)
        self.conf.set_override('auth_type', 'admin_token',
                               group='fastboot_coordinator')
        # The plugin's own options exist once its type is known.
        ks_loading.register_auth_conf_options(self.conf,
                                              'fastboot_coordinator')
        self.conf.register_opts(
            ks_loading.get_auth_plugin_conf_options('admin_token'),
            group='fastboot_coordinator')
        self.conf.set_override('token', 'ks-token',
                               group='fastboot_coordinator')
        self.conf.set_override('endpoint', URL,
                               group='fastboot_coordinator')

    def test_session_loaded_from_the_auth_section(self):
        session = host_mod.keystone_session(self.conf)
        self.assertIsInstance(session, ks_session.Session)
        client = client_mod.CoordinatorClient(URL, 'h1', token='host-tok',
                                              session=session)
        self.mock.put(URL + '/hosts/h1/heartbeat', json={})
        client.heartbeat()
        headers = self.mock.last_request.headers
        self.assertEqual('ks-token', headers['X-Auth-Token'])
        self.assertNotIn('X-Fastboot-Secret', headers)

    def test_no_auth_type_means_no_session(self):
        self.conf.clear_override('auth_type', group='fastboot_coordinator')
        self.assertIsNone(host_mod.keystone_session(self.conf))

    def test_connection_failure_is_unavailable(self):
        session = host_mod.keystone_session(self.conf)
        client = client_mod.CoordinatorClient(URL, 'h1', session=session)
        self.mock.put(URL + '/hosts/h1/heartbeat',
                      exc=requests.exceptions.ConnectionError('down'))
        self.assertRaises(client_mod.CoordinatorUnavailable,
                          client.heartbeat)
        self.mock.put(URL + '/hosts/h1/heartbeat', status_code=401,
                      json={'error': {'code': 401, 'message': 'no'}})
        self.assertRaises(client_mod.CoordinatorError, client.heartbeat)


URL2 = 'http://coord2.test:8790/v1'


class TestFailover(base.BaseTestCase):
    """Two coordinator replicas: a host survives the loss of either."""

    def setUp(self):
        super().setUp()
        self.mock = self.useFixture(rm_fixture.Fixture())
        self.client = client_mod.CoordinatorClient([URL, URL2], 'h1',
                                                   secret='s3')

    def test_a_replica_refusing_connections_fails_over_to_the_next(self):
        self.mock.put(URL + '/hosts/h1/heartbeat',
                      exc=requests.ConnectionError('refused'))
        self.mock.put(URL2 + '/hosts/h1/heartbeat', json={})
        self.client.heartbeat()
        self.assertEqual(URL2 + '/hosts/h1/heartbeat',
                         self.mock.last_request.url)
        self.assertEqual(URL2, self.client.url)

    def test_the_replica_that_answered_is_kept(self):
        down = self.mock.put(URL + '/hosts/h1/heartbeat',
                             exc=requests.ConnectionError('refused'))
        up = self.mock.put(URL2 + '/hosts/h1/heartbeat', json={})
        for _ in range(3):
            self.client.heartbeat()
        # Tried once; later calls go straight to the replica that works.
        self.assertEqual(1, down.call_count)
        self.assertEqual(3, up.call_count)

    def test_5xx_fails_over(self):
        self.mock.put(URL + '/hosts/h1/caches/img', status_code=502,
                      text='bad gateway')
        self.mock.put(URL2 + '/hosts/h1/caches/img',
                      json={'cache': {'volume': 'img'}})
        self.assertEqual({'cache': {'volume': 'img'}},
                         self.client.report_cache('img', 'nbd://a:1/img'))

    def test_4xx_is_an_answer_not_a_failure(self):
        # A replica that answers is authoritative (both share one
        # database): a refusal is not retried on the other.
        self.mock.put(URL + '/hosts/h1/heartbeat', status_code=404,
                      json={'error': {'code': 404, 'message': 'no host'}})
        other = self.mock.put(URL2 + '/hosts/h1/heartbeat', json={})
        e = self.assertRaises(client_mod.CoordinatorError,
                              self.client.heartbeat)
        self.assertNotIsInstance(e, client_mod.CoordinatorUnavailable)
        self.assertEqual(0, other.call_count)

    def test_all_down_is_unavailable_naming_every_replica(self):
        for url in (URL, URL2):
            self.mock.put(url + '/hosts/h1/heartbeat',
                          exc=requests.ConnectionError('refused'))
        e = self.assertRaises(client_mod.CoordinatorUnavailable,
                              self.client.heartbeat)
        self.assertIn('coord.test', str(e))
        self.assertIn('coord2.test', str(e))

    def test_back_to_the_first_when_the_second_fails(self):
        self.mock.put(URL + '/hosts/h1/heartbeat',
                      exc=requests.ConnectionError('refused'))
        self.mock.put(URL2 + '/hosts/h1/heartbeat', json={})
        self.client.heartbeat()
        self.mock.put(URL + '/hosts/h1/heartbeat', json={})
        self.mock.put(URL2 + '/hosts/h1/heartbeat',
                      exc=requests.ConnectionError('refused'))
        self.client.heartbeat()
        self.assertEqual(URL, self.client.url)

    def test_the_host_token_goes_to_every_replica(self):
        # Replicas share the database: the token one issued is valid on
        # the other.
        self.mock.post(URL + '/hosts', status_code=201,
                       json={'host': {'name': 'h1', 'token': 't0k'}})
        self.client.register('10.0.0.2')
        self.mock.put(URL + '/hosts/h1/heartbeat',
                      exc=requests.ConnectionError('refused'))
        self.mock.put(URL2 + '/hosts/h1/heartbeat', json={})
        self.client.heartbeat()
        self.assertEqual('t0k', self.mock.last_request.headers[
            'X-Fastboot-Host-Token'])

    def test_one_url_string_still_works(self):
        client = client_mod.CoordinatorClient(URL + '/', 'h1')
        self.assertEqual([URL], client.urls)

    def test_no_url_is_refused(self):
        self.assertRaises(ValueError, client_mod.CoordinatorClient, [], 'h1')


class TestCoordinatorUrlOption(base.BaseTestCase):
    """``[fastboot] coordinator_url`` takes one URL or a list."""

    def _conf(self, value):
        conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(conf)
        conf([], default_config_files=[])
        conf.set_override('coordinator_url', value, group='fastboot')
        return conf

    def test_a_list(self):
        conf = self._conf('%s,%s' % (URL, URL2))
        self.assertEqual([URL, URL2], conf.fastboot.coordinator_url)

    def test_one_url(self):
        self.assertEqual([URL], self._conf(URL).fastboot.coordinator_url)

    def test_not_http_is_refused(self):
        self.assertRaises(ValueError, self._conf, 'ftp://c/v1')


class TestMakeAgent(base.BaseTestCase):
    """host.make_agent builds the client from [fastboot]."""

    def _conf(self, **overrides):
        conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(conf)
        conf([], default_config_files=[])
        conf.set_override('export_address', '192.0.2.1', group='fastboot')
        for key, value in overrides.items():
            conf.set_override(key, value, group='fastboot')
        return conf

    def _agent(self, conf):
        engine = mock.Mock(state_path=self.useFixture(
            fixtures.TempDir()).path)
        return host_mod.make_agent(conf, engine, host='h1')

    def test_every_replica_url_reaches_the_client(self):
        agent = self._agent(self._conf(coordinator_url=[URL, URL2]))
        self.assertEqual([URL, URL2], agent.client.urls)

    def test_request_timeout_from_the_configuration(self):
        # Behind Keystone, a replica validates the host's token before it
        # answers: seconds on a busy control plane. The heartbeat must not
        # give up first (measured on ministack: 4-5 s per request).
        agent = self._agent(self._conf(coordinator_url=URL,
                                       coordinator_timeout=30))
        self.assertEqual(30, agent.client.timeout)

    def test_default_timeout_outlasts_a_token_validation(self):
        agent = self._agent(self._conf(coordinator_url=URL))
        self.assertGreaterEqual(agent.client.timeout, 15)
