"""The privileged NBD and multipath entrypoints: exact argv, refusals."""

import os
import signal

import fixtures
import testtools

import fastboot_nova.privsep.dm as dm
import fastboot_nova.privsep.multipath as mp
import fastboot_nova.privsep.nbd as nbd
from tests.unit.dm import nbd_fakes

CACHE = '/dev/mapper/fb-0123abcd-cache-img'
#: nbd-server names, as an engine makes them.
EXP1, EXP2 = 'fb-0123abcd-exp-img-1', 'fb-0123abcd-exp-img-2'
ORIGIN = '/dev/vdb'
#: The fixture replaces it; the zombie test checks the real one.
REAL_SERVER_ALIVE = nbd._server_alive


class NbdTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(nbd_fakes.NbdFixture(
            {ORIGIN: 131072}, export_sectors=131072))
        self.kernel = self.fx.kernel
        self.kernel.host_devices[CACHE] = 131072

    def files(self):
        if not os.path.isdir(self.fx.run_dir):
            return []
        return sorted(os.listdir(self.fx.run_dir))


class TestServer(NbdTestCase):

    def test_config_text(self):
        self.assertEqual(
            '[generic]\nlistenaddr = 10.0.0.1\nport = 10809\n'
            'allowlist = false\n[exp]\nexportname = /dev/vdb\n'
            'readonly = true\nauthfile = /run/x.allow\n',
            nbd.server_config('exp', ORIGIN, '10.0.0.1', 10809,
                              '/run/x.allow'))

    def test_start_writes_files_and_runs_the_server(self):
        pid = nbd.start_server(EXP1, CACHE, '192.0.2.1', 10809,
                               ['192.0.2.0/24', '198.51.100.7'])
        d = self.fx.run_dir
        self.assertEqual([['nbd-server', '-C', d + '/' + EXP1 + '.conf', '-p',
                           d + '/' + EXP1 + '.pid']], self.kernel.spawns)
        with open(d + '/' + EXP1 + '.conf') as f:
            conf = f.read()
        self.assertIn('exportname = %s\nreadonly = true\nauthfile = %s\n' %
                      (CACHE, d + '/' + EXP1 + '.allow'), conf)
        self.assertIn('listenaddr = 192.0.2.1\nport = 10809\n', conf)
        with open(d + '/' + EXP1 + '.allow') as f:
            self.assertEqual('192.0.2.0/24\n198.51.100.7/32\n', f.read())
        self.assertEqual([[EXP1, pid]], nbd.list_servers())

    def test_stop_kills_and_removes_files(self):
        nbd.start_server(EXP1, CACHE, '127.0.0.1', 10809, ['127.0.0.1'])
        nbd.stop_server(EXP1)
        self.assertEqual({}, self.kernel.servers)
        self.assertEqual([], self.files())
        self.assertEqual([], nbd.list_servers())
        nbd.stop_server(EXP1)  # again: nothing to do

    def test_stop_kills_a_server_that_ignores_sigterm(self):
        pid = nbd.start_server(EXP1, CACHE, '127.0.0.1', 10809,
                               ['127.0.0.1'])
        self.kernel.ignore_sigterm.add(pid)
        nbd.stop_server(EXP1)
        self.assertEqual([(pid, signal.SIGTERM), (pid, signal.SIGKILL)],
                         self.kernel.signals)
        self.assertEqual({}, self.kernel.servers)
        self.assertEqual([], self.files())

    def test_proc_stat_reads_name_state_and_parent(self):
        comm, state, ppid = nbd._proc_stat(os.getpid())
        with open('/proc/self/comm') as f:
            self.assertEqual(f.read().strip(), comm)
        self.assertIn(state, 'RS')
        self.assertEqual(os.getppid(), ppid)
        self.assertIsNone(nbd._proc_stat(2 ** 22 + 1))

    def test_a_zombie_server_is_not_alive(self):
        self.useFixture(fixtures.MockPatchObject(
            nbd, '_proc_stat', lambda pid: {
                7: ('nbd-server', 'Z', 1), 8: ('nbd-server', 'S', 1),
                9: ('sshd', 'S', 1)}.get(pid)))
        alive = REAL_SERVER_ALIVE
        self.assertEqual([False, True, False, False],
                         [alive(p) for p in (7, 8, 9, 10)])

    def test_bad_input_runs_nothing(self):
        for args in (
                ('x;id', CACHE, '127.0.0.1', 10809, ['127.0.0.1']),
                (EXP1, '/etc/passwd', '127.0.0.1', 10809, ['127.0.0.1']),
                (EXP1, '/dev/nosuch', '127.0.0.1', 10809, ['127.0.0.1']),
                (EXP1, CACHE, '127.0.0.1\n[x]', 10809, ['127.0.0.1']),
                (EXP1, CACHE, 'localhost', 10809, ['127.0.0.1']),
                (EXP1, CACHE, '127.0.0.1', 80, ['127.0.0.1']),
                (EXP1, CACHE, '127.0.0.1', True, ['127.0.0.1']),
                (EXP1, CACHE, '127.0.0.1', 10809, []),
                (EXP1, CACHE, '127.0.0.1', 10809, '127.0.0.1'),
                (EXP1, CACHE, '127.0.0.1', 10809, ['10.0.0.0/33'])):
            self.assertRaises(dm.InvalidDmArgument, nbd.start_server, *args)
        self.assertEqual([], self.kernel.spawns)
        self.assertEqual([], self.files())

    def test_port_in_use_or_name_running_refused(self):
        nbd.start_server(EXP1, CACHE, '127.0.0.1', 10809, ['127.0.0.1'])
        e = self.assertRaises(nbd.NbdFailed, nbd.start_server, EXP2,
                              CACHE, '127.0.0.1', 10809, ['127.0.0.1'])
        self.assertIn('port 10809 is in use', str(e))
        e = self.assertRaises(nbd.NbdFailed, nbd.start_server, EXP1,
                              CACHE, '127.0.0.1', 10810, ['127.0.0.1'])
        self.assertIn('is running', str(e))
        self.assertEqual(1, len(self.kernel.spawns))

    def test_failed_start_reports_the_log_and_cleans_up(self):
        self.kernel.spawn_code = 1
        e = self.assertRaises(nbd.NbdFailed, nbd.start_server, EXP1,
                              CACHE, '127.0.0.1', 10809, ['127.0.0.1'])
        self.assertIn('Could not open exported file', str(e))
        self.assertEqual([], self.files())


class TestClient(NbdTestCase):

    def test_connect_takes_the_first_free_device(self):
        self.kernel.nbd['/dev/nbd0'] = ('x', 1, 'y')
        self.kernel.nbd['/dev/nbd10'] = None
        dev = nbd.connect('127.0.0.1', 10809, EXP1)
        self.assertEqual('/dev/nbd1', dev)
        self.assertEqual([('nbd-client 127.0.0.1 10809 /dev/nbd1 -name %s '
                           '-readonly -timeout 30' % EXP1, None)],
                         self.kernel.calls)
        self.assertEqual(['/dev/nbd0', '/dev/nbd1'],
                         nbd.connected_devices())

    def test_connect_without_free_device(self):
        for dev in self.kernel.nbd:
            self.kernel.nbd[dev] = ('x', 1, 'y')
        e = self.assertRaises(nbd.NbdFailed, nbd.connect, '127.0.0.1',
                              10809, EXP1)
        self.assertIn('no free /dev/nbdN', str(e))
        self.assertEqual([], self.kernel.calls)

    def test_connect_refuses_bad_input(self):
        for args in (('host.example', 10809, 'e'), ('127.0.0.1', 0, 'e'),
                     ('127.0.0.1', 10809, '-e'),
                     ('127.0.0.1', 10809, 'a b')):
            self.assertRaises(dm.InvalidDmArgument, nbd.connect, *args)
        self.assertEqual([], self.kernel.calls)

    def test_failed_connect_raises(self):
        self.kernel.fail['nbd-client'] = (1, 'Error: Server closed')
        e = self.assertRaises(nbd.NbdFailed, nbd.connect, '127.0.0.1',
                              10809, EXP1)
        self.assertIn('Server closed', str(e))
        self.assertEqual([], nbd.connected_devices())

    def test_disconnect(self):
        dev = nbd.connect('127.0.0.1', 10809, EXP1)
        self.assertTrue(nbd.disconnect(dev))
        self.assertEqual(('nbd-client -d /dev/nbd0', None),
                         self.kernel.calls[-1])
        self.assertFalse(nbd.disconnect(dev))
        self.assertEqual(2, len(self.kernel.calls))
        for bad in ('/dev/sda', '/dev/nbd0;x', 'nbd0'):
            self.assertRaises(dm.InvalidDmArgument, nbd.disconnect, bad)


class TestMultipath(NbdTestCase):

    def setUp(self):
        super().setUp()
        self.paths = [nbd.connect('127.0.0.1', 10809, 'a'),
                      nbd.connect('127.0.0.1', 10810, 'b')]
        del self.kernel.calls[:]

    def test_table(self):
        self.assertEqual(
            '0 2048 multipath 0 0 1 1 round-robin 0 2 1 /dev/nbd0 1 '
            '/dev/nbd1 1\n',
            mp.multipath_table(['/dev/nbd0', '/dev/nbd1'], 2048))

    def test_create(self):
        path = mp.create_multipath('fbmp-img', self.paths)
        self.assertEqual('/dev/mapper/fbmp-img', path)
        self.assertEqual(
            [('dmsetup info fbmp-img', None),
             ('dmsetup create fbmp-img',
              '0 131072 multipath 0 0 1 1 round-robin 0 2 1 /dev/nbd0 1 '
              '/dev/nbd1 1\n')], self.kernel.calls)

    def test_bad_paths_build_nothing(self):
        self.kernel.host_devices['/dev/vdc'] = 2048
        for name, paths in (
                ('fbmp-x', ['/etc/passwd', '/dev/nbd0']),
                ('fbmp-x', ['/dev/nbd0', '/dev/nbd0']),
                ('fbmp-x', ['/dev/nbd0', '/dev/nbd3']),   # not connected
                ('fbmp-x', ['/dev/nbd0', '/dev/vdc']),    # other size
                ('fbmp-x', ['/dev/nbd9']),                # no such device
                ('fbmp-x', []),
                ('fbmp-x', '/dev/nbd0'),
                ('x;reboot', self.paths),
                ('-x', self.paths)):
            self.assertRaises(dm.InvalidDmArgument, mp.create_multipath,
                              name, paths)
        self.assertEqual({}, self.kernel.tables)
        self.assertEqual([], self.kernel.commands())

    def test_duplicate_name_refused(self):
        mp.create_multipath('fbmp-img', self.paths)
        self.assertRaises(dm.DmCommandFailed, mp.create_multipath,
                          'fbmp-img', self.paths)


class TestParseStatus(testtools.TestCase):

    def test_round_robin(self):
        self.assertEqual(
            [{'device': '43:0', 'active': False, 'fail_count': 1},
             {'device': '43:32', 'active': True, 'fail_count': 0}],
            mp.parse_status('0 131072 multipath 2 0 0 0 1 1 E 0 2 0 '
                            '43:0 F 1 43:32 A 0 \n'))

    def test_service_time_and_two_groups(self):
        self.assertEqual(
            ['8:0', '8:16', '8:32'],
            [p['device'] for p in mp.parse_status(
                '0 8 multipath 2 1 0 1 alua 2 1 A 0 2 2 8:0 A 0 0 1 '
                '8:16 A 0 0 1 E 0 1 2 8:32 F 3 0 1')])

    def test_not_multipath(self):
        self.assertIsNone(mp.parse_status('0 8 linear 8:0 0'))
        self.assertIsNone(mp.parse_status('0 8 multipath 2 0'))
