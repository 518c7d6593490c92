"""The console scripts: manage db sync, and the threaded server."""

import io
import json
import os
import threading
import urllib.request

import fixtures

from fastboot_nova.coordinator import cmd
from fastboot_nova.coordinator import deploy
from fastboot_nova.coordinator import manage
from fastboot_nova.coordinator import wsgi
from tests.functional.coordinator import base


class TestManage(base.CoordinatorTestCase):

    def _config_file(self, path, extra=''):
        conf_file = os.path.join(path, 'c.conf')
        with open(conf_file, 'w') as f:
            f.write('[coordinator]\nstate_path = %s\n'
                    'auth_strategy = shared_secret\nshared_secret = x\n%s'
                    % (path, extra))
        return conf_file

    def test_db_sync_and_version(self):
        path = self.useFixture(fixtures.TempDir()).path
        conf_file = self._config_file(path)
        out = self.useFixture(fixtures.MockPatch('sys.stdout',
                                                 io.StringIO())).mock
        self.assertEqual(0, manage.main(['--config-file', conf_file,
                                         'db', 'sync']))
        self.assertEqual(0, manage.main(['--config-file', conf_file,
                                         'db', 'version']))
        self.assertIn('b1e7c3a2d4f0', out.getvalue())
        self.assertTrue(os.path.exists(os.path.join(path,
                                                    'coordinator.sqlite')))
        self.useFixture(fixtures.EnvironmentVariable(
            wsgi.CONFIG_ENV, conf_file))
        real_make_app = deploy.make_app
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.coordinator.deploy.make_app',
            side_effect=lambda conf: real_make_app(conf, membership=False)))
        app = wsgi.init_application()
        self.addCleanup(app.stop)
        self.assertEqual('x', app.state.conf.coordinator.shared_secret)

    def test_cmd_refuses_without_secret(self):
        path = self.useFixture(fixtures.TempDir()).path
        conf_file = os.path.join(path, 'c.conf')
        with open(conf_file, 'w') as f:
            f.write('[coordinator]\nstate_path = %s\n'
                    'auth_strategy = shared_secret\n' % path)
        err = self.useFixture(fixtures.MockPatch('sys.stderr',
                                                 io.StringIO())).mock
        self.assertEqual(1, cmd.main(['--config-file', conf_file]))
        self.assertIn('refusing to start', err.getvalue())


class TestServer(base.CoordinatorTestCase):

    def test_threaded_server_serves(self):
        server = cmd.make_server(self.app, '127.0.0.1', 0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        port = server.server_address[1]
        req = urllib.request.Request(
            'http://127.0.0.1:%d/v1/hosts' % port, method='POST',
            data=json.dumps({'name': 'h1', 'address': 'a'}).encode(),
            headers={'Content-Type': 'application/json',
                     'X-Fastboot-Secret': base.SECRET})
        with urllib.request.urlopen(req, timeout=10) as resp:
            self.assertEqual(201, resp.status)
            self.assertTrue(resp.headers['x-openstack-request-id'])
