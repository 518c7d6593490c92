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
