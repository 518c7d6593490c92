"""The batch API in keystone mode, with auth_token and the cloud faked.

keystonemiddleware is replaced by :class:`FakeAuthToken` (the test sets
the identity in X-Test-* headers) and Keystone/Cinder/Glance/Nova by the
file-backed fake of tests/unit/coordinator/fake_cloud.py; the database,
the schema, the WSGI stack and policy are the real ones.
"""

import os

import fixtures
import webob
import webob.dec

from tests.functional.coordinator import base
from tests.functional.coordinator import test_keystone
from tests.unit.coordinator import fake_cloud

PROJECT = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
OTHER = 'f0e1d2c3b4a5968778695a4b3c2d1e0f'


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
        req.headers['X-Project-Id'] = req.headers.get('X-Test-Project',
                                                      PROJECT)
        req.headers['X-Roles'] = req.headers.get('X-Test-Roles', 'member')
        return self.app


def batch_body(snapshot, count=3, **extra):
    body = {'source': {'volume_snapshot_id': snapshot}, 'count': count,
            'flavor': 'm1.small', 'name': 'render', 'networks': 'none'}
    body.update(extra)
    return body


class BatchTestCase(base.CoordinatorTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatch(
            'keystonemiddleware.auth_token.AuthProtocol', FakeAuthToken))
        conf = test_keystone.keystone_conf(self)
        self.conf = conf
        self.ks_app = self.make_app(conf)
        self.clouds = fake_cloud.FakeCloudFactory(
            os.path.join(self.state_path, 'cloud.json'))
        self.ks_app.state.batches.clouds = self.clouds
        self.store = self.clouds.store
        self.snapshot = self.store.add_snapshot(PROJECT, size=1)

    def call(self, method, path, body=None, user='user-a', project=PROJECT,
             roles='member', key=None):
        req = webob.Request.blank(path, method=method)
        req.headers['X-Test-User'] = user
        req.headers['X-Test-Project'] = project
        req.headers['X-Test-Roles'] = roles
        if key is not None:
            req.headers['Idempotency-Key'] = key
        if body is not None:
            req.json = body
            req.content_type = 'application/json'
        return req.get_response(self.ks_app)

    def post(self, body, key='k1', **kwargs):
        return self.call('POST', '/v1/batches', body, key=key, **kwargs)
