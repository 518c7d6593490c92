"""bashate and shellcheck on every shell script of the repository.

The scripts are the files git tracks whose first line is a bash or sh
shebang (the devstack plugin's settings and lib/fastboot have one too).
bashate runs as devstack's own tox does (long lines allowed; E005 and
E042 are errors); shellcheck follows what the scripts source where it
can, and cannot follow devstack's files, which are not in this tree
(SC1091).
"""

import os
import shutil
import subprocess

import testtools

from tests.devstack import base


def shell_scripts():
    files = subprocess.run(['git', '-C', base.REPO, 'ls-files', '-z'],
                           stdout=subprocess.PIPE, check=True,
                           text=True).stdout.split('\0')
    scripts = []
    for name in filter(None, files):
        path = os.path.join(base.REPO, name)
        if not os.path.isfile(path):
            continue
        with open(path, 'rb') as f:
            first = f.readline(80)
        if first.startswith(b'#!') and first.rstrip().split(b'/')[-1] in (
                b'bash', b'sh', b'env bash'):
            scripts.append(name)
    return sorted(scripts)


def tool(name):
    """The checker beside this Python (the tox env), else on PATH."""
    import sys
    here = os.path.join(os.path.dirname(sys.executable), name)
    path = here if os.access(here, os.X_OK) else shutil.which(name)
    if not path:
        raise RuntimeError('%s not found: run "tox -e devstack", which '
                           'installs it' % name)
    return path


class TestShellScripts(testtools.TestCase):

    def test_the_plugin_is_checked(self):
        scripts = shell_scripts()
        for name in ('devstack/plugin.sh', 'devstack/lib/fastboot',
                     'devstack/settings', 'devstack/override-defaults',
                     'tests/devstack/harness.sh', 'tests/devstack/stubs.sh'):
            self.assertIn(name, scripts)

    def _run(self, argv):
        proc = subprocess.run(argv, cwd=base.REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        self.assertEqual(0, proc.returncode, proc.stdout)

    def test_bashate(self):
        self._run([tool('bashate'), '-v', '-i', 'E006', '-e', 'E005,E042']
                  + shell_scripts())

    def test_shellcheck(self):
        self._run([tool('shellcheck'), '--shell=bash', '--external-sources',
                   '--exclude=SC1091'] + shell_scripts())
