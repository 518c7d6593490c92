"""The coordinator API on a real SQLite database, in-process."""

import os
import shutil

from tests.functional.coordinator import base


class TestHosts(base.CoordinatorTestCase):

    def test_register_returns_token_once(self):
        resp = self.client.register('h1', failure_domain='dc1/r1')
        host = resp.json['host']
        self.assertEqual('h1', host['name'])
        self.assertEqual('dc1/r1', host['failure_domain'])
        self.assertTrue(host['alive'])
        self.assertTrue(host['token'])
        self.assertIn('/v1/hosts/h1', resp.headers['Location'])
        listed = self.client.request('GET', '/v1/hosts').json['hosts']
        self.assertEqual(['h1'], [h['name'] for h in listed])
        self.assertNotIn('token', listed[0])
        shown = self.client.request('GET', '/v1/hosts/h1').json['host']
        self.assertNotIn('token', shown)

    def test_token_stored_hashed(self):
        token = self.client.register('h1').json['host']['token']
        with open(self.db_path, 'rb') as f:
            self.assertNotIn(token.encode(), f.read())

    def test_register_twice_conflicts(self):
        self.client.register('h1')
        resp = self.client.request('POST', '/v1/hosts',
                                   {'name': 'h1', 'address': 'x'})
        self.assertError(409, resp, 'already registered')

    def test_heartbeat(self):
        self.client.register('h1')
        resp = self.client.request('PUT', '/v1/hosts/h1/heartbeat',
                                   host='h1')
        self.assertEqual(200, resp.status_int, resp.text)
        resp = self.client.request('PUT', '/v1/hosts/h1/heartbeat',
                                   {'state': 'maintenance'}, host='h1')
        self.assertEqual('maintenance', resp.json['host']['state'])
        self.assertFalse(resp.json['host']['alive'])

    def test_heartbeat_after_deregister_is_404(self):
        self.client.register('h1')
        token = self.client.tokens['h1']
        resp = self.client.request('DELETE', '/v1/hosts/h1', host='h1')
        self.assertEqual(204, resp.status_int, resp.text)
        resp = self.client.request('PUT', '/v1/hosts/h1/heartbeat',
                                   token=token)
        self.assertError(404, resp, 'deregistered')

    def test_liveness_from_heartbeat_age(self):
        self.freeze_time()
        self.client.register('h1')
        self.advance(31)
        host = self.client.request('GET', '/v1/hosts/h1').json['host']
        self.assertFalse(host['alive'])


class TestAuth(base.CoordinatorTestCase):

    def test_missing_secret_401(self):
        resp = self.client.request('GET', '/v1/hosts', secret='')
        self.assertError(401, resp, 'X-Fastboot-Secret')

    def test_wrong_secret_401(self):
        resp = self.client.request('GET', '/v1/hosts', secret='nope')
        self.assertError(401, resp)

    def test_version_discovery_is_public(self):
        resp = self.client.request('GET', '/', secret='')
        self.assertEqual('v1', resp.json['versions'][0]['id'])

    def test_missing_host_token_401(self):
        self.client.register('h1')
        resp = self.client.request('PUT', '/v1/hosts/h1/heartbeat')
        self.assertError(401, resp, 'X-Fastboot-Host-Token')

    def test_other_hosts_token_403(self):
        self.client.register('h1')
        self.client.register('h2')
        for method, path in (('PUT', '/v1/hosts/h1/heartbeat'),
                             ('DELETE', '/v1/hosts/h1'),
                             ('DELETE', '/v1/hosts/h1/caches/v')):
            resp = self.client.request(method, path, host='h2')
            self.assertError(403, resp)
        resp = self.client.request(
            'PUT', '/v1/hosts/h1/caches/v',
            {'export_url': 'nbd://h2:1/v'}, host='h2')
        self.assertError(403, resp)
        self.client.report('h1', 'v')
        resp = self.client.request('GET', '/v1/volumes/v/parents?host=h1',
                                   host='h2')
        self.assertError(403, resp)

    def test_refuses_to_start_without_secret(self):
        from fastboot_nova.coordinator import deploy
        from fastboot_nova.coordinator import exception
        conf = self.make_conf(**{'coordinator.shared_secret': None})
        err = self.assertRaises(exception.ConfigurationError,
                                deploy.make_app, conf)
        self.assertIn('shared_secret', str(err))

    def test_refuses_unmigrated_database(self):
        from fastboot_nova.coordinator import deploy
        from fastboot_nova.coordinator import exception
        other = os.path.join(self.state_path, 'other.sqlite')
        conf = self.make_conf(**{'database.connection':
                                 'sqlite:///%s' % other})
        err = self.assertRaises(exception.ConfigurationError,
                                deploy.make_app, conf)
        self.assertIn('db sync', str(err))


class TestCaches(base.CoordinatorTestCase):

    def setUp(self):
        super().setUp()
        for i in range(5):
            self.client.register('h%d' % i, failure_domain='dc1/r%d' % (i % 2))

    def test_parents_tree(self):
        for i in range(5):
            resp = self.client.report('h%d' % i, 'vol1')
            self.assertEqual(200, resp.status_int, resp.text)
        origin_kids = []
        for i in range(5):
            body = self.client.parents('vol1', 'h%d' % i).json
            self.assertEqual('h%d' % i, body['host'])
            if body['primary'] == {'origin': True}:
                origin_kids.append(i)
                self.assertEqual(1, body['depth'])
            else:
                self.assertEqual(2, body['depth'])
                self.assertTrue(body['primary']['export_url'].startswith(
                    'nbd://'))
                self.assertEqual({'origin': True}, body['alternates'][-1])
        self.assertEqual(3, len(origin_kids))
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        self.assertEqual(3, tree['fanout'])
        self.assertEqual(2, tree['depth_bound'])
        self.assertEqual(5, len(tree['hosts']))
        self.assertEqual(['vol1'], self.client.request(
            'GET', '/v1/volumes').json['volumes'])

    def test_dead_parent_children_reparented(self):
        self.freeze_time()
        for i in range(5):
            self.client.report('h%d' % i, 'vol1')
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        parent = next(h for h in tree['hosts'] if h['children'])
        child = parent['children'][0]
        # Everyone but the parent keeps heartbeating.
        self.advance(20)
        for i in range(5):
            if 'h%d' % i != parent['host']:
                self.client.request('PUT', '/v1/hosts/h%d/heartbeat' % i,
                                    host='h%d' % i)
        self.advance(15)
        body = self.client.parents('vol1', child).json
        self.assertNotEqual({'host': parent['host']},
                            {'host': body['primary'].get('host')})
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        dead = [h for h in tree['hosts'] if not h['alive']]
        self.assertEqual([parent['host']], [h['host'] for h in dead])
        # The dead host itself is told to heartbeat first.
        resp = self.client.parents('vol1', parent['host'])
        self.assertError(409, resp, 'heartbeat')

    def test_reported_parent_cycle_is_409(self):
        for i in range(5):
            self.client.report('h%d' % i, 'vol1')
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        parent = next(h for h in tree['hosts'] if h['children'])
        child = parent['children'][0]
        resp = self.client.report(parent['host'], 'vol1', parent=child)
        self.assertError(409, resp, 'cycle')
        resp = self.client.report('h1', 'vol1', parent='h1')
        self.assertError(409, resp, 'itself')

    def test_reported_parent_is_kept(self):
        for i in range(5):
            self.client.report('h%d' % i, 'vol1')
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        leaf = next(h for h in tree['hosts'] if h['depth'] == 2)
        other = next(h for h in tree['hosts']
                     if h['depth'] == 1 and h['host'] != leaf['parent'])
        resp = self.client.report(leaf['host'], 'vol1',
                                  parent=other['host'])
        self.assertEqual(200, resp.status_int, resp.text)
        self.assertEqual(other['host'], resp.json['cache']['parent']['host'])

    def test_reported_parent_must_cache(self):
        self.client.report('h0', 'vol1')
        resp = self.client.report('h0', 'vol1', parent='h1')
        self.assertError(409, resp, 'no live cache')

    def test_unknown_volume_and_host_404(self):
        self.client.report('h0', 'vol1')
        self.assertError(404, self.client.parents('nope', 'h0'), 'nope')
        resp = self.client.request('GET', '/v1/volumes/nope/tree')
        self.assertError(404, resp)
        self.assertError(404, self.client.parents('vol1', 'ghost'), 'ghost')
        self.assertError(404, self.client.parents('vol1', 'h1'),
                         'not reported')
        resp = self.client.request('DELETE', '/v1/hosts/h1/caches/vol1',
                                   host='h1')
        self.assertError(404, resp)
        resp = self.client.request('GET', '/v1/nothing')
        self.assertError(404, resp)

    def test_remove_cache_and_host(self):
        for i in range(5):
            self.client.report('h%d' % i, 'vol1')
        resp = self.client.request('DELETE', '/v1/hosts/h0/caches/vol1',
                                   host='h0')
        self.assertEqual(204, resp.status_int)
        self.client.request('DELETE', '/v1/hosts/h1', host='h1')
        tree = self.client.request('GET', '/v1/volumes/vol1/tree').json
        self.assertEqual(['h2', 'h3', 'h4'],
                         sorted(h['host'] for h in tree['hosts']))
        self.assertEqual(3, len(tree['origin_children']))
        for h in ('h2', 'h3', 'h4'):
            self.client.request('DELETE', '/v1/hosts/%s/caches/vol1' % h,
                                host=h)
        resp = self.client.request('GET', '/v1/volumes/vol1/tree')
        self.assertError(404, resp)


class TestBadInput(base.CoordinatorTestCase):

    def test_malformed_json_400(self):
        resp = self.client.request('POST', '/v1/hosts', raw=b'{"name": ')
        self.assertError(400, resp, 'Malformed JSON')

    def test_deeply_nested_json_400(self):
        resp = self.client.request('POST', '/v1/hosts',
                                   raw=b'[' * 5000 + b']' * 5000)
        self.assertError(400, resp)

    def test_oversized_body_413(self):
        resp = self.client.request('POST', '/v1/hosts',
                                   raw=b'{"name": "' + b'x' * 70000 + b'"}')
        self.assertError(413, resp, 'max_request_body_size')

    def test_wrong_content_type_415(self):
        resp = self.client.request('POST', '/v1/hosts', raw=b'name=x',
                                   content_type='text/plain')
        self.assertError(415, resp)

    def test_schema_violations_400(self):
        for body in ({'name': 'h', 'address': 'a', 'extra': 1},
                     {'name': '../etc', 'address': 'a'},
                     {'name': 'h'},
                     {'name': 'h', 'address': 'a', 'failure_domain': '//'},
                     [1, 2], 'string', None):
            resp = self.client.request('POST', '/v1/hosts', body)
            self.assertError(400, resp)
        self.client.register('h1')
        for body in ({'export_url': 'not a url'}, {'warm': True},
                     {'export_url': 'nbd://h1/v', 'warm': 'yes'},
                     {'export_url': 'nbd://h1/v', 'parent': 3}):
            resp = self.client.request('PUT', '/v1/hosts/h1/caches/v', body,
                                       host='h1')
            self.assertError(400, resp)

    def test_export_url_must_be_a_tcp_export_of_the_volume(self):
        # Issue 10 item 1: what a host reports, other hosts read from.
        self.client.register('h1')
        for url in ('nbd+unix:///other?socket=/var/lib/fastboot/nbd.sock',
                    'nbd+unix:///v?socket=/run/fb/nbd.sock',
                    'file:///etc/shadow', '/dev/sda',
                    'nbd://h1:10809/other', 'nbd://0.0.0.0:10809/v',
                    'nbd://bad_host:10809/v', 'nbd://h1:0/v',
                    'nbd://h1:10809/v\n'):
            resp = self.client.request('PUT', '/v1/hosts/h1/caches/v',
                                       {'export_url': url}, host='h1')
            self.assertError(400, resp, 'export_url')
        self.assertError(404, self.client.request('GET', '/v1/volumes/v/tree'))
        for url in ('nbd://h1:10809/v', 'nbd://192.0.2.1/v',
                    'nbd://[2001:db8::1]:7000/fb-ab12-exp-v-7000'):
            resp = self.client.request('PUT', '/v1/hosts/h1/caches/v',
                                       {'export_url': url}, host='h1')
            self.assertEqual(200, resp.status_int, resp.text)

    def test_trailing_newline_and_bad_addresses_400(self):
        # Issue 10 item 6: "hostA\n" was registered as a second host.
        self.client.register('hostA')
        for body in ({'name': 'hostA\n', 'address': '192.0.2.1'},
                     {'name': 'hostB', 'address': '192.0.2.1\n'},
                     {'name': 'hostB', 'address': '0.0.0.0'},
                     {'name': 'hostB', 'address': 'bad_host'},
                     {'name': 'hostB', 'address': '-bad'},
                     {'name': 'hostB', 'address': 'a..b'},
                     {'name': 'hostB', 'address': '1.2.3'},
                     {'name': 'hostB', 'address': 'ff02::1'},
                     {'name': 'hostB', 'address': '192.0.2.1',
                      'failure_domain': 'rack1\n'}):
            self.assertError(400, self.client.request('POST', '/v1/hosts',
                                                      body))
        hosts = self.client.request('GET', '/v1/hosts').json['hosts']
        self.assertEqual(['hostA'], [h['name'] for h in hosts])
        for address in ('2001:db8::5', 'compute-2.example.org', '10.1.2.3'):
            resp = self.client.request(
                'POST', '/v1/hosts',
                {'name': 'h-%s' % address.replace(':', '-'),
                 'address': address})
            self.assertEqual(201, resp.status_int, resp.text)
        # A newline in a path parameter or after a route.
        self.assertError(400, self.client.request('GET', '/v1/hosts/hostA%0A'))
        self.assertError(404, self.client.request('GET', '/v1/hosts%0A'))

    def test_query_validation_400(self):
        self.client.register('h1')
        self.client.report('h1', 'v')
        self.assertError(400, self.client.request(
            'GET', '/v1/volumes/v/parents', host='h1'), 'host')
        self.assertError(400, self.client.request(
            'GET', '/v1/volumes/v/parents?host=h1&x=1', host='h1'))
        self.assertError(400, self.client.request(
            'GET', '/v1/volumes/v/parents?host=h1&host=h1', host='h1'))
        self.assertError(400, self.client.request('GET', '/v1/hosts?all=1'))
        self.assertError(400, self.client.request(
            'GET', '/v1/hosts', {'unexpected': 'body'}))

    def test_bad_path_parameter_400(self):
        resp = self.client.request('GET', '/v1/volumes/%2e%2e/tree')
        self.assertError(400, resp)

    def test_method_not_allowed_405(self):
        self.assertError(405, self.client.request('PATCH', '/v1/hosts'))


class TestDatabaseDown(base.CoordinatorTestCase):

    def test_db_down_503(self):
        self.client.register('h1')
        moved = self.state_path + '.moved'
        os.rename(self.state_path, moved)
        self.addCleanup(shutil.rmtree, moved, True)
        self.addCleanup(os.rename, moved, self.state_path)
        self.app.state.db.dispose()
        resp = self.client.request('GET', '/v1/hosts')
        self.assertError(503, resp, 'database')
        resp = self.client.request('PUT', '/v1/hosts/h1/heartbeat',
                                   host='h1')
        self.assertError(503, resp)
