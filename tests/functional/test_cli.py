"""The installed ``fastboot`` console script, run as a real process.

These need no QEMU: they check the entry points, the exit codes and the
error lines users see, and the state path handling of the real engine.
"""

import json
import os
import subprocess
import sys

import fixtures
from oslotest import base


def _script(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        raise AssertionError('%s is not installed beside %s; run the tests '
                             'through tox' % (name, sys.executable))
    return path


class TestConsoleScript(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.state = os.path.join(self.tmp, 'state')
        self.env = dict(os.environ, HOME=self.tmp,
                        XDG_CACHE_HOME=os.path.join(self.tmp, 'cache'))
        self.env.pop('FASTBOOT_STATE_PATH', None)

    def fastboot(self, *argv, env=None):
        proc = subprocess.run([_script('fastboot')] + list(argv),
                              capture_output=True, text=True,
                              stdin=subprocess.DEVNULL,
                              env=env or self.env, timeout=60, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def test_help(self):
        code, out, err = self.fastboot('--help')
        self.assertEqual(0, code, err)
        self.assertIn('image list', out)
        code, out, err = self.fastboot('image', 'list', '--help')
        self.assertEqual(0, code, err)
        self.assertIn('usage: fastboot image list', out)

    def test_version(self):
        code, out, err = self.fastboot('--version')
        self.assertEqual(0, code, err)
        self.assertTrue(out.startswith('fastboot '), out)

    def test_list_empty_engine(self):
        code, out, err = self.fastboot('--state-path', self.state, 'list',
                                       '-f', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out))
        self.assertTrue(os.path.isdir(os.path.join(self.state, 'vms')))

    def test_state_path_from_environment(self):
        env = dict(self.env, FASTBOOT_STATE_PATH=self.state)
        code, out, err = self.fastboot('image', 'list', '-f', 'json',
                                       env=env)
        self.assertEqual(0, code, err)
        self.assertEqual([], json.loads(out))
        self.assertTrue(os.path.isdir(self.state))

    def test_error_is_one_line(self):
        code, out, err = self.fastboot('--state-path', self.state,
                                       'destroy', 'ghost')
        self.assertEqual(1, code)
        self.assertEqual('fastboot: error: VM ghost does not exist.\n', err)

    def test_corrupt_state_file(self):
        os.makedirs(self.state)
        with open(os.path.join(self.state, 'state.json'), 'w') as f:
            f.write('{not json')
        code, out, err = self.fastboot('--state-path', self.state, 'list')
        self.assertEqual(1, code)
        self.assertIn('fastboot: error: State file', err)
        self.assertNotIn('Traceback', err)

    def test_bad_name_is_a_usage_error(self):
        code, out, err = self.fastboot('--state-path', self.state,
                                       'destroy', '$(reboot)')
        self.assertEqual(2, code)
        self.assertIn("Invalid VM name '$(reboot)'", err)
        self.assertFalse(os.path.exists(self.state))

    def test_genconfig(self):
        out = os.path.join(self.tmp, 'fastboot.conf.sample')
        subprocess.run([_script('oslo-config-generator'), '--namespace',
                        'fastboot', '--output-file', out], check=True,
                       env=self.env, timeout=60)
        with open(out) as f:
            self.assertIn('#use_cache_snapshot = false', f.read())
        with open(out) as f:
            sample = f.read()
        self.assertIn('[fastboot_qemu]', sample)

    # -- the security review's attacks, through the real script --------

    def test_destroy_with_an_edited_state_path_deletes_nothing(self):
        victim = os.path.join(self.tmp, 'victim')
        with open(victim, 'w') as f:
            f.write('precious')
        os.makedirs(self.state)
        with open(os.path.join(self.state, 'state.json'), 'w') as f:
            json.dump({'version': 1, 'export': {}, 'images': {},
                       'vms': {'x': {'image': 'img', 'path': victim,
                                     'status': 'ready'}}}, f)
        code, out, err = self.fastboot('--state-path', self.state,
                                       'destroy', 'x')
        self.assertEqual(1, code)
        self.assertIn('changed outside fastboot, nothing was done', err)
        with open(victim) as f:
            self.assertEqual('precious', f.read())

    def test_connection_info_from_dev_zero_does_not_hang(self):
        # Bounded by fastboot()'s 60 s timeout; it used to read forever.
        code, out, err = self.fastboot('--state-path', self.state, 'image',
                                       'add', 'img', '--connection-info',
                                       '/dev/zero')
        self.assertEqual(1, code)
        self.assertIn('/dev/zero is not a regular file', err)

    def test_huge_name_is_not_echoed_whole(self):
        code, out, err = self.fastboot('--state-path', self.state,
                                       'destroy', 'a' * 100000)
        self.assertEqual(2, code)
        self.assertIn('(100000 characters)', err)
        self.assertLess(len(err), 2000)
