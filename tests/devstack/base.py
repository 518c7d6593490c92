"""Running the devstack plugin's phases offline (``tox -e devstack``).

devstack itself cannot run here (it clones from the internet and needs
systemd), so each test builds a temporary tree the way stack.sh would
find it: a copy of devstack's own tree at a pinned commit
(``DEVSTACK_DIR``, default ``../shared/devstack`` beside the repository)
with a ``local.conf``, ``$DEST/fastboot`` pointing at this repository,
Nova's real ``api-paste.ini`` and Horizon's real ``local/`` tree (from
the nova and horizon wheels ``tox -e devstack`` downloads into
``FASTBOOT_DEVSTACK_WHEELS``). ``harness.sh`` then runs the phases with
devstack's real functions; only the calls of ``stubs.sh`` (packages, pip,
systemctl, sudo outside the tree, mysql, openstack) are recorded instead
of run. ``fastboot-tune`` is the real one; the other fastboot commands
are recorded.
"""

import configparser
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile

import testtools

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
HARNESS = os.path.join(HERE, 'harness.sh')

#: The fastboot commands the plugin runs; recorded, not run.
RECORDED_BINS = ('fastboot', 'fastboot-coordinator',
                 'fastboot-coordinator-manage', 'fastboot-runner',
                 'fastboot-notification-listener')

PASSWORDS = {'ADMIN_PASSWORD': 'secretadmin',
             'DATABASE_PASSWORD': 'secretdb',
             'RABBIT_PASSWORD': 'secretrabbit',
             'SERVICE_PASSWORD': 'secretservice'}


DEVSTACK_FILES = ('stackrc', 'functions-common', 'inc/ini-config',
                  'lib/nova', 'lib/nova_plugins/hypervisor-libvirt')


def _main_checkout():
    """The main checkout of a git worktree (its common .git's parent)."""
    try:
        common = subprocess.run(
            ['git', '-C', REPO, 'rev-parse', '--path-format=absolute',
             '--git-common-dir'], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return os.path.dirname(common) if common else None


def devstack_dir():
    """DEVSTACK_DIR, else ../shared/devstack beside the repository.

    A git worktree also looks beside its main checkout, so every
    worktree of /work/main finds /work/shared/devstack.
    """
    if os.environ.get('DEVSTACK_DIR'):
        candidates = [os.environ['DEVSTACK_DIR']]
    else:
        candidates = [os.path.join(os.path.dirname(REPO), 'shared',
                                   'devstack')]
        main = _main_checkout()
        if main:
            candidates.append(os.path.join(os.path.dirname(main), 'shared',
                                           'devstack'))
    for path in map(os.path.abspath, candidates):
        if all(os.path.isfile(os.path.join(path, n))
               for n in DEVSTACK_FILES):
            return path
    raise RuntimeError(
        'devstack tree not found (looked in %s for %s). Set DEVSTACK_DIR '
        'to a checkout of openstack/devstack: the tests source its '
        'function library.' % (', '.join(candidates),
                               ', '.join(DEVSTACK_FILES)))


def wheel(name):
    """The downloaded wheel of ``name`` (tox -e devstack fetches it)."""
    where = os.environ.get('FASTBOOT_DEVSTACK_WHEELS', '')
    found = sorted(glob.glob(os.path.join(where, '%s-*.whl' % name)))
    if not where or not found:
        raise RuntimeError(
            'no %s wheel in FASTBOOT_DEVSTACK_WHEELS=%r: run the tests with '
            '"tox -e devstack", which downloads it (pip download --no-deps '
            'nova horizon)' % (name, where))
    return found[-1]


def read_ini(path):
    # DEFAULT as an ordinary section: its options are not inherited.
    parser = configparser.RawConfigParser(
        strict=False, interpolation=None, default_section='\0none')
    parser.optionxform = str
    with open(path) as f:
        parser.read_file(f)
    return parser


class DevstackTestCase(testtools.TestCase):
    """A temporary devstack tree, local.conf from :meth:`localrc`."""

    #: Extra localrc lines of the test class.
    LOCALRC = {}

    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp(prefix='fb-devstack-')
        self.addCleanup(shutil.rmtree, self.root, True)
        self.top = os.path.join(self.root, 'devstack')
        try:
            tree = devstack_dir()
        except RuntimeError as e:
            # A machine without the pinned devstack tree cannot run these
            # tests; FASTBOOT_REQUIRE_DEVSTACK=1 makes that an error.
            if os.environ.get('FASTBOOT_REQUIRE_DEVSTACK') == '1':
                raise
            self.skipTest(str(e))
        shutil.copytree(tree, self.top, symlinks=True)
        self.dest = os.path.join(self.root, 'opt', 'stack')
        self.data = os.path.join(self.dest, 'data')
        self.bin = os.path.join(self.root, 'bin')
        self.etc = os.path.join(self.root, 'etc')
        self.record = os.path.join(self.root, 'commands.log')
        os.makedirs(self.data)
        os.makedirs(self.bin)
        os.symlink(REPO, os.path.join(self.dest, 'fastboot'))
        self.nova_conf = os.path.join(self.etc, 'nova', 'nova.conf')
        self.cpu_conf = os.path.join(self.etc, 'nova', 'nova-cpu.conf')
        self.paste = os.path.join(self.etc, 'nova', 'api-paste.ini')
        self.fb_conf_dir = os.path.join(self.etc, 'fastboot')
        self.fb_conf = os.path.join(self.fb_conf_dir, 'fastboot.conf')
        self.psk = os.path.join(self.fb_conf_dir, 'exports.psk')
        self.enabled = os.path.join(self.dest, 'horizon',
                                    'openstack_dashboard', 'local',
                                    'enabled')
        self.settings_file = os.path.join(
            self.dest, 'horizon', 'openstack_dashboard', 'local',
            'local_settings.d', '_1480_fastboot_settings.py')
        self._nova_paste()
        self._horizon()
        self._bins()

    def _nova_paste(self):
        self.paste_source = os.path.join(self.root, 'nova-api-paste.ini')
        with zipfile.ZipFile(wheel('nova')) as whl:
            name = [n for n in whl.namelist()
                    if n.endswith('/data/etc/nova/api-paste.ini')][0]
            with open(self.paste_source, 'wb') as f:
                f.write(whl.read(name))

    def _horizon(self):
        horizon = os.path.join(self.dest, 'horizon')
        with zipfile.ZipFile(wheel('horizon')) as whl:
            for name in whl.namelist():
                if name.startswith('openstack_dashboard/local/'):
                    whl.extract(name, horizon)
        local = os.path.join(horizon, 'openstack_dashboard', 'local')
        # What devstack's configure_horizon does with the example.
        shutil.copy(os.path.join(local, 'local_settings.py.example'),
                    os.path.join(local, 'local_settings.py'))

    def _bins(self):
        for name in RECORDED_BINS + ('python',):
            self._script(name, '#!/bin/bash\n'
                         'line=$(printf "%%q " %s "$@")\n'
                         'echo "${line%% }" >> "$FB_RECORD"\n'
                         % ('"python@$PWD"' if name == 'python'
                            else name))
        self._script('fastboot-tune',
                     '#!/bin/bash\n'
                     'line=$(printf "%%q " fastboot-tune "$@")\n'
                     'echo "${line%% }" >> "$FB_RECORD"\n'
                     'PYTHONPATH=%s exec %s -m fastboot_nova.cmd.tune "$@"\n'
                     % (shlex.quote(REPO), shlex.quote(sys.executable)))

    def _script(self, name, text):
        path = os.path.join(self.bin, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, 0o755)

    def localrc(self, **extra):
        values = {
            'DEST': self.dest,
            'DATA_DIR': self.data,
            'HOST_IP': '192.0.2.10',
            'LIBVIRT_TYPE': 'qemu',
            'SERVICE_HOST': '192.0.2.10',
            'STACK_USER': subprocess.check_output(
                ['id', '-un'], text=True).strip(),
            'LOGFILE': '',
            # devstack's defaults less tempest (extras.d would install it)
            # and neutron (not needed by any phase tested here).
            'ENABLED_SERVICES': 'key,mysql,rabbit,n-api,n-cpu,n-cond,'
                                'n-sch,placement-api,g-api,c-api,c-sch,'
                                'c-vol,horizon',
            'FASTBOOT_CONF_DIR': self.fb_conf_dir,
            'FASTBOOT_BIN_DIR': self.bin,
            'PYTHON': os.path.join(self.bin, 'python'),
            'FB_NOVA_API_PASTE': self.paste_source,
        }
        values.update(PASSWORDS)
        values.update(self.LOCALRC)
        values.update(extra)
        lines = ['%s=%s' % (k, shlex.quote(str(v)))
                 for k, v in values.items() if v is not None]
        # After DEST: enable_plugin clones into $DEST/fastboot.
        lines.append('enable_plugin fastboot file://%s' % REPO)
        return '\n'.join(lines) + '\n'

    def write_local_conf(self, meta='', **extra):
        """local.conf: localrc, then ``meta`` (other sections).

        ``meta`` is for sections such as ``[[post-config|$NOVA_CPU_CONF]]``.
        """
        text = self.localrc(**extra)
        with open(os.path.join(self.top, 'local.conf'), 'w') as f:
            f.write('[[local|localrc]]\n' + text + meta)
        # What stack.sh extracts from local.conf before sourcing stackrc.
        with open(os.path.join(self.top, '.localrc.auto'), 'w') as f:
            f.write(text)

    def run_steps(self, *steps, check=True):
        """harness.sh STEP...; returns (returncode, output)."""
        env = {'PATH': os.environ.get('PATH', '/usr/bin:/bin'),
               'HOME': self.root, 'LANG': 'C.UTF-8',
               'FB_ROOT': self.root, 'FB_RECORD': self.record}
        before = self.commands()
        proc = subprocess.run(['bash', HARNESS, self.root] + list(steps),
                              env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True,
                              timeout=120)
        self.last_commands = self.commands()[len(before):]
        if check and proc.returncode != 0:
            self.fail('harness.sh %s failed (%d):\n%s'
                      % (' '.join(steps), proc.returncode,
                         proc.stdout[-6000:]))
        return proc.returncode, proc.stdout

    def commands(self):
        """Every recorded call so far, as argument lists."""
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [shlex.split(line) for line in f if line.strip()]

    def step_commands(self, step):
        """The calls recorded during one step (between its markers)."""
        out, inside = [], False
        for command in self.commands():
            if command[:1] == ['#']:
                inside = command[1:] == [step]
            elif inside:
                out.append(command)
        return out

    def snapshot(self, name, path):
        """``path`` as it was at the harness step ``snapshot:NAME``.

        ``path`` is under ROOT/etc or Horizon's enabled/ directory, or is
        the panel's settings file in local_settings.d.
        """
        where = os.path.join(self.root, 'snapshots', name)
        if path.startswith(self.enabled):
            return os.path.join(where, 'enabled',
                                os.path.relpath(path, self.enabled))
        if path == self.settings_file:
            return os.path.join(where, 'local_settings.d',
                                os.path.basename(path))
        return os.path.join(where, 'etc', os.path.relpath(path, self.etc))

    def find(self, *prefix, commands=None):
        commands = self.last_commands if commands is None else commands
        return [c for c in commands if c[:len(prefix)] == list(prefix)]

    def index(self, *prefix, commands=None):
        commands = self.last_commands if commands is None else commands
        for i, c in enumerate(commands):
            if c[:len(prefix)] == list(prefix):
                return i
        self.fail('no recorded command %r in:\n%s' % (
            prefix, '\n'.join(' '.join(c) for c in commands)))

    def assertRecorded(self, *prefix):
        self.assertTrue(self.find(*prefix), 'no recorded command %r in:\n%s'
                        % (prefix, '\n'.join(' '.join(c)
                                             for c in self.last_commands)))

    def assertNotRecorded(self, *prefix):
        self.assertEqual([], self.find(*prefix))

    def ini(self, path):
        return read_ini(path)

    def text(self, path):
        with open(path) as f:
            return f.read()
