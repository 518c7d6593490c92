"""Views of the Boot Batches panel: index, create form, detail, policy."""

from unittest import mock

from cinderclient import exceptions as cinder_exceptions
from django.urls import reverse
from openstack_auth import utils as auth_utils
from openstack_dashboard import api
from openstack_dashboard.test import helpers as os_helpers
from openstack_dashboard.usage import quotas

from fastboot_dashboard.api import fastboot
from fastboot_dashboard.content.batches import snapshot_action
from fastboot_dashboard.test import helpers

INDEX_URL = reverse('horizon:project:fastboot_batches:index')
CREATE_URL = reverse('horizon:project:fastboot_batches:create')


def detail_url(batch_id):
    return reverse('horizon:project:fastboot_batches:detail',
                   args=(batch_id,))


class IndexTests(helpers.TestCase):

    @os_helpers.create_mocks({fastboot: ['batch_list']})
    def test_index_shows_progress(self):
        batch = fastboot.Batch(self.batch_dict())
        self.mock_batch_list.return_value = [batch]
        res = self.client.get(INDEX_URL)
        self.assertTemplateUsed(res, 'fastboot/batches/index.html')
        table = res.context['table']
        self.assertEqual([batch.id], [b.id for b in table.data])
        content = res.content.decode()
        self.assertIn('2/4 ACTIVE', content)
        self.assertIn('progress-bar-danger', content)
        self.assertIn('1 error', content)
        self.assertIn('width: 50%', content)  # 2 of 4 ACTIVE
        self.assertIn('width: 25%', content)  # 1 of 4 ERROR
        # "Created" as a date for people, not the API's ISO string.
        self.assertNotIn('2026-12-03T12:00:00Z', content)
        self.assertIn('Dec. 3, 2026', content)
        self.mock_batch_list.assert_called_once_with(mock.ANY)

    @os_helpers.create_mocks({fastboot: ['batch_list']})
    def test_deleted_batch_has_no_progress_bar(self):
        deleted = dict(self.batch_dict(), state='DELETED',
                       server_states={'DELETED': 4})
        self.mock_batch_list.return_value = [fastboot.Batch(deleted)]
        content = self.client.get(INDEX_URL).content.decode()
        self.assertNotIn('0/4 ACTIVE', content)
        self.assertNotIn('fastboot-progress-text', content)

    @os_helpers.create_mocks({fastboot: ['batch_list']})
    def test_index_api_down_says_so(self):
        self.mock_batch_list.side_effect = fastboot.FastbootError(
            'The fast boot service is not reachable; try again later.')
        res = self.client.get(INDEX_URL)
        self.assertEqual(200, res.status_code)
        self.assertEqual([], list(res.context['table'].data))
        self.assertMessageCount(res, error=1)

    @os_helpers.create_mocks({fastboot: ['batch_get']})
    def test_row_update_is_one_request_per_batch(self):
        # A batch of 500 servers: the row refresh asks the API once.
        batch = self.batch_dict(count=500, server_states={'ACTIVE': 420,
                                                          'BUILDING': 80})
        self.mock_batch_get.return_value = fastboot.Batch(batch)
        res = self.client.get(
            INDEX_URL, {'action': 'row_update', 'table': 'batches',
                        'obj_id': batch['id']},
            HTTP_X_REQUESTED_WITH='XMLHttpRequest')
        self.assertEqual(200, res.status_code)
        self.assertIn('420/500 ACTIVE', res.content.decode())
        self.mock_batch_get.assert_called_once_with(mock.ANY, batch['id'])

    @os_helpers.create_mocks({fastboot: ['batch_get']})
    def test_row_update_of_a_purged_batch_stops(self):
        self.mock_batch_get.side_effect = fastboot.FastbootError(
            'Batch not found.', status=404)
        batch_id = self.batch_dict()['id']
        res = self.client.get(
            INDEX_URL, {'action': 'row_update', 'table': 'batches',
                        'obj_id': batch_id},
            HTTP_X_REQUESTED_WITH='XMLHttpRequest')
        self.assertEqual(200, res.status_code)
        content = res.content.decode()
        self.assertIn('Deleted', content)
        self.assertNotIn('status_unknown', content)

    @os_helpers.create_mocks({fastboot: ['batch_list', 'batch_delete']})
    def test_delete(self):
        batch = fastboot.Batch(self.batch_dict())
        self.mock_batch_list.return_value = [batch]
        res = self.client.post(INDEX_URL,
                               {'action': 'batches__delete__%s' % batch.id})
        self.assertRedirectsNoFollow(res, INDEX_URL)
        self.mock_batch_delete.assert_called_once_with(mock.ANY, batch.id)


class CreateTests(helpers.TestCase):

    def setUp(self):
        super().setUp()
        self.snapshot = self.cinder_volume_snapshots.first()
        self.snapshot._apiresource.status = 'available'

    def mock_lists(self, left=10):
        self.mock_volume_snapshot_list.return_value = [self.snapshot]
        self.mock_volume_snapshot_get.return_value = self.snapshot
        self.mock_flavor_list.return_value = self.flavors.list()
        self.mock_network_list_for_tenant.return_value = self.networks.list()
        self.mock_keypair_list.return_value = self.keypairs.list()
        self.mock_tenant_quota_usages.return_value = {
            'instances': {'available': left}}

    def form_data(self, **values):
        flavor = [f for f in self.flavors.list()
                  if f.disk >= self.snapshot.size][0]
        data = {'snapshot': self.snapshot.id, 'count': 4,
                'flavor': flavor.name, 'network': 'none', 'key_name': '',
                'name': 'farm', 'idempotency_key': 'key-1'}
        data.update(values)
        return data

    MOCKS = {api.cinder: ['volume_snapshot_list', 'volume_snapshot_get'],
             api.nova: ['flavor_list', 'keypair_list'],
             api.neutron: ['network_list_for_tenant'],
             quotas: ['tenant_quota_usages'],
             fastboot: ['batch_create']}

    @os_helpers.create_mocks(MOCKS)
    def test_get_shows_quota_left_and_choices(self):
        self.mock_lists(left=7)
        res = self.client.get(CREATE_URL + '?snapshot_id=' + self.snapshot.id)
        self.assertTemplateUsed(res, 'fastboot/batches/create.html')
        form = res.context['form']
        self.assertEqual(self.snapshot.id, form.initial['snapshot'])
        self.assertIn('Number of Servers (7 left in the quota)',
                      res.content.decode())
        self.assertIn(('none', 'No network'), form.fields['network'].choices)
        self.assertTrue(form.initial['idempotency_key'])
        self.mock_volume_snapshot_list.assert_called_once_with(
            mock.ANY, search_opts={'status': 'available'})

    @os_helpers.create_mocks(MOCKS)
    def test_post_creates_and_goes_to_the_batch(self):
        self.mock_lists()
        batch = fastboot.Batch(self.batch_dict(state='PENDING'))
        self.mock_batch_create.return_value = batch
        data = self.form_data(network=self.networks.first().id,
                              key_name=self.keypairs.first().name)
        res = self.client.post(CREATE_URL, data)
        self.assertNoFormErrors(res)
        self.assertRedirectsNoFollow(res, detail_url(batch.id))
        self.mock_batch_create.assert_called_once_with(
            mock.ANY, self.snapshot.id, 4, data['flavor'], 'farm',
            networks=[{'uuid': self.networks.first().id}],
            key_name=self.keypairs.first().name, idempotency_key='key-1')

    @os_helpers.create_mocks(MOCKS)
    def test_count_zero_refused(self):
        self.mock_lists()
        res = self.client.post(CREATE_URL, self.form_data(count=0))
        self.assertFormErrors(res, 1)
        self.assertIn('count', res.context['form'].errors)
        self.mock_batch_create.assert_not_called()

    @os_helpers.create_mocks(MOCKS)
    def test_count_over_quota_refused_with_what_is_left(self):
        self.mock_lists(left=3)
        res = self.client.post(CREATE_URL, self.form_data(count=4))
        self.assertFormErrors(res, 1, '4 servers are more than the 3 the '
                                      'project quota allows.')
        self.mock_batch_create.assert_not_called()

    @os_helpers.create_mocks(MOCKS)
    def test_flavor_too_small_refused_with_reason(self):
        self.mock_lists()
        data = self.form_data(flavor='m1.massive')  # 1024 GiB disk
        self.snapshot._apiresource.size = 2000
        res = self.client.post(CREATE_URL, data)
        self.assertFormErrors(
            res, 1, 'Flavor m1.massive has a 1024 GiB root disk, smaller '
                    'than the 2000 GiB snapshot.')
        self.mock_batch_create.assert_not_called()

    @os_helpers.create_mocks(MOCKS)
    def test_vanished_snapshot_refused(self):
        self.mock_lists()
        self.mock_volume_snapshot_get.side_effect = \
            cinder_exceptions.NotFound(404)
        res = self.client.post(CREATE_URL, self.form_data())
        self.assertFormErrors(res, 1, 'The snapshot no longer exists.')
        self.mock_batch_create.assert_not_called()

    @os_helpers.create_mocks(MOCKS)
    def test_cinder_failure_is_not_called_a_vanished_snapshot(self):
        self.mock_lists()
        self.mock_volume_snapshot_get.side_effect = self.exceptions.cinder
        res = self.client.post(CREATE_URL, self.form_data())
        self.assertFormErrors(res, 1,
                              'Unable to check the snapshot; try again.')
        self.mock_batch_create.assert_not_called()

    @os_helpers.create_mocks(MOCKS)
    def test_bad_name_refused(self):
        self.mock_lists()
        res = self.client.post(CREATE_URL, self.form_data(name='-x y'))
        self.assertFormErrors(res, 1)
        self.assertIn('name', res.context['form'].errors)
        self.mock_batch_create.assert_not_called()

    @os_helpers.create_mocks(MOCKS)
    def test_api_down_says_so_and_stays(self):
        self.mock_lists()
        self.mock_batch_create.side_effect = fastboot.FastbootError(
            'The fast boot service is not reachable; try again later.')
        res = self.client.post(CREATE_URL, self.form_data())
        self.assertEqual(200, res.status_code)  # the form again
        self.assertMessageCount(res, error=1)
        self.mock_batch_create.assert_called_once()


class DetailTests(helpers.TestCase):

    TIMELINE = {
        'start': '2026-12-03T12:00:00Z',
        'servers': [
            {'id': 'aaaaaaaa-0000-4000-8000-000000000000', 'index': 0,
             'state': 'ACTIVE',
             'phases': {'accepted': '2026-12-03T12:00:00Z',
                        'requested': '2026-12-03T12:00:01Z',
                        'scheduled': '2026-12-03T12:00:02Z',
                        'ACTIVE': '2026-12-03T12:00:05Z'}},
        ],
    }

    @os_helpers.create_mocks({fastboot: ['batch_get', 'batch_timeline'],
                              api.nova: ['server_list']})
    def test_detail_has_servers_and_svg_timeline(self):
        batch = self.batch_dict()
        self.mock_batch_get.return_value = fastboot.Batch(batch)
        self.mock_batch_timeline.return_value = self.TIMELINE
        server = self.servers.first()
        server.id = batch['servers'][0]['id']
        server.name = 'farm-8e1f5b0c-1'
        self.mock_server_list.return_value = ([server], False)
        res = self.client.get(detail_url(batch['id']))
        content = res.content.decode()
        self.assertEqual(200, res.status_code)
        self.assertIn('farm-8e1f5b0c-1', content)
        self.assertIn('No valid host was found.', content)
        self.assertIn('host3', content)
        self.assertIn('<svg', content)
        self.assertIn('p50 5.0 s', content)
        self.mock_batch_get.assert_called_once_with(mock.ANY, batch['id'])
        self.mock_server_list.assert_called_once_with(
            mock.ANY, search_opts={'name': '^farm-'})

    @os_helpers.create_mocks({fastboot: ['batch_get']})
    def test_missing_batch_redirects(self):
        self.mock_batch_get.side_effect = fastboot.FastbootError(
            'Batch not found.', status=404)
        res = self.client.get(detail_url(self.batch_dict()['id']))
        self.assertRedirectsNoFollow(res, INDEX_URL)


class PolicyTests(helpers.TestCase):
    """With the policy check on, a reader sees batches but no create or
    delete action, and the create URL answers 403.
    """

    def setUp(self):
        super().setUp()
        self.setActiveUser(
            id=self.user.id, token=self.token, username=self.user.name,
            tenant_id=self.tenant.id, service_catalog=self.service_catalog,
            authorized_tenants=self.tenants.list(),
            roles=[{'id': '3', 'name': 'reader'}])

    @os_helpers.create_mocks({fastboot: ['batch_list']})
    def test_reader_sees_no_actions(self):
        self.mock_batch_list.return_value = [
            fastboot.Batch(self.batch_dict())]
        with self.settings(
                POLICY_CHECK_FUNCTION='openstack_auth.policy.check'):
            res = self.client.get(INDEX_URL)
        self.assertEqual(200, res.status_code)
        content = res.content.decode()
        self.assertNotIn('Boot from Snapshot', content)
        self.assertNotIn('batches__delete', content)

    def test_reader_create_url_forbidden(self):
        with self.settings(
                POLICY_CHECK_FUNCTION='openstack_auth.policy.check'):
            res = self.client.get(CREATE_URL)
        self.assertEqual(403, res.status_code)

    @os_helpers.create_mocks({fastboot: ['batch_list']})
    def test_member_sees_actions(self):
        self.setActiveUser(
            id=self.user.id, token=self.token, username=self.user.name,
            tenant_id=self.tenant.id, service_catalog=self.service_catalog,
            authorized_tenants=self.tenants.list(),
            roles=[{'id': '2', 'name': 'member'}])
        self.mock_batch_list.return_value = [
            fastboot.Batch(self.batch_dict())]
        with self.settings(
                POLICY_CHECK_FUNCTION='openstack_auth.policy.check'):
            res = self.client.get(INDEX_URL)
        content = res.content.decode()
        self.assertIn('Boot from Snapshot', content)
        self.assertIn('batches__delete', content)


class SnapshotActionTests(helpers.TestCase):

    def test_shown_only_for_available_snapshots_with_the_service(self):
        action = snapshot_action.BootFromSnapshot()
        available = self.cinder_volume_snapshots.first()
        available._apiresource.status = 'available'
        self.assertTrue(action.allowed(self.request, available))
        available._apiresource.status = 'creating'
        self.assertFalse(action.allowed(self.request, available))

    def test_hidden_without_the_service(self):
        self.setActiveUser(
            id=self.user.id, token=self.token, username=self.user.name,
            tenant_id=self.tenant.id,
            service_catalog=[s for s in self.service_catalog
                             if s['type'] != 'fastboot'],
            authorized_tenants=self.tenants.list())
        request = self.factory.get('/')
        request.user = auth_utils.get_user(request)
        snapshot = self.cinder_volume_snapshots.first()
        snapshot._apiresource.status = 'available'
        self.assertFalse(snapshot_action.BootFromSnapshot().allowed(
            request, snapshot))
