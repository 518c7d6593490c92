"""Base test case of the plugin: Horizon's, with the fastboot service in
the test user's catalog."""

import copy

from openstack_dashboard.test import helpers

FASTBOOT_URL = 'http://fastboot.example.com:8779'
SNAPSHOT_ID = '1d2c3b4a-5e6f-4a1b-8c9d-0e1f2a3b4c5d'
FASTBOOT_SERVICE = {
    'type': 'fastboot', 'name': 'fastboot', 'endpoints_links': [],
    'endpoints': [{'region': 'RegionOne', 'interface': iface,
                   'url': FASTBOOT_URL}
                  for iface in ('public', 'internal', 'admin')],
}


class TestCase(helpers.TestCase):

    def _setup_test_data(self):
        super()._setup_test_data()
        self.service_catalog = copy.deepcopy(self.service_catalog) + [
            copy.deepcopy(FASTBOOT_SERVICE)]

    def batch_dict(self, **values):
        batch = {
            'id': '8e1f5b0c-0d4e-4c34-9b60-4d0ad1d2e0a1',
            'name': 'farm', 'state': 'BUILDING', 'count': 4,
            'flavor': 'm1.small',
            'source': {'type': 'snapshot',
                       'id': '1d2c3b4a-5e6f-4a1b-8c9d-0e1f2a3b4c5d'},
            'server_states': {'ACTIVE': 2, 'BUILDING': 1, 'ERROR': 1},
            'origin_volume_id': None, 'image_id': None, 'fault': None,
            'created_at': '2026-12-03T12:00:00Z', 'project_id': 'p',
            'servers': [
                {'index': i, 'id': 'aaaaaaaa-0000-4000-8000-00000000000%d'
                 % i, 'state': state, 'attempts': 1, 'host': 'host%d' % i,
                 'fault': 'No valid host was found.'
                 if state == 'ERROR' else None}
                for i, state in enumerate(('ACTIVE', 'ACTIVE', 'BUILDING',
                                           'ERROR'))],
        }
        batch.update(values)
        return batch
