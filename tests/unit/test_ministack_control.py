"""ministack's one-service stop/start, libvirt secret and stock figures."""

import os
import pathlib
import stat
import sys

import fixtures
import testtools

from ministack import control
from ministack import layout as layout_mod
from ministack import proc
from ministack.scenarios import stock
from ministack.services import ceph
from ministack.services import libvirt
from ministack import stack as stack_mod


class _StackTest(testtools.TestCase):

    def setUp(self):
        super().setUp()
        tmp = pathlib.Path(self.useFixture(fixtures.TempDir()).path)
        self.tmp = tmp
        self.layout = layout_mod.Layout(run_dir=tmp / 'run',
                                        cache_dir=tmp / 'cache')
        self.layout.make_dirs()
        self.stack = stack_mod.Stack(self.layout)


class TestControl(_StackTest):

    def test_unknown_service_is_refused_and_nothing_signalled(self):
        argv = [sys.executable, '-c', 'import time; time.sleep(60)']
        pid = proc.start(self.layout, 'nova-compute-ms-c1', argv)
        self.addCleanup(proc.stop, self.layout, 'nova-compute-ms-c1')
        e = self.assertRaises(ValueError, control.stop, self.stack,
                              'nova-compute-ms-c9')
        self.assertIn('nova-compute-ms-c1', str(e))
        self.assertRaises(ValueError, control.start, self.stack, 'mariadb')
        self.assertEqual(pid, proc.running(self.layout,
                                           'nova-compute-ms-c1'))

    def test_kill_ends_the_service_at_once(self):
        # SIGTERM ignored: only --kill's SIGKILL ends it within the test.
        argv = [sys.executable, '-c',
                'import signal, time; '
                'signal.signal(signal.SIGTERM, signal.SIG_IGN); '
                'time.sleep(120)']
        proc.start(self.layout, 'fastboot-coordinator2', argv)
        self.addCleanup(proc.stop, self.layout, 'fastboot-coordinator2')
        self.assertTrue(control.stop(self.stack, 'fastboot-coordinator2',
                                     kill=True))
        self.assertIsNone(proc.running(self.layout,
                                       'fastboot-coordinator2'))
        self.assertFalse(control.stop(self.stack, 'fastboot-coordinator2'))


class TestRbdSecret(_StackTest):
    """The cephx key reaches virsh in a 0600 file, never in its argv."""

    def test_key_is_not_on_the_command_line(self):
        key = 'AQBkZXYvc2VjcmV0LWtleS1mb3ItdGVzdHM9PQ=='
        ceph.etc_dir(self.layout).mkdir(parents=True)
        ceph.keyring_path(self.layout, 'client.cinder').write_text(
            '[client.cinder]\n\tkey = %s\n' % key)
        bindir = self.tmp / 'bin'
        bindir.mkdir()
        record = self.tmp / 'calls'
        # A recording virsh: its argv, and the mode and content of the
        # file it was given.
        (bindir / 'virsh').write_text(
            '#!%s\nimport os, stat, sys\n'
            'args = sys.argv[1:]\n'
            'extra = ""\n'
            'if "--file" in args:\n'
            '    p = args[args.index("--file") + 1]\n'
            '    extra = " mode=%%o content=%%s" %% ('
            'stat.S_IMODE(os.stat(p).st_mode), open(p).read())\n'
            'open(%r, "a").write(" ".join(args) + extra + "\\n")\n'
            % (sys.executable, str(record)))
        (bindir / 'virsh').chmod(0o755)
        self.useFixture(fixtures.EnvironmentVariable(
            'PATH', '%s:%s' % (bindir, os.environ['PATH'])))
        libvirt.define_rbd_secret(self.stack, 'ms-c1')
        calls = record.read_text().splitlines()
        self.assertEqual(2, len(calls), calls)
        self.assertIn('secret-define', calls[0])
        argv, _, extra = calls[1].partition(' mode=')
        self.assertNotIn(key, argv)
        self.assertIn('secret-set-value', argv)
        self.assertEqual('600 content=%s' % key, extra)
        # The temporary files are gone; the UUID is stable per run dir.
        self.assertEqual([], [p for p in self.layout.etc.rglob('key')])
        ident = libvirt.rbd_secret_uuid(self.stack)
        self.assertIn(ident, argv)
        self.assertEqual(ident, libvirt.rbd_secret_uuid(self.stack))

    def test_no_key_in_keyring_is_an_error(self):
        ceph.etc_dir(self.layout).mkdir(parents=True)
        path = ceph.keyring_path(self.layout, 'client.cinder')
        path.write_text('[client.cinder]\n')
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)
        self.assertRaises(proc.ServiceFailed, libvirt.define_rbd_secret,
                          self.stack, 'ms-c1')


class TestStockFigures(testtools.TestCase):

    def test_ratios_and_table(self):
        def way(vols, rd, wr, secs):
            return {'volumes_created': vols, 'bytes_read': rd,
                    'bytes_written': wr, 'seconds_to_active': secs}
        figures = {'count': 4,
                   'fastboot': way(1, 10, 0, 30.0),
                   'stock_clone': way(4, 40, 8, 60.0),
                   'stock_flatten': way(4, 400, 1000, 0)}
        r = stock.ratios(figures)
        self.assertEqual(
            {'volumes_created': 0.25, 'bytes_read': 0.25,
             'bytes_written': 0.0, 'seconds_to_active': 0.5},
            r['stock_clone'])
        self.assertIsNone(r['stock_flatten']['seconds_to_active'])
        figures.update(ratios=r, boot_working_set_bytes=10,
                       fastboot_origin_bytes_vs_n_working_sets=0.25,
                       load_average_start=(1, 1, 1),
                       load_average_end=(2, 2, 2))
        text = stock.table(figures)
        self.assertIn('stock_flatten', text)
        self.assertIn('fastboot/stock_clone', text)
