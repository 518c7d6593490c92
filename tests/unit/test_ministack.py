"""ministack's process and config helpers (stdlib only, real processes)."""

import pathlib
import signal
import subprocess
import sys

import time

import fixtures
import testtools

from ministack import ini
from ministack import layout as layout_mod
from ministack import proc


def _wait_for_exec(pid, marker, timeout=10):
    """Until ``pid`` has exec'd: its command line names ``marker``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open('/proc/%d/cmdline' % pid, 'rb') as f:
            if str(marker).encode() in f.read():
                return
        time.sleep(0.01)
    raise AssertionError('pid %d did not start' % pid)


class TestIni(testtools.TestCase):

    def test_render_skips_none_and_spells_booleans(self):
        text = ini.render({'DEFAULT': {'debug': False, 'host': None,
                                       'port': 5},
                           'x': {'on': True}})
        self.assertEqual('[DEFAULT]\ndebug = false\nport = 5\n\n'
                         '[x]\non = true\n', text)


class TestLayout(testtools.TestCase):

    def test_ports_follow_the_base(self):
        layout = layout_mod.Layout.from_env({'MINISTACK_PORT_BASE': '23000',
                                             'MINISTACK_DIR': '/x'})
        self.assertEqual(23500, layout.port('keystone'))
        self.assertEqual('http://127.0.0.1:23774/v2.1',
                         layout.url('nova', '/v2.1'))
        self.assertEqual(pathlib.Path('/x/logs'), layout.logs)


class TestProc(testtools.TestCase):

    def setUp(self):
        super().setUp()
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.layout = layout_mod.Layout(run_dir=tmp, cache_dir=tmp)
        self.layout.make_dirs()

    def test_start_is_idempotent_and_stop_ends_it(self):
        argv = [sys.executable, '-c', 'import time; time.sleep(60)']
        pid = proc.start(self.layout, 'sleeper', argv)
        self.assertEqual(pid, proc.start(self.layout, 'sleeper', argv))
        self.assertEqual(pid, proc.running(self.layout, 'sleeper'))
        self.assertTrue(proc.stop(self.layout, 'sleeper', timeout=10))
        self.assertIsNone(proc.running(self.layout, 'sleeper'))
        self.assertFalse((self.layout.pids / 'sleeper.pid').exists())

    def test_pid_file_of_another_process_is_not_ours(self):
        (self.layout.pids / 'other.pid').write_text('1 12345\n')
        self.assertIsNone(proc.running(self.layout, 'other'))
        self.assertFalse(proc.stop(self.layout, 'other'))

    def test_a_service_that_exits_is_named_with_its_log(self):
        proc.start(self.layout, 'broken', [
            sys.executable, '-c',
            'print("bad option foo"); raise SystemExit(3)'])
        e = self.assertRaises(proc.ServiceFailed, proc.wait, self.layout,
                              'broken', lambda: False, timeout=10)
        self.assertEqual('broken', e.name)
        self.assertIn('bad option foo', str(e))

    def test_failed_setup_command_raises_with_tail(self):
        e = self.assertRaises(proc.ServiceFailed, proc.run, self.layout,
                              'sync', [sys.executable, '-c',
                                       'import sys; sys.exit("no db")'])
        self.assertIn('exited with 1', str(e))
        self.assertIn('no db', e.log_tail)

    def test_a_daemon_that_left_the_group_is_stopped_by_its_pidfile(self):
        # As qemu-storage-daemon --daemonize does: a new session, so
        # stopping the compute's process group leaves it running.
        pidfile = self.layout.run_dir / 'daemon.pid'
        daemon = subprocess.Popen(
            [sys.executable, '-c', 'import time; time.sleep(60)',
             str(pidfile)], start_new_session=True)
        self.addCleanup(daemon.wait)
        self.addCleanup(daemon.kill)
        pidfile.write_text('%d\n' % daemon.pid)
        _wait_for_exec(daemon.pid, pidfile)
        self.assertTrue(proc.stop_daemon(pidfile, timeout=10))
        self.assertEqual(-signal.SIGTERM, daemon.wait(10))

    def test_a_pidfile_naming_another_process_is_left_alone(self):
        pidfile = self.layout.run_dir / 'daemon.pid'
        other = subprocess.Popen([sys.executable, '-c',
                                  'import time; time.sleep(60)'])
        self.addCleanup(other.wait)
        self.addCleanup(other.kill)
        pidfile.write_text('%d\n' % other.pid)
        self.assertFalse(proc.stop_daemon(pidfile, timeout=1))
        self.assertIsNone(other.poll())
        self.assertFalse(proc.stop_daemon(self.layout.run_dir / 'none.pid'))


class TestDemoCommand(testtools.TestCase):
    """``python3 -m ministack demo``: its input, checked before any work."""

    def setUp(self):
        super().setUp()
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.useFixture(fixtures.EnvironmentVariable(
            'MINISTACK_DIR', str(self.tmp / 'run')))
        self.useFixture(fixtures.EnvironmentVariable(
            'MINISTACK_CACHE', str(self.tmp / 'cache')))

    def _main(self, *argv):
        from ministack import __main__ as main_mod
        err = self.useFixture(fixtures.StringStream('stderr')).stream
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
        try:
            rc = main_mod.main(list(argv))
        except SystemExit as e:
            rc = e.code
        err.seek(0)
        return rc, err.read()

    def test_count_below_one_is_refused(self):
        for bad in ('0', '-2', 'four'):
            rc, err = self._main('demo', '--vms', bad)
            self.assertEqual(2, rc)
            self.assertIn('not a positive count', err)
        self.assertFalse((self.tmp / 'run').exists())

    def test_stock_reaches_the_demo_in_the_venv(self):
        from ministack import orchestrate
        self.useFixture(fixtures.MockPatch(
            'ministack.orchestrate.all_names', return_value=[]))
        (self.tmp / 'run').mkdir()
        (self.tmp / 'run' / 'openrc-demo').write_text('')
        run = self.useFixture(fixtures.MockPatch(
            'ministack.orchestrate.subprocess.run')).mock
        run.return_value.returncode = 0
        up = self.useFixture(fixtures.MockPatchObject(orchestrate, 'up'))
        rc, _err = self._main('demo', '--stock', '--vms', '2')
        self.assertEqual(0, rc)
        argv = run.call_args.args[0]
        self.assertEqual(['-m', 'ministack.demo', '--vms', '2', '--stock'],
                         argv[1:])
        self.assertFalse(up.mock.called)


class TestDemoTable(testtools.TestCase):

    def test_rows_and_ratio(self):
        from ministack import demo
        text = demo._table({
            'vms': [{'name': 'a-1', 'boot_seconds': 3.5, 'ok': True,
                     'checksum_ok': True},
                    {'name': 'a-2', 'boot_seconds': None, 'ok': False,
                     'checksum_ok': False}],
            'origin_bytes_read': 300, 'image_bytes': 100,
            'storm_seconds': 9.0, 'all_ok': False})
        lines = text.splitlines()
        self.assertEqual(['a-1', '3.50', 'yes', 'yes'], lines[1].split())
        self.assertEqual(['a-2', '-', 'NO', 'NO'], lines[2].split())
        self.assertIn('3.00 x one image', lines[3])
        self.assertEqual('FAILED: see the table', lines[4])


SUM = 'ab12' * 16


class TestConsoleChecksum(testtools.TestCase):

    def setUp(self):
        super().setUp()
        from ministack.scenarios import cloud as cloud_mod
        from ministack import stack as stack_mod
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.cloud = cloud_mod.Cloud(stack_mod.Stack(
            layout_mod.Layout(run_dir=tmp, cache_dir=tmp)))

    def _console(self, sid, text):
        path = self.cloud.instance_dir('ms-c1', sid)
        path.mkdir(parents=True)
        (path / 'console.log').write_text(text)

    def test_checksum_line_read_missing_console_is_none(self):
        self._console('s1', 'boot\nFASTBOOT-CHECKSUM %s\n' % SUM)
        self._console('s2', 'booting...\n')
        self.assertEqual(SUM, self.cloud.checksum('ms-c1', 's1'))
        self.assertIsNone(self.cloud.checksum('ms-c1', 's2'))
        self.assertIsNone(self.cloud.checksum('ms-c1', 'gone'))

    def test_kernel_noise_around_or_inside_the_line(self):
        # Before the tag: still read. Inside the value: not a checksum
        # (waited for, never reported as a wrong one).
        self._console('s1', '[ 3.1] random: crng init\r'
                            'FASTBOOT-CHECKSUM %s\r\n' % SUM)
        self._console('s2', 'FASTBOOT-CHECKSUM %s[ 3.1] ata1: %s\n' % (
            SUM[:20], SUM[20:]))
        self.assertEqual(SUM, self.cloud.checksum('ms-c1', 's1'))
        self.assertIsNone(self.cloud.checksum('ms-c1', 's2'))

    def test_wait_checksums_ends_with_none_for_silent_guests(self):
        self._console('s1', 'FASTBOOT-CHECKSUM %s\n' % SUM)
        self._console('s2', '')
        out = self.cloud.wait_checksums(
            [{'ID': 's1', 'Host': 'ms-c1'}, {'ID': 's2', 'Host': 'ms-c1'}],
            time.monotonic(), timeout=1)
        self.assertEqual(SUM, out['s1'][1])
        self.assertIsNone(out['s2'][1])


class TestBackgroundSteps(testtools.TestCase):

    def test_after_raises_the_first_steps_error_and_skips_its_own(self):
        from ministack import orchestrate
        ran = []

        def boom():
            raise RuntimeError('ceph failed')
        first = orchestrate._background(boom)
        second = orchestrate._background(orchestrate._after, first,
                                         ran.append, 1)
        error = self.assertRaises(RuntimeError, second.join_or_raise)
        self.assertEqual('ceph failed', str(error))
        self.assertEqual([], ran)


class TestVenvPackages(testtools.TestCase):

    def test_coordinator_server_and_tooz_backend_are_installed(self):
        # The checkout goes in with --no-deps: what the coordinator
        # replicas exec (uWSGI) and their tooz backend (Redis) must be
        # named here, or a fresh venv's replicas exit at start.
        from ministack import install
        names = {p.split('==')[0].lower()
                 for p in install.PACKAGES + (install.UWSGI,)}
        self.assertIn('uwsgi', names)
        self.assertIn('redis', names)


class TestInstaller(testtools.TestCase):
    """Which installer builds the venv: uv when one is found, else pip."""

    def setUp(self):
        super().setUp()
        from ministack import install
        self.install = install
        self.tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.layout = layout_mod.Layout(run_dir=self.tmp / 'run',
                                        cache_dir=self.tmp / 'cache')
        # No uv on PATH, none in the bootstrap, unless a test puts one.
        self.useFixture(fixtures.EnvironmentVariable('PATH', str(self.tmp)))
        self.useFixture(fixtures.EnvironmentVariable(
            'FASTBOOT_BOOTSTRAP_VENV', str(self.tmp / 'boot')))
        self.useFixture(fixtures.EnvironmentVariable('MINISTACK_UV'))

    def _executable(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('#!/bin/sh\n')
        path.chmod(0o755)
        return str(path)

    def test_pip_without_uv(self):
        self.assertIsNone(self.install.uv())
        self.assertEqual(
            [str(self.layout.venv / 'bin' / 'pip'), 'install', '--quiet'],
            self.install.installer(self.layout, None))

    def test_uv_from_the_bootstrap_venv(self):
        uv = self._executable(self.tmp / 'boot' / 'bin' / 'uv')
        self.assertEqual(uv, self.install.uv())
        # uv installs into the venv's interpreter, not its own.
        self.assertEqual(
            [uv, 'pip', 'install', '--quiet', '--python',
             str(self.layout.venv / 'bin' / 'python')],
            self.install.installer(self.layout, uv))

    def test_uv_on_path_first(self):
        self._executable(self.tmp / 'boot' / 'bin' / 'uv')
        on_path = self._executable(self.tmp / 'uv')
        self.assertEqual(on_path, self.install.uv())

    def test_ministack_uv_pip_forces_pip(self):
        self._executable(self.tmp / 'uv')
        self.useFixture(fixtures.EnvironmentVariable('MINISTACK_UV', 'pip'))
        self.assertIsNone(self.install.uv())

    def test_ministack_uv_missing_is_an_error(self):
        self.useFixture(fixtures.EnvironmentVariable(
            'MINISTACK_UV', str(self.tmp / 'nowhere' / 'uv')))
        error = self.assertRaises(RuntimeError, self.install.uv)
        self.assertIn('nowhere', str(error))

    def test_uwsgi_built_from_source_without_cache(self):
        # The venv's pip compiles uWSGI against the venv's libpython and
        # never takes a wheel another Python built.
        wheels = self.tmp / 'wheels'
        argv = self.install.uwsgi_wheel_argv(self.layout, wheels)
        self.assertEqual(str(self.layout.venv / 'bin' / 'pip'), argv[0])
        self.assertEqual('wheel', argv[1])
        for option in ('--no-cache-dir', '--no-deps'):
            self.assertIn(option, argv)
        self.assertEqual('uWSGI', argv[argv.index('--no-binary') + 1])
        self.assertEqual(str(wheels), argv[argv.index('-w') + 1])
        self.assertEqual(self.install.UWSGI, argv[-1])

    def test_system_pins_keep_what_debian_has(self):
        # The venv's Python reports Debian's distributions; those that
        # constraints.txt leaves free are pinned so uv keeps them as pip
        # did; a non-release version (Debian's +dfsg) is left free.
        self._executable(self.layout.venv / 'bin' / 'python')
        (self.layout.venv / 'bin' / 'python').write_text(
            '#!/bin/sh\n'
            'printf "oauthlib 3.2.2\\nPyYAML 6.0\\nnova 1.0\\npip 23.0\\n'
            'foo 1.2+dfsg\\nsix 1.16.0\\n"\n')
        self.layout.cache_dir.mkdir(parents=True, exist_ok=True)
        path = self.install.system_pins(self.layout)
        self.assertEqual(['oauthlib==3.2.2', 'pyyaml==6.0', 'six==1.16.0'],
                         path.read_text().splitlines())


class TestLibvirtNamespace(testtools.TestCase):
    """nshost's mounts, recorded instead of run (the real ones need root)."""

    def _run(self, kvm_exists):
        from ministack import nshost
        base = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        kvm = base / 'kvm'
        if kvm_exists:
            kvm.write_bytes(b'')
        self.useFixture(fixtures.MonkeyPatch(
            'ministack.nshost.KVM', str(kvm)))
        run = self.useFixture(fixtures.MockPatch(
            'ministack.nshost.subprocess.run')).mock
        execvp = self.useFixture(fixtures.MockPatch(
            'ministack.nshost.os.execvp')).mock
        self.useFixture(fixtures.MockPatch('ministack.nshost.os.makedirs'))
        nshost.main(['ms-c1', str(base)])
        self.assertEqual(1, execvp.call_count)
        mounts = [c.args[0] for c in run.call_args_list
                  if c.args[0][0] == 'mount']
        return base, kvm, mounts

    def test_kvm_is_hidden_behind_an_empty_root_only_file(self):
        base, kvm, mounts = self._run(kvm_exists=True)
        self.assertIn(['mount', '--bind', str(base / 'qemu.conf'),
                       '/etc/libvirt/qemu.conf'], mounts)
        placeholder = base / 'no-kvm'
        self.assertEqual(['mount', '--bind', str(placeholder), str(kvm)],
                         mounts[-1])
        self.assertEqual(0, placeholder.stat().st_size)
        self.assertEqual(0o600, placeholder.stat().st_mode & 0o777)

    def test_no_kvm_node_nothing_to_hide(self):
        base, kvm, mounts = self._run(kvm_exists=False)
        self.assertFalse(any(str(kvm) in m for m in mounts))
        self.assertFalse((base / 'no-kvm').exists())
