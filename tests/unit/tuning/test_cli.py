"""``fastboot-tune``: exit codes and messages."""

import io
import os

import fixtures
from oslotest import base
import yaml

from fastboot_nova.cmd import tune

STORM = ['--servers', '500', '--computes', '2']


class CliTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path

    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        code = tune.main(list(argv), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path


class TestGenerate(CliTestCase):

    def test_ini(self):
        code, out, err = self.run_cli('generate', *STORM)
        self.assertEqual((0, ''), (code, err))
        self.assertIn('\nmax_concurrent_builds = 50\n', out)
        self.assertIn('#   formula: max(10, min(ceil(N / H), 50))\n', out)
        self.assertIn('[mysqld]\n', out)
        self.assertIn('# rabbitmq-server LimitNOFILE = 65536\n', out)

    def test_yaml(self):
        code, out, _err = self.run_cli('generate', *STORM, '--format',
                                       'yaml')
        self.assertEqual(0, code)
        data = yaml.safe_load(out)
        self.assertEqual(500, data['inputs']['servers'])
        builds = [s for s in data['files']['nova']
                  if s['name'] == 'max_concurrent_builds']
        self.assertEqual([50], [s['value'] for s in builds])
        self.assertEqual('below', builds[0]['fails_if'])
        self.assertEqual(770, data['figures']['DB connections needed'])

    def test_bad_numbers(self):
        for argv, words in [
                (['--servers', '0', '--computes', '2'], 'servers >= 1'),
                (['--servers', '5', '--computes', '0'], 'computes >= 1'),
                (STORM + ['--db-max-connections', '100'],
                 'db_max_connections >= engines x 5')]:
            code, out, err = self.run_cli('generate', *argv)
            self.assertEqual((2, ''), (code, out), argv)
            self.assertTrue(err.startswith('fastboot-tune: error: '), err)
            self.assertIn(words, err)
            self.assertEqual(1, err.count('\n'))

    def test_usage_errors(self):
        for argv in (['generate', '--computes', '2'],
                     ['generate', '--servers', 'many', '--computes', '2'],
                     ['frobnicate'],
                     ['check', *STORM]):
            code, out, err = self.run_cli(*argv)
            self.assertEqual((2, ''), (code, out), argv)
            self.assertIn('usage: fastboot-tune', err)
            self.assertIn('fastboot-tune: error: ', err)


class TestCheckAndApply(CliTestCase):

    def test_check_fails_then_apply_then_passes(self):
        nova = self.write('nova.conf', '[DEFAULT]\n# mine\n')
        cnf = self.write('my.cnf', '[mysqld]\n')
        code, out, err = self.run_cli('check', *STORM, '--config-file',
                                      nova, '--config-file', cnf)
        self.assertEqual((1, ''), (code, err))
        self.assertIn('FAIL %s [DEFAULT] max_concurrent_builds = (unset): '
                      '10 (default), needs >= 50: ' % nova, out)
        self.assertIn('FAIL %s [mysqld] max_connections' % cnf, out)
        self.assertTrue(out.endswith(
            'settings will fail at 500 servers on 2 computes\n'))

        code, out, err = self.run_cli('apply', *STORM, '--config-file',
                                      nova, '--config-file', 'mariadb=' + cnf)
        self.assertEqual((0, ''), (code, err))
        self.assertIn('set %s [DEFAULT] max_concurrent_builds = 50 (was '
                      '(unset))' % nova, out)
        self.assertIn('backup %s.fastboot-tune-' % nova, out)

        code, out, err = self.run_cli('check', *STORM, '--config-file',
                                      nova, '--config-file', cnf, '-v')
        self.assertEqual((0, ''), (code, err))
        self.assertIn('ok %s [DEFAULT] max_concurrent_builds = 50' % nova,
                      out)
        self.assertIn('\n0 of ', out)

    def test_check_missing_file(self):
        path = os.path.join(self.dir, 'nova.conf')
        code, out, err = self.run_cli('check', *STORM, '--config-file',
                                      path)
        self.assertEqual((2, ''), (code, out))
        self.assertEqual('fastboot-tune: error: %s: no such file\n' % path,
                         err)

    def test_check_unknown_kind(self):
        path = self.write('settings.ini', '[DEFAULT]\n')
        code, _out, err = self.run_cli('check', *STORM, '--config-file',
                                       path)
        self.assertEqual(2, code)
        self.assertIn('cannot tell which service it configures', err)

    def test_apply_refuses_unparsable(self):
        bad = '[DEFAULT]\nthis is not an option\n'
        nova = self.write('nova.conf', bad)
        code, out, err = self.run_cli('apply', *STORM, '--config-file',
                                      nova)
        self.assertEqual((2, ''), (code, out))
        self.assertIn('%s: cannot be parsed, line 2' % nova, err)
        with open(nova) as f:
            self.assertEqual(bad, f.read())
        self.assertEqual(['nova.conf'], os.listdir(self.dir))

    def test_apply_dry_run(self):
        nova = self.write('nova.conf', '[DEFAULT]\n')
        code, out, _err = self.run_cli('apply', *STORM, '--dry-run',
                                       '--config-file', nova)
        self.assertEqual(0, code)
        self.assertIn('would set %s [DEFAULT] max_concurrent_builds' % nova,
                      out)
        with open(nova) as f:
            self.assertEqual('[DEFAULT]\n', f.read())
