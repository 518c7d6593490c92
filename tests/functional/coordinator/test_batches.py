"""``/v1/batches`` on the real WSGI stack and database (SQLite here;
test_mysql reruns the classes on MariaDB)."""

import threading

from tests.functional.coordinator import batch_base
from tests.functional.coordinator.batch_base import OTHER
from tests.functional.coordinator.batch_base import PROJECT


class TestBatchCreate(batch_base.BatchTestCase):

    def test_202_location_and_persisted(self):
        resp = self.post(batch_base.batch_body(self.snapshot))
        self.assertEqual(202, resp.status_int, resp.text)
        batch = resp.json['batch']
        self.assertEqual('PENDING', batch['state'])
        self.assertEqual({'type': 'snapshot', 'id': self.snapshot},
                         batch['source'])
        self.assertEqual('http://localhost/v1/batches/' + batch['id'],
                         resp.headers['Location'])
        shown = self.call('GET', '/v1/batches/' + batch['id'])
        self.assertEqual(200, shown.status_int, shown.text)
        self.assertEqual(batch['id'], shown.json['batch']['id'])
        self.assertEqual(3, shown.json['batch']['count'])
        self.assertEqual('user', shown.json['batch']['priority'])
        self.assertEqual([], shown.json['batch']['servers'])
        # The runner's trust was made, for this project.
        self.assertEqual([PROJECT],
                         list(self.store.read()['trusts'].values()))

    def test_same_key_same_body_same_batch(self):
        body = batch_base.batch_body(self.snapshot)
        first = self.post(body)
        again = self.post(dict(reversed(list(body.items()))))
        self.assertEqual(200, again.status_int, again.text)
        self.assertEqual(first.json['batch']['id'],
                         again.json['batch']['id'])
        self.assertEqual(first.headers['Location'], again.headers['Location'])
        self.assertEqual(1, len(self.call('GET', '/v1/batches')
                                .json['batches']))
        self.assertEqual(1, len(self.store.read()['trusts']))

    def test_same_key_other_body_409(self):
        self.post(batch_base.batch_body(self.snapshot))
        resp = self.post(batch_base.batch_body(self.snapshot, count=4))
        self.assertError(409, resp, 'Idempotency-Key k1')
        self.assertEqual(1, len(self.call('GET', '/v1/batches')
                                .json['batches']))

    def test_keys_are_per_project(self):
        other_snap = self.store.add_snapshot(OTHER)
        a = self.post(batch_base.batch_body(self.snapshot))
        b = self.post(batch_base.batch_body(other_snap), project=OTHER)
        self.assertEqual(202, b.status_int, b.text)
        self.assertNotEqual(a.json['batch']['id'], b.json['batch']['id'])

    def test_concurrent_same_key_one_batch(self):
        body = batch_base.batch_body(self.snapshot)
        results = []

        def post():
            results.append(self.post(body))
        threads = [threading.Thread(target=post) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(sorted([202, 200, 200, 200]),
                         sorted(r.status_int for r in results),
                         [r.text for r in results])
        self.assertEqual(1, len({r.json['batch']['id'] for r in results}))
        # The losers' trusts were deleted again.
        self.assertEqual(1, len(self.store.read()['trusts']))

    def test_timeline_starts_accepted(self):
        batch = self.post(batch_base.batch_body(self.snapshot)).json['batch']
        resp = self.call('GET', '/v1/batches/%s/timeline' % batch['id'])
        self.assertEqual(200, resp.status_int, resp.text)
        timeline = resp.json['timeline']
        self.assertEqual(['accepted'], list(timeline['batch']))
        self.assertEqual([], timeline['servers'])
        self.assertIn('overlay_created', timeline['phases'])

    def test_priority_needs_service_role(self):
        body = batch_base.batch_body(self.snapshot, priority='ha')
        self.assertError(403, self.post(body))
        resp = self.post(body, roles='member,service')
        self.assertEqual(202, resp.status_int, resp.text)
        self.assertEqual('ha', resp.json['batch']['priority'])


class TestBatchBadInput(batch_base.BatchTestCase):
    """Every refusal is a clear 4xx and leaves nothing behind."""

    def assertNothing(self):
        self.assertEqual([], self.call('GET', '/v1/batches').json['batches'])
        state = self.store.read()
        self.assertEqual({}, state['trusts'])
        self.assertEqual({}, state['volumes'])
        self.assertEqual({}, state['servers'])

    def test_count_zero(self):
        self.assertError(400, self.post(batch_base.batch_body(
            self.snapshot, count=0)), 'count')
        self.assertNothing()

    def test_count_over_max(self):
        self.conf.set_override('max_count', 5, group='batches')
        self.assertError(400, self.post(batch_base.batch_body(
            self.snapshot, count=6)), 'max_count 5')
        self.assertNothing()

    def test_over_quota(self):
        self.store.set(quota={PROJECT: 2})
        self.assertError(403, self.post(batch_base.batch_body(
            self.snapshot, count=3)), '2 left')
        self.assertNothing()

    def test_other_projects_snapshot_404(self):
        theirs = self.store.add_snapshot(OTHER)
        self.assertError(404, self.post(batch_base.batch_body(theirs)),
                         theirs)
        self.assertNothing()

    def test_snapshot_not_available(self):
        snap = self.store.add_snapshot(PROJECT, status='error')
        self.assertError(409, self.post(batch_base.batch_body(snap)),
                         'is error')
        self.assertNothing()

    def test_flavor_too_small(self):
        snap = self.store.add_snapshot(PROJECT, size=20)
        self.assertError(400, self.post(batch_base.batch_body(snap)),
                         'smaller than the 20 GiB')
        self.assertNothing()

    def test_unknown_flavor(self):
        self.assertError(400, self.post(batch_base.batch_body(
            self.snapshot, flavor='nope')), 'nope')
        self.assertNothing()

    def test_cinder_down_503(self):
        self.store.fail('get_source', '500')
        self.assertError(503, self.post(batch_base.batch_body(
            self.snapshot)))
        self.assertNothing()

    def test_missing_or_bad_key(self):
        body = batch_base.batch_body(self.snapshot)
        self.assertError(400, self.post(body, key=None), 'Idempotency-Key')
        self.assertError(400, self.post(body, key='has space'),
                         'Idempotency-Key')
        self.assertError(400, self.post(body, key='x' * 256),
                         'Idempotency-Key')
        self.assertNothing()

    def test_schema(self):
        for body in (
                {},
                batch_base.batch_body('not-a-uuid'),
                batch_base.batch_body(self.snapshot, extra=1),
                batch_base.batch_body(self.snapshot, count='3'),
                batch_base.batch_body(self.snapshot, networks='some'),
                batch_base.batch_body(self.snapshot, name='bad name'),
                batch_base.batch_body(self.snapshot, priority='urgent'),
                dict(batch_base.batch_body(self.snapshot),
                     source={'volume_id': self.snapshot,
                             'volume_snapshot_id': self.snapshot})):
            self.assertError(400, self.post(body))
        self.assertNothing()

    def test_reader_cannot_create(self):
        self.assertError(403, self.post(batch_base.batch_body(
            self.snapshot), roles='reader'))
        self.assertNothing()

    def test_shared_secret_mode_refuses_batches(self):
        resp = self.client.request('POST', '/v1/batches',
                                   batch_base.batch_body(self.snapshot))
        self.assertError(403, resp, 'Keystone')

    def test_unauthenticated(self):
        self.assertError(401, self.post(batch_base.batch_body(
            self.snapshot), user=''))


class TestBatchReadDelete(batch_base.BatchTestCase):

    def setUp(self):
        super().setUp()
        self.batch = self.post(batch_base.batch_body(
            self.snapshot)).json['batch']
        self.path = '/v1/batches/' + self.batch['id']

    def test_other_project_404(self):
        for method, path in (('GET', self.path),
                             ('GET', self.path + '/timeline'),
                             ('DELETE', self.path)):
            self.assertError(404, self.call(method, path, project=OTHER))
        self.assertEqual([], self.call('GET', '/v1/batches', project=OTHER)
                         .json['batches'])
        self.assertEqual('PENDING',
                         self.call('GET', self.path).json['batch']['state'])

    def test_list(self):
        resp = self.call('GET', '/v1/batches', roles='reader')
        self.assertEqual(200, resp.status_int, resp.text)
        self.assertEqual([self.batch['id']],
                         [b['id'] for b in resp.json['batches']])
        self.assertNotIn('servers', resp.json['batches'][0])

    def test_all_projects_admin_only(self):
        self.assertError(403, self.call('GET', '/v1/batches?all_projects=true',
                                        project=OTHER))
        resp = self.call('GET', '/v1/batches?all_projects=true',
                         project=OTHER, roles='admin')
        self.assertEqual([self.batch['id']],
                         [b['id'] for b in resp.json['batches']])

    def test_delete_marks_deleting(self):
        resp = self.call('DELETE', self.path + '?purge=true')
        self.assertEqual(202, resp.status_int, resp.text)
        self.assertEqual('DELETING', resp.json['batch']['state'])
        self.assertError(403, self.call('DELETE', self.path, roles='reader'))

    def test_bad_paths_and_queries(self):
        self.assertError(400, self.call('GET', '/v1/batches/not-a-uuid'))
        self.assertError(404, self.call(
            'GET', '/v1/batches/00000000-0000-0000-0000-000000000000'))
        self.assertError(400, self.call('DELETE', self.path + '?purge=yes'))
        self.assertError(400, self.call('GET', '/v1/batches?x=1'))
        self.assertError(405, self.call('PUT', self.path))
