"""Random request bodies and paths never make the API fail with a 500."""

import json

from hypothesis import given
from hypothesis import HealthCheck
from hypothesis import settings
from hypothesis import strategies as st

from tests.functional.coordinator import base

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() |
    st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) |
    st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10)

# Bodies close to valid ones find more than pure noise.
FIELDS = st.fixed_dictionaries(
    {}, optional={'name': st.text(max_size=20) | JSON,
                  'address': st.text(max_size=20) | JSON,
                  'failure_domain': st.text(max_size=20) | JSON,
                  'export_url': st.text(max_size=30) | JSON,
                  'warm': JSON, 'parent': JSON, 'state': JSON})

ENDPOINTS = st.sampled_from([
    ('POST', '/v1/hosts'),
    ('PUT', '/v1/hosts/h1/heartbeat'),
    ('PUT', '/v1/hosts/h1/caches/vol1'),
    ('PUT', '/v1/hosts/h2/caches/vol1'),
    ('DELETE', '/v1/hosts/h2/caches/vol1'),
    ('GET', '/v1/volumes/vol1/parents'),
])

FUZZ_SETTINGS = settings(max_examples=120, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow])


class TestFuzz(base.CoordinatorTestCase):

    def setUp(self):
        super().setUp()
        self.client.register('h1')
        self.client.register('h2')
        self.client.report('h1', 'vol1')

    def _check(self, resp):
        self.assertLess(resp.status_int, 500, resp.text)
        if resp.status_int >= 400:
            self.assertIn('error', resp.json)

    @FUZZ_SETTINGS
    @given(ENDPOINTS, FIELDS | JSON)
    def test_bodies(self, endpoint, body):
        method, path = endpoint
        host = path.split('/')[3] if path.startswith('/v1/hosts/') else 'h1'
        raw = json.dumps(body).encode()
        self._check(self.client.request(method, path, raw=raw, host=host))

    @FUZZ_SETTINGS
    @given(st.sampled_from(['GET', 'PUT', 'DELETE', 'POST']),
           st.text(alphabet='abh1/.%?=&-_vol', max_size=40),
           st.binary(max_size=40))
    def test_paths_and_raw_bodies(self, method, path, raw):
        resp = self.client.request(method, '/v1/' + path, raw=raw,
                                   host='h1')
        self._check(resp)
