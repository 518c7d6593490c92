"""The fastboot paste filter in nova-api's pipeline, in-process Nova."""

import os

import fixtures

from tests.functional_nova import base

FILTER = """
[filter:fastboot]
paste.filter_factory = fastboot_nova.api.validation:filter_factory
"""


def paste_with_filter(source, target):
    """Copy nova's api-paste.ini with fastboot after keystonecontext."""
    with open(source) as f:
        text = f.read()
    old = ' keystonecontext '
    count = text.count(old)
    # openstack_compute_api_v21 and its legacy v2 twin.
    assert count == 2, count
    text = text.replace(old, ' keystonecontext fastboot ') + FILTER
    with open(target, 'w') as f:
        f.write(text)
    return target


class TestAPIFilter(base.FastBootTestBase):

    def setUp(self):
        source = base.api_paste_config()
        if source is None:
            self.skipTest("nova's api-paste.ini not found")
        target = os.path.join(self.useFixture(fixtures.TempDir()).path,
                              'api-paste.ini')
        paste_with_filter(source, target)
        self.useFixture(fixtures.MockPatch(
            'tests.functional_nova.base.api_paste_config',
            return_value=target))
        super().setUp()
        self.start_compute('compute1')

    def _body(self, **root):
        body = self._build_server(name='fb', image_uuid='',
                                  networks='none')
        body['block_device_mapping_v2'] = [dict({
            'boot_index': 0, 'uuid': base.ORIGIN_VOLUME,
            'source_type': 'volume', 'destination_type': 'volume'}, **root)]
        return {'server': body,
                'os:scheduler_hints': {'fastboot': base.ORIGIN_VOLUME}}

    def _refused(self, body):
        resp = self.api.api_post('/servers', body,
                                 check_response_status=[400])
        return resp.body['badRequest']['message']

    def test_bad_requests_refused(self):
        message = self._refused(self._body(delete_on_termination=True))
        self.assertIn('delete_on_termination must be false', message)

        body = self._body()
        body['server']['max_count'] = 2
        message = self._refused(body)
        self.assertIn('max_count of a fastboot request must be an integer '
                      'from 1 to 1, not 2.', message)

        body = self._body()
        body['os:scheduler_hints']['fastboot'] = 'yes'
        message = self._refused(body)
        self.assertIn('The fastboot scheduler hint must be the UUID',
                      message)
        # None of them reached the compute API.
        self.assertEqual([], self.api.get_servers())

    def test_other_endpoints(self):
        project = self.api.project_id
        body = self._body(delete_on_termination='yes')
        for path in ('/v2/servers', '/v2.1/%s/servers' % project,
                     '/v2/%s/servers' % project):
            resp = self.api.api_post(path, body, strip_version=True,
                                     check_response_status=[400])
            self.assertIn('delete_on_termination must be false',
                          resp.body['badRequest']['message'])

    def test_good_request_boots(self):
        server = self.api.post_server(self._body())
        server = self._wait_for_state_change(server, 'ACTIVE')
        engine = self.engines['compute1']
        self.assertEqual(['cinder-' + base.ORIGIN_VOLUME],
                         sorted(engine.images))
        self.assertEqual({'nova-' + server['id']}, set(engine.vms))
        self._delete_server(server)

    def test_non_fastboot_request_reaches_nova(self):
        # No hint: nova's own validation answers, not the filter.
        body = self._body(delete_on_termination=True)
        del body['os:scheduler_hints']
        body['server']['max_count'] = 2
        resp = self.api.api_post('/servers', body,
                                 check_response_status=[400])
        message = resp.body['badRequest']['message']
        self.assertNotIn('fastboot', message)
