"""``check``: reading the three formats and judging live values."""

import os
from unittest import mock

import fixtures
from oslotest import base

from fastboot_nova import tuning
from fastboot_nova.tuning import checker
from fastboot_nova.tuning import configfile

PROFILE_ARGS = dict(servers=500, computes=2)


class FileTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.profile = tuning.generate(tuning.Inputs(**PROFILE_ARGS))

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def failing(self, *args):
        files = [tuning.ConfigFile.from_arg(a) for a in args]
        return {(f.setting.section, f.setting.name): f.problem
                for f in tuning.check(self.profile, files)}


class TestKinds(base.BaseTestCase):

    def test_guess_from_name(self):
        for path, kind in [('/etc/nova/nova.conf', 'nova'),
                           ('/etc/nova/nova-cpu.conf', 'nova-cpu'),
                           ('/etc/nova/nova_cell1.conf', 'nova'),
                           ('/etc/cinder/cinder.conf', 'cinder'),
                           ('/etc/placement/placement.conf', 'placement'),
                           ('/etc/rabbitmq/rabbitmq.conf', 'rabbitmq'),
                           ('/etc/mysql/my.cnf', 'mariadb'),
                           ('/etc/mysql/mariadb.conf.d/50-server.cnf',
                            'mariadb')]:
            self.assertEqual(kind, tuning.ConfigFile.from_arg(path).kind)

    def test_explicit_kind(self):
        f = tuning.ConfigFile.from_arg('nova-cpu=/tmp/x.ini')
        self.assertEqual(('nova-cpu', '/tmp/x.ini'), (f.kind, f.path))

    def test_unknown_name(self):
        e = self.assertRaises(tuning.ConfigFileError,
                              tuning.ConfigFile.from_arg, '/etc/foo.ini')
        self.assertIn('/etc/foo.ini', str(e))
        self.assertIn('KIND=', str(e))

    def test_unknown_kind_is_part_of_the_path(self):
        e = self.assertRaises(tuning.ConfigFileError,
                              tuning.ConfigFile.from_arg, 'glance=/x.conf')
        self.assertIn('cannot tell which service', str(e))


class TestNovaConf(FileTestCase):

    def test_defaults_fail_with_reasons(self):
        path = self.write('nova.conf', '[DEFAULT]\ndebug = true\n')
        failing = self.failing(path)
        self.assertIn('10 (default), needs >= 50',
                      failing[('DEFAULT', 'max_concurrent_builds')])
        self.assertIn('50 (default), needs <= 20',
                      failing[('database', 'max_overflow')])
        self.assertIn('the default depends on the host',
                      failing[('conductor', 'workers')])
        # Defaults that suffice are not reported: 1800 s for 500 servers.
        self.assertNotIn(('DEFAULT', 'long_rpc_timeout'), failing)
        self.assertNotIn(('DEFAULT', 'rpc_response_timeout'), failing)

    def test_live_values_judged(self):
        path = self.write('nova.conf', (
            '[DEFAULT]\nmax_concurrent_builds = 49\n'
            'default_thread_pool_size = 500\n'
            '[database]\nmax_overflow = 21\n'
            '[quota]\ninstances = -1\ncores = 499\n'))
        failing = self.failing(path)
        self.assertIn('49, needs >= 50',
                      failing[('DEFAULT', 'max_concurrent_builds')])
        self.assertNotIn(('DEFAULT', 'default_thread_pool_size'), failing)
        self.assertIn('21, needs <= 20', failing[('database', 'max_overflow')])
        # -1 is unlimited for Nova's quotas.
        self.assertNotIn(('quota', 'instances'), failing)
        self.assertIn('499, needs >= 500', failing[('quota', 'cores')])

    def test_last_occurrence_wins(self):
        # oslo.config uses the last value; so does check.
        path = self.write('nova.conf', (
            '[DEFAULT]\nmax_concurrent_builds = 50\n'
            '[DEFAULT]\nmax_concurrent_builds = 5\n'))
        self.assertIn(('DEFAULT', 'max_concurrent_builds'),
                      self.failing(path))

    def test_not_an_integer(self):
        path = self.write('nova.conf',
                          '[DEFAULT]\nmax_concurrent_builds = lots\n')
        self.assertEqual("not an integer: 'lots'",
                         self.failing(path)[('DEFAULT',
                                             'max_concurrent_builds')])

    def test_compute_file_judged_on_compute_settings_only(self):
        path = self.write('nova-cpu.conf', '[DEFAULT]\n')
        failing = self.failing(path)
        self.assertIn(('DEFAULT', 'max_concurrent_builds'), failing)
        self.assertNotIn(('database', 'max_overflow'), failing)
        self.assertNotIn(('conductor', 'workers'), failing)

    def test_passing_file(self):
        path = self.write('nova.conf', '')
        tuning.apply(self.profile, [tuning.ConfigFile.from_arg(path)],
                     backup=False)
        self.assertEqual({}, self.failing(path))


class TestMyCnf(FileTestCase):

    def test_groups_and_dashes(self):
        # mariadbd reads [mariadbd] after [mysqld]: its value wins; dashes
        # and underscores are one name.
        path = self.write('my.cnf', (
            '[client]\nmax_connections = 5000\n'
            '[mysqld]\nskip-name-resolve\nmax-connections = 5000\n'
            '!includedir /etc/mysql/conf.d/\n'
            '[mariadbd]\nmax_connections = 100\n'))
        failing = self.failing(path)
        self.assertIn('100, needs >= 770',
                      failing[('mysqld', 'max_connections')])

    def test_trailing_comment(self):
        path = self.write('my.cnf', '[mysqld]\nmax_connections = 900 # big\n'
                                    'open_files_limit = 9000\n'
                                    'max_connect_errors = 10000\n')
        self.assertEqual({}, self.failing(path))

    def test_suffixes(self):
        path = self.write('my.cnf', '[mysqld]\nmax_connections = 1K\n'
                                    'open_files_limit = 1M\n'
                                    'max_connect_errors = 10000\n')
        self.assertEqual({}, self.failing(path))

    def test_unparsable(self):
        for text, why in [('max_connections = 5\n', 'before any [group]'),
                          ('[mysqld\n', 'bad group header'),
                          ('[mysqld]\nmax connections = 5\n',
                           'bad option name')]:
            path = self.write('my.cnf', text)
            e = self.assertRaises(tuning.ConfigFileError, self.failing,
                                  path)
            self.assertIn(path, str(e))
            self.assertIn(why, str(e))


class TestRabbitmqConf(FileTestCase):

    def test_heartbeat(self):
        path = self.write('rabbitmq.conf', '# x\nheartbeat = 60\n'
                                           'listeners.tcp.default = 5672\n')
        self.assertIn('60, needs >= 120', self.failing(path)[(None,
                                                              'heartbeat')])

    def test_classic_format_is_unparsable(self):
        path = self.write('rabbitmq.conf', '[{rabbit, []}].\n')
        e = self.assertRaises(tuning.ConfigFileError, self.failing, path)
        self.assertIn('line 1', str(e))


class TestFileErrors(FileTestCase):

    def test_missing(self):
        path = os.path.join(self.dir, 'nova.conf')
        e = self.assertRaises(tuning.ConfigFileError, self.failing, path)
        self.assertEqual('%s: no such file' % path, str(e))

    def test_directory(self):
        path = os.path.join(self.dir, 'nova.conf')
        os.mkdir(path)
        e = self.assertRaises(tuning.ConfigFileError, self.failing, path)
        self.assertIn('is a directory', str(e))

    def test_unreadable(self):
        # Tests run as root, which reads any mode: make open() refuse.
        path = self.write('nova.conf', '[DEFAULT]\n')
        with mock.patch('builtins.open',
                        side_effect=PermissionError(13, 'Permission denied')):
            e = self.assertRaises(tuning.ConfigFileError, self.failing,
                                  path)
        self.assertEqual('%s: cannot be read: Permission denied' % path,
                         str(e))

    def test_not_utf8(self):
        path = os.path.join(self.dir, 'nova.conf')
        with open(path, 'wb') as f:
            f.write(b'[DEFAULT]\ndebug = \xff\n')
        e = self.assertRaises(tuning.ConfigFileError, self.failing, path)
        self.assertIn('not UTF-8', str(e))

    def test_ini_unparsable(self):
        for text, why in [('[DEFAULT]\njust words\n', "No ':' or '='"),
                          ('debug = true\n', 'option outside any section'),
                          ('[DEFAULT\n', 'must end with ]')]:
            path = self.write('nova.conf', text)
            e = self.assertRaises(tuning.ConfigFileError, self.failing,
                                  path)
            self.assertIn(why, str(e))
            self.assertIn('line ', str(e))

    def test_one_bad_file_stops_before_judging(self):
        good = self.write('nova.conf', '[DEFAULT]\n')
        e = self.assertRaises(
            tuning.ConfigFileError, checker.evaluate, self.profile,
            [tuning.ConfigFile.from_arg(good),
             tuning.ConfigFile.from_arg(os.path.join(self.dir, 'my.cnf'))])
        self.assertIn('my.cnf: no such file', str(e))


class TestToInt(base.BaseTestCase):

    def test_values(self):
        self.assertEqual(5, configfile.to_int(' 5 '))
        self.assertEqual(-1, configfile.to_int('-1'))
        self.assertEqual(2048, configfile.to_int('2k'))
        self.assertEqual(3 * 1024 ** 3, configfile.to_int('3G'))
        self.assertRaises(ValueError, configfile.to_int, 'x')
        self.assertRaises(ValueError, configfile.to_int, '')
