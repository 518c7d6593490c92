"""The batch API wrapper with the HTTP layer mocked."""

from unittest import mock

from openstack_auth import utils as auth_utils
import requests

from fastboot_dashboard.api import fastboot
from fastboot_dashboard.test import helpers

BATCH_ID = '8e1f5b0c-0d4e-4c34-9b60-4d0ad1d2e0a1'


def response(status, body=None, text=None):
    resp = mock.Mock(status_code=status)
    if body is not None:
        resp.json.return_value = body
        resp.content = b'{...}'
    else:
        resp.json.side_effect = ValueError('no json')
        resp.content = (text or '').encode()
    return resp


class ApiTests(helpers.TestCase):

    def setUp(self):
        super().setUp()
        # The test user (setActiveUser), on Django 4.2 too, where the
        # helper's request keeps an anonymous user.
        self.request.user = auth_utils.get_user(self.request)
        patcher = mock.patch('requests.request')
        self.request_mock = patcher.start()
        self.addCleanup(patcher.stop)

    def raises(self, func, *args):
        with self.assertRaises(fastboot.FastbootError) as cm:
            func(*args)
        return cm.exception

    def test_create_posts_with_token_key_and_catalog_endpoint(self):
        self.request_mock.return_value = response(
            202, {'batch': self.batch_dict(state='PENDING')})
        batch = fastboot.batch_create(
            self.request, 'snap-id', '4', 'm1.small', 'farm',
            networks='none', key_name='k', idempotency_key='key-1')
        self.assertEqual('PENDING', batch.state)
        method, url = self.request_mock.call_args[0]
        kwargs = self.request_mock.call_args[1]
        self.assertEqual('POST', method)
        self.assertEqual(helpers.FASTBOOT_URL + '/v1/batches', url)
        self.assertEqual({'source': {'volume_snapshot_id': 'snap-id'},
                          'count': 4, 'flavor': 'm1.small', 'name': 'farm',
                          'networks': 'none', 'key_name': 'k'},
                         kwargs['json'])
        self.assertEqual(self.token.id, kwargs['headers']['X-Auth-Token'])
        self.assertEqual('key-1', kwargs['headers']['Idempotency-Key'])

    def test_api_error_message_is_the_apis(self):
        self.request_mock.return_value = response(
            400, {'error': {'message': 'count 900 is more than 500.'}})
        e = self.raises(fastboot.batch_list,
                              self.request)
        self.assertEqual(400, e.status)
        self.assertEqual('count 900 is more than 500.', e.message)

    def test_html_error_page_is_not_shown(self):
        self.request_mock.return_value = response(
            502, text='<html>Bad Gateway</html>')
        e = self.raises(fastboot.batch_list,
                              self.request)
        self.assertEqual(502, e.status)
        self.assertNotIn('<html>', str(e.message))

    def test_unreachable_says_so(self):
        self.request_mock.side_effect = requests.ConnectionError('refused')
        e = self.raises(fastboot.batch_list,
                              self.request)
        self.assertIsNone(e.status)
        self.assertIn('not reachable', str(e.message))

    def test_non_json_answer(self):
        self.request_mock.return_value = response(200, text='hello')
        self.raises(fastboot.batch_list,
                          self.request)

    def test_bad_batch_id_never_reaches_the_path(self):
        for bad in ('../hosts', 'x/../../v1', '', '1 OR 1'):
            e = self.raises(fastboot.batch_get,
                                  self.request, bad)
            self.assertEqual(400, e.status)
        self.request_mock.assert_not_called()

    def test_get_delete_timeline_paths(self):
        self.request_mock.return_value = response(
            200, {'batch': self.batch_dict(), 'timeline': {'servers': []}})
        self.assertEqual(2, fastboot.batch_get(self.request, BATCH_ID).active)
        fastboot.batch_delete(self.request, BATCH_ID, purge=True)
        fastboot.batch_timeline(self.request, BATCH_ID)
        calls = [c[0] for c in self.request_mock.call_args_list]
        base = helpers.FASTBOOT_URL + '/v1/batches/' + BATCH_ID
        self.assertEqual([('GET', base), ('DELETE', base + '?purge=true'),
                          ('GET', base + '/timeline')], calls)

    def test_servers_in_index_order_with_names(self):
        batch = fastboot.Batch(self.batch_dict())
        batch._apidict['servers'].reverse()
        first = batch.servers[-1]['id']
        servers = fastboot.batch_servers(batch, {first: 'farm-1'})
        self.assertEqual([0, 1, 2, 3], [s.index for s in servers])
        self.assertEqual('farm-1', servers[0].name)
        self.assertIsNone(servers[1].name)
