"""Unit tests of the benchmark's logic: figures, ratios, the table, the
command line, and cleanup on failure (fake engine, origin and commands;
nothing is timed against a target here, the benchmark itself does that)."""

import os
from unittest import mock

import fixtures
from oslotest import base

from fastboot_nova.demo import vm as vm_mod
from gate import bench
from gate.bench import __main__ as bench_main
from gate.bench import report
from gate.bench import snapshots
from gate.bench import storm
from tests.unit import fakes

MiB = 1024 * 1024


class FakeOrigin:
    url = 'nbd+unix:///bench?socket=/fake/origin.sock'

    def __init__(self, per_read=0):
        self.total = 0
        self.mark = 0
        self.per_read = per_read

    def reset_counter(self):
        self.mark = self.total

    def bytes_read(self):
        return self.total - self.mark


def sample_inputs(**storm_overrides):
    params = {'vms': 8, 'snapshots': 4, 'quick': False,
              'image_bytes': 256 * MiB, 'image_allocated_bytes': 132 * MiB,
              'cluster_size': 65536, 'guest': '/g'}
    fast = {'origin_bytes': 4 * MiB, 'create_seconds': 0.4,
            'first_create_seconds': 0.1, 'storm_seconds': 16.0,
            'local_disk_bytes': 8 * MiB, 'boots_total': 8, 'boots_ok': 8,
            'checksums_ok': 8, 'boot_seconds': [15.0, 16.0, None],
            'accel': 'tcg', 'failures': []}
    fast.update(storm_overrides)
    copies = {'origin_bytes': 1024 * MiB, 'seconds': 1.6,
              'local_disk_bytes': 1024 * MiB}
    snaps = {'cold_create_seconds': 0.05,
             'engine_seconds': [0.010, 0.020, 0.030, 0.040],
             'bare_seconds': [0.010, 0.010, 0.010, 0.010]}
    phases = {'guest': 1.0, 'storm': 18.0, 'full_copy': 1.5,
              'snapshots': 3.5}
    return params, fast, copies, snaps, phases


class TestFigures(base.BaseTestCase):

    def test_ratio(self):
        self.assertEqual(0.25, report.ratio(1, 4))
        self.assertIsNone(report.ratio(1, 0))
        self.assertIsNone(report.ratio(None, 4))
        self.assertIsNone(report.ratio(1, None))

    def test_summarize(self):
        s = report.summarize([3.0, 1.0, 2.0, 10.0])
        self.assertEqual(4, s['count'])
        self.assertEqual(4.0, s['mean'])
        self.assertEqual(2.5, s['median'])
        self.assertEqual(1.0, s['min'])
        self.assertEqual(10.0, s['max'])
        self.assertGreater(s['stdev'], 0)

    def test_summarize_one_and_none(self):
        self.assertEqual(0.0, report.summarize([5])['stdev'])
        self.assertIsNone(report.summarize([]))
        self.assertIsNone(report.summarize(iter(())))

    def test_build_result_ratios(self):
        r = report.build_result(*sample_inputs())
        ob = r['origin_bytes']
        self.assertEqual(4 * MiB, ob['fastboot'])
        self.assertEqual(1024 * MiB, ob['full_copy'])
        self.assertEqual(4 / 1024, ob['ratio'])
        self.assertEqual(8 * 256 * MiB, ob['n_images_bytes'])
        self.assertEqual(4 / 2048, ob['fastboot_fraction_of_n_images'])
        self.assertEqual(0.5, ob['full_copy_fraction_of_n_images'])
        self.assertAlmostEqual(0.25, r['provision_seconds']['ratio'])
        self.assertEqual(8 / 1024, r['local_disk_bytes']['ratio'])
        snap = r['snapshot_create_seconds']
        self.assertAlmostEqual(0.025, snap['engine']['mean'])
        self.assertAlmostEqual(2.5, snap['ratio_mean'])
        self.assertAlmostEqual(2.5, snap['ratio_median'])
        cold = r['cold_create_seconds']
        self.assertAlmostEqual(0.025, cold['later_median'])
        self.assertAlmostEqual(2.0, cold['ratio'])
        self.assertAlmostEqual(4.0, cold['ratio_in_storm'])
        self.assertEqual(24.0, r['total_seconds'])
        # A boot that never printed its checksum has no boot time.
        self.assertEqual(2, r['boots']['boot_seconds']['count'])
        self.assertEqual(report.RESULT_VERSION, r['result_version'])

    def test_build_result_zero_baseline(self):
        params, fast, copies, snaps, phases = sample_inputs()
        copies['origin_bytes'] = 0
        r = report.build_result(params, fast, copies, snaps, phases)
        self.assertIsNone(r['origin_bytes']['ratio'])
        self.assertIn('n/a', report.render(r))

    def test_succeeded(self):
        self.assertTrue(report.succeeded(
            report.build_result(*sample_inputs())))
        self.assertFalse(report.succeeded(
            report.build_result(*sample_inputs(boots_ok=7))))
        self.assertFalse(report.succeeded(
            report.build_result(*sample_inputs(checksums_ok=7))))
        self.assertFalse(report.succeeded(report.build_result(
            *sample_inputs(boots_total=0, boots_ok=0, checksums_ok=0))))


class TestFormat(base.BaseTestCase):

    def test_fmt_bytes(self):
        self.assertEqual('0 B', report.fmt_bytes(0))
        self.assertEqual('1023 B', report.fmt_bytes(1023))
        self.assertEqual('1.50 KiB', report.fmt_bytes(1536))
        self.assertEqual('4.00 MiB', report.fmt_bytes(4 * MiB))
        self.assertEqual('1.03 GiB', report.fmt_bytes(1109428268))
        self.assertEqual('n/a', report.fmt_bytes(None))

    def test_fmt_seconds(self):
        self.assertEqual('12.0 us', report.fmt_seconds(12e-6))
        self.assertEqual('17.2 ms', report.fmt_seconds(0.0172))
        self.assertEqual('1.51 s', report.fmt_seconds(1.514))
        self.assertEqual('n/a', report.fmt_seconds(None))

    def test_fmt_percent_and_ratio(self):
        self.assertEqual('0.20 %', report.fmt_percent(0.002))
        self.assertEqual('n/a', report.fmt_percent(None))
        self.assertEqual('0.00396 (0.40 %)', report.fmt_ratio(0.00396))
        self.assertEqual('1.58', report.fmt_ratio(1.58))
        self.assertEqual('1', report.fmt_ratio(1.0))
        self.assertEqual('n/a', report.fmt_ratio(None))

    def test_render(self):
        text = report.render(report.build_result(*sample_inputs()))
        lines = text.splitlines()
        self.assertIn('8 VMs, 4 snapshot creates, image 256.00 MiB',
                      lines[0])
        row = next(line for line in lines
                   if 'bytes read from the origin' in line)
        self.assertEqual(['4.00', 'MiB', '1.00', 'GiB', '0.00391',
                          '(0.39', '%)'], row.split()[5:])
        share = next(line for line in lines if 'share of 8 x' in line)
        self.assertIn('0.20 %', share)
        self.assertIn('50.00 %', share)
        self.assertIn('8/8 booted, 8/8 read the right payload', text)
        mean = next(line for line in lines if line.split()[:1] == ['mean'])
        self.assertEqual(['mean', '25.0', 'ms', '10.0', 'ms', '2.5'],
                         mean.split())
        self.assertIn('Run took 24.00 s', lines[-1])
        self.assertNotIn('FAILED', text)

    def test_render_failures(self):
        text = report.render(report.build_result(*sample_inputs(
            boots_ok=7, failures=['vm03: timed out after 180s'])))
        self.assertIn('7/8 booted', text)
        self.assertIn('FAILED vm03: timed out after 180s', text)

    def test_columns_aligned(self):
        lines = report._table('t', ['', 'a', 'bb'],
                              [['long label', '1', '2'], ['x', '333', '']])
        self.assertEqual(['t',
                          '                a  bb',
                          '  long label    1   2',
                          '  x           333'], lines)


class TestCommands(base.BaseTestCase):

    def test_vm_names_sort_in_order(self):
        self.assertEqual(['vm01', 'vm02', 'vm03'], storm.vm_names(3))
        names = storm.vm_names(120, prefix='snap')
        self.assertEqual('snap001', names[0])
        self.assertEqual(names, sorted(names))

    def test_argv_lists(self):
        self.assertEqual(
            ['qemu-img', 'convert', '-f', 'raw', '-O', 'raw',
             'nbd+unix:///x?socket=/s', '/d/a b.raw'],
            storm.copy_argv('nbd+unix:///x?socket=/s', '/d/a b.raw'))
        self.assertEqual(
            ['/bin/qi', 'create', '-q', '-f', 'qcow2', '-b', '/img/o.raw',
             '-F', 'raw', '/d/o.qcow2'],
            snapshots.bare_overlay_argv('/img/o.raw', '/d/o.qcow2',
                                        qemu_img='/bin/qi'))


class TestFullCopies(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.origin = FakeOrigin()
        self.origin.total = 999  # read before the copies: not counted
        self.seen = []

    def fake_convert(self, *argv):
        self.seen.append(argv)
        with open(argv[-1], 'wb') as f:
            f.write(b'x' * 8192)
        self.origin.total += 100
        return '', ''

    def test_counts_and_deletes_each_copy(self):
        result = storm.run_full_copies(self.origin, self.workdir, 3,
                                       execute=self.fake_convert)
        self.assertEqual(300, result['origin_bytes'])
        self.assertEqual(3 * 8192, result['local_disk_bytes'])
        self.assertGreaterEqual(result['seconds'], 0)
        self.assertEqual(3, len(self.seen))
        self.assertEqual(self.origin.url, self.seen[0][-2])
        self.assertEqual([], os.listdir(os.path.join(self.workdir,
                                                     'copies')))

    def test_failed_copy_is_deleted(self):
        def failing(*argv):
            with open(argv[-1], 'wb') as f:
                f.write(b'partial')
            raise RuntimeError('convert failed')

        self.assertRaises(RuntimeError, storm.run_full_copies, self.origin,
                          self.workdir, 2, execute=failing)
        self.assertEqual([], os.listdir(os.path.join(self.workdir,
                                                     'copies')))


class EngineTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.engine = fakes.FakeEngine(state_path=self.workdir)
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.storage.get_engine', return_value=self.engine))
        self.origin = FakeOrigin()
        self.conf = mock.Mock()

    def assertCleanedUp(self):
        self.assertEqual({}, self.engine.vms)
        self.assertEqual({}, self.engine.images)
        self.assertEqual(('shutdown',), self.engine.calls[-1])


class TestSnapshots(EngineTestCase):

    def test_times_both_and_cleans_up(self):
        made = []

        def fake_create(*argv):
            made.append(argv[-1])
            open(argv[-1], 'wb').close()
            return '', ''

        result = snapshots.run(self.conf, self.origin, '/img/o.raw',
                               self.workdir, 3, execute=fake_create)
        self.assertEqual(3, len(result['engine_seconds']))
        self.assertEqual(3, len(result['bare_seconds']))
        self.assertGreaterEqual(result['cold_create_seconds'], 0)
        creates = [c[1] for c in self.engine.calls if c[0] == 'create']
        self.assertEqual(['cold', 'snap01', 'snap02', 'snap03'], creates)
        self.assertEqual(3, len(made))
        self.assertEqual([], os.listdir(os.path.join(self.workdir, 'bare')))
        self.assertCleanedUp()

    def test_cleans_up_on_interrupt(self):
        def interrupted(*argv):
            raise KeyboardInterrupt

        self.assertRaises(KeyboardInterrupt, snapshots.run, self.conf,
                          self.origin, '/img/o.raw', self.workdir, 3,
                          execute=interrupted)
        self.assertCleanedUp()


class TestStorm(EngineTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.vm.choose_accel', return_value='tcg'))
        self.guest = mock.Mock()

    def boot_results(self, guest, vms, timeout, accel):
        self.origin.total += 5000
        return [vm_mod.BootResult(name=name, boot_seconds=2.0 + i,
                                  ok=i != 1, checksum='c',
                                  checksum_ok=i != 1, console_log=log,
                                  error=None if i != 1 else 'timed out')
                for i, (name, _disk, log) in enumerate(vms)]

    def test_figures_and_cleanup(self):
        self.origin.total = 123
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.vm.boot_many',
            side_effect=self.boot_results))
        result = storm.run_fastboot(self.conf, self.guest, self.origin,
                                    self.workdir, 3)
        self.assertEqual(5000, result['origin_bytes'])
        self.assertEqual(3, result['boots_total'])
        self.assertEqual(2, result['boots_ok'])
        self.assertEqual(2, result['checksums_ok'])
        self.assertEqual([2.0, 3.0, 4.0], result['boot_seconds'])
        self.assertEqual(['vm02: timed out'], result['failures'])
        self.assertEqual('tcg', result['accel'])
        self.assertLessEqual(result['first_create_seconds'],
                             result['create_seconds'])
        self.assertCleanedUp()

    def test_cleans_up_on_interrupt(self):
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.vm.boot_many',
            side_effect=KeyboardInterrupt))
        self.assertRaises(KeyboardInterrupt, storm.run_fastboot, self.conf,
                          self.guest, self.origin, self.workdir, 2)
        self.assertCleanedUp()

    def test_cleanup_goes_on_after_a_failed_destroy(self):
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.vm.boot_many',
            side_effect=RuntimeError('boom')))
        real_destroy = self.engine.destroy

        def destroy(vm):
            if vm == 'vm01':
                raise RuntimeError('in use')
            real_destroy(vm)

        self.engine.destroy = destroy
        self.assertRaisesRegex(RuntimeError, 'boom', storm.run_fastboot,
                               self.conf, self.guest, self.origin,
                               self.workdir, 2)
        self.assertEqual(['vm01'], list(self.engine.vms))
        self.assertEqual(('shutdown',), self.engine.calls[-1])


class TestCommandLine(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        # main() sets the level of the bench logger: restore it.
        self.addCleanup(bench_main.LOG.setLevel, bench_main.LOG.level)

    def test_defaults(self):
        args = bench_main.parse_args([])
        self.assertEqual(bench.DEFAULT_VMS, args.vms)
        self.assertEqual(bench.DEFAULT_SNAPSHOTS, args.snapshots)
        self.assertFalse(args.quick)
        self.assertIsNone(args.json)

    def test_quick_and_overrides(self):
        args = bench_main.parse_args(['--quick'])
        self.assertEqual(bench.QUICK_VMS, args.vms)
        self.assertEqual(bench.QUICK_SNAPSHOTS, args.snapshots)
        args = bench_main.parse_args(['--quick', '--vms', '2',
                                      '--snapshots', '7'])
        self.assertEqual((2, 7), (args.vms, args.snapshots))

    def test_bad_values(self):
        self.useFixture(fixtures.MockPatch('sys.stderr'))
        for argv in (['--vms', '0'], ['--vms', str(bench.MAX_VMS + 1)],
                     ['--vms', 'x'], ['--snapshots', '0'],
                     ['--json', '/no/such/dir/out.json'],
                     ['--config-file', '/no/such/file.conf']):
            self.assertRaises(SystemExit, bench_main.parse_args, argv)

    def test_default_cache_dir(self):
        self.assertEqual('/c', bench.default_cache_dir(
            {bench.CACHE_ENV: '/c'}))
        self.assertTrue(bench.default_cache_dir({}).endswith(
            os.path.join('.cache', 'fastboot')))

    def test_make_conf_defaults(self):
        conf = bench_main.make_conf([])
        self.assertEqual(65536, conf.fastboot_qemu.cache_cluster_size)

    def test_main_writes_json_and_exit_code(self):
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'r.json')
        result = report.build_result(*sample_inputs(boots_ok=7))
        self.useFixture(fixtures.MockPatch(
            'gate.bench.run_bench', return_value=result))
        self.useFixture(fixtures.MockPatch('sys.stdout'))
        self.useFixture(fixtures.MockPatch('signal.signal'))
        self.assertEqual(1, bench_main.main(['--json', out]))
        with open(out) as f:
            self.assertIn('"origin_bytes"', f.read())

    def test_main_on_signals(self):
        self.useFixture(fixtures.MockPatch('signal.signal'))
        self.useFixture(fixtures.MockPatch('logging.basicConfig'))
        run = self.useFixture(fixtures.MockPatch(
            'gate.bench.run_bench')).mock
        run.side_effect = KeyboardInterrupt
        self.assertEqual(130, bench_main.main([]))
        run.side_effect = bench_main.Terminated(15)
        self.assertEqual(143, bench_main.main([]))
        self.assertRaises(bench_main.Terminated,
                          bench_main._raise_terminated, 1, None)

    def test_main_reports_errors(self):
        self.useFixture(fixtures.MockPatch(
            'gate.bench.run_bench', side_effect=RuntimeError('x')))
        self.useFixture(fixtures.MockPatch('signal.signal'))
        self.useFixture(fixtures.MockPatch('logging.basicConfig'))
        self.assertEqual(1, bench_main.main([]))
