"""The installed ``fastboot-tune`` console script, run as a real process."""

import os
import subprocess
import sys

import fixtures
from oslotest import base

STORM = ['--servers', '200', '--computes', '2']


def _script():
    path = os.path.join(os.path.dirname(sys.executable), 'fastboot-tune')
    if not os.path.exists(path):
        raise AssertionError('fastboot-tune is not installed beside %s; run '
                             'the tests through tox' % sys.executable)
    return path


class TestTuneScript(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def tune(self, *argv):
        proc = subprocess.run([_script()] + list(argv), capture_output=True,
                              text=True, stdin=subprocess.DEVNULL,
                              timeout=120, check=False)
        return proc.returncode, proc.stdout, proc.stderr

    def test_check_apply_check(self):
        nova = os.path.join(self.tmp, 'nova.conf')
        with open(nova, 'w') as f:
            f.write('[DEFAULT]\n# operator note\nmy_ip = 192.0.2.1\n')
        code, out, _err = self.tune('check', *STORM, '--config-file', nova)
        self.assertEqual(1, code)
        self.assertIn('FAIL %s [DEFAULT] max_concurrent_builds' % nova, out)
        code, out, err = self.tune('apply', *STORM, '--config-file', nova)
        self.assertEqual((0, ''), (code, err))
        code, out, _err = self.tune('check', *STORM, '--config-file', nova)
        self.assertEqual(0, code)
        with open(nova) as f:
            text = f.read()
        self.assertTrue(text.startswith(
            '[DEFAULT]\n# operator note\nmy_ip = 192.0.2.1\n'))

    def test_impossible_input(self):
        code, out, err = self.tune('generate', '--servers', '0',
                                   '--computes', '1')
        self.assertEqual((2, ''), (code, out))
        self.assertIn('fastboot-tune: error: Constraint servers >= 1 '
                      'violated: got 0', err)
