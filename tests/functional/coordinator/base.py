"""A coordinator on a real SQLite file and tooz file backend, in-process."""

import datetime
import json
import os

import fixtures
from oslo_config import cfg
from oslo_utils import timeutils
from oslotest import base
import webob

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator import deploy

SECRET = 'test-secret'


def make_conf(state_path, **overrides):
    conf = cfg.ConfigOpts()
    config.parse_args([], conf=conf, default_config_files=[])
    conf.set_override('state_path', state_path, group='coordinator')
    conf.set_override('auth_strategy', 'shared_secret', group='coordinator')
    conf.set_override('shared_secret', SECRET, group='coordinator')
    conf.set_override('max_retries', 0, group='database')
    for key, value in overrides.items():
        group, name = key.split('.')
        conf.set_override(name, value, group=group)
    return conf


def db_sync(conf):
    db = db_api.Database(conf)
    migration.upgrade(db.get_engine())
    db.dispose()


class Client:
    """Calls the WSGI app in-process through webob."""

    def __init__(self, app, secret=SECRET):
        self.app = app
        self.secret = secret
        self.tokens = {}

    def request(self, method, path, body=None, host=None, token=None,
                raw=None, content_type='application/json', secret=None):
        req = webob.Request.blank(path, method=method)
        secret = self.secret if secret is None else secret
        if secret:
            req.headers['X-Fastboot-Secret'] = secret
        token = token or self.tokens.get(host)
        if token:
            req.headers['X-Fastboot-Host-Token'] = token
        if raw is not None:
            req.body = raw
            req.content_type = content_type
        elif body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = content_type
        return req.get_response(self.app)

    def register(self, name, failure_domain=None, address=None):
        resp = self.request('POST', '/v1/hosts',
                            {'name': name,
                             'address': address or '192.0.2.%d' % (
                                 len(self.tokens) + 1),
                             'failure_domain': failure_domain})
        assert resp.status_int == 201, resp.text
        self.tokens[name] = resp.json['host']['token']
        return resp

    def report(self, host, volume, warm=False, **extra):
        body = dict(export_url='nbd://%s:10809/%s' % (host, volume),
                    warm=warm, **extra)
        return self.request('PUT', '/v1/hosts/%s/caches/%s' % (host, volume),
                            body, host=host)

    def parents(self, volume, host):
        return self.request('GET', '/v1/volumes/%s/parents?host=%s' % (
            volume, host), host=host)


class CoordinatorTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.conf = self.make_conf()
        db_sync(self.conf)
        self.app = self.make_app()
        self.client = Client(self.app)

    def freeze_time(self):
        """Stop the clock (oslo_utils.timeutils.utcnow) at now."""
        self.now = timeutils.utcnow()
        self.useFixture(fixtures.MockPatch(
            'oslo_utils.timeutils.utcnow', side_effect=lambda *a, **k:
            self.now))

    def advance(self, seconds):
        self.now += datetime.timedelta(seconds=seconds)

    def make_conf(self, **overrides):
        return make_conf(self.state_path, **overrides)

    def make_app(self, conf=None):
        app = deploy.make_app(conf or self.conf, membership=False)
        self.addCleanup(app.stop)
        return app

    @property
    def db_path(self):
        return os.path.join(self.state_path, 'coordinator.sqlite')

    def assertError(self, status, resp, contains=None):
        self.assertEqual(status, resp.status_int, resp.text)
        self.assertEqual('application/json', resp.content_type)
        error = resp.json['error']
        self.assertEqual(status, error['code'])
        self.assertTrue(error['title'])
        if contains:
            self.assertIn(contains, error['message'])
