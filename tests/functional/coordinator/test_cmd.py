"""The console scripts: manage db sync, and the uWSGI launcher."""

import io
import os

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


class TestLauncher(base.CoordinatorTestCase):
    """The launcher checks the configuration, then becomes uWSGI."""

    def test_argv_carries_the_limits(self):
        conf = self.make_conf(**{'coordinator.workers': 3,
                                 'coordinator.threads': 2,
                                 'coordinator.header_timeout': 7,
                                 'coordinator.client_timeout': 11,
                                 'coordinator.request_timeout': 13,
                                 'coordinator.listen_backlog': 50,
                                 'coordinator.bind_host': '::1',
                                 'coordinator.bind_port': 8790})
        argv = cmd.uwsgi_argv(conf, '/x/uwsgi')
        pairs = dict(zip(argv, argv[1:], strict=False))
        self.assertEqual('/x/uwsgi', argv[0])
        self.assertEqual('[::1]:8790', pairs['--http'])
        self.assertEqual(cmd.MODULE, pairs['--module'])
        for option, value in (('--processes', '3'), ('--threads', '2'),
                              ('--http-headers-timeout', '7'),
                              ('--http-timeout', '13'), ('--harakiri', '13'),
                              ('--listen', '50'), ('--limit-post', '65536')):
            self.assertEqual(value, pairs[option], option)
        for flag in ('--lazy-apps', '--die-on-term', '--no-orphans',
                     '--master', '--need-app'):
            self.assertIn(flag, argv)

    def test_router_waits_for_a_worker_as_long_as_harakiri(self):
        # uWSGI's router drops a request, without any response, once its
        # worker has been silent for --http-timeout seconds.
        for client, request, expected in ((5, 60, '60'), (90, 60, '90')):
            conf = self.make_conf(**{
                'coordinator.client_timeout': client,
                'coordinator.request_timeout': request})
            argv = cmd.uwsgi_argv(conf, '/x/uwsgi')
            pairs = dict(zip(argv, argv[1:], strict=False))
            self.assertEqual(expected, pairs['--http-timeout'])

    def test_execs_uwsgi_with_the_config_files(self):
        path = self.useFixture(fixtures.TempDir()).path
        conf_file = os.path.join(path, 'c.conf')
        with open(conf_file, 'w') as f:
            f.write('[coordinator]\nstate_path = %s\n'
                    'auth_strategy = shared_secret\nshared_secret = x\n'
                    % self.state_path)
        execve = self.useFixture(fixtures.MockPatch('os.execve')).mock
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.coordinator.cmd.uwsgi_path',
            return_value='/x/uwsgi'))
        cmd.main(['--config-file', conf_file])
        binary, argv, env = execve.call_args[0]
        self.assertEqual('/x/uwsgi', binary)
        self.assertEqual(conf_file, env[wsgi.CONFIG_ENV])

    def test_without_uwsgi_a_clear_error(self):
        path = self.useFixture(fixtures.TempDir()).path
        conf_file = os.path.join(path, 'c.conf')
        with open(conf_file, 'w') as f:
            f.write('[coordinator]\nstate_path = %s\n'
                    'auth_strategy = shared_secret\nshared_secret = x\n'
                    % self.state_path)
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.coordinator.cmd.uwsgi_path', return_value=None))
        err = self.useFixture(fixtures.MockPatch('sys.stderr',
                                                 io.StringIO())).mock
        self.assertEqual(1, cmd.main(['--config-file', conf_file]))
        self.assertIn('pip install uwsgi', err.getvalue())
