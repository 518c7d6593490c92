"""Unit tests of the Nova benchmark's report and command line (no Nova)."""

import fixtures
from oslotest import base

from gate.bench import nova as bench_nova
from gate.bench import novareport

GiB = 1024 ** 3
MiB = 1024 ** 2


def mode(count, volumes, copied, cache=0, overlays=0, disks=0,
         active=10.0, delete=2.0, requests=1):
    return {
        'servers_active': count, 'api_requests': requests,
        'hosts_used': 1, 'caches': 1 if disks else 0,
        'volumes_created': volumes,
        'volumes_deleted': volumes if disks == 0 else 0,
        'root_volumes': volumes, 'bytes_copied': copied,
        'copy_seconds': 1.0, 'volume_bytes': volumes * GiB,
        'cache_bytes': cache, 'overlay_bytes': overlays,
        'fastboot_disks': disks, 'active_seconds': active,
        'request_seconds': 0.5,
        'delete_seconds': delete,
    }


def sample(count=4):
    params = {'counts': [count], 'hosts': 1, 'image': '/i.raw',
              'image_format': 'raw', 'image_virtual_bytes': 256 * MiB,
              'image_allocated_bytes': 100 * MiB, 'volume_size_gib': 1,
              'fastboot_boot': 'boot_fastboot_image',
              'fastboot_requests': 'one'}
    runs = [{'count': count,
             'stock': mode(count, count, count * 100 * MiB, active=20.0),
             'fastboot': mode(count, 1, 100 * MiB, cache=1 * MiB,
                              overlays=count * MiB, disks=count,
                              active=5.0, requests=1)}]
    return novareport.build_result(params, runs, 42.0)


class TestNovaReport(base.BaseTestCase):

    def test_ratios_are_fastboot_over_stock(self):
        (run,) = sample(4)['runs']
        r = run['ratios']
        self.assertEqual(0.25, r['volumes_created'])
        self.assertEqual(0.25, r['bytes_copied'])
        self.assertEqual(0.25, r['volume_bytes'])
        self.assertEqual(0.25, r['active_seconds'])
        self.assertEqual(1.0, r['delete_seconds'])
        # Written: the one copy plus the cache and the overlays.
        self.assertEqual(105 * MiB, run['fastboot']['bytes_written'])
        self.assertEqual(400 * MiB, run['stock']['bytes_written'])
        self.assertEqual(105 / 400, r['bytes_written'])

    def test_zero_baseline_has_no_ratio(self):
        result = sample(4)
        run = result['runs'][0]
        run['stock']['bytes_copied'] = 0
        rebuilt = novareport.build_result(
            result['params'], [{'count': 4, 'stock': run['stock'],
                                'fastboot': run['fastboot']}], 1.0)
        self.assertIsNone(rebuilt['runs'][0]['ratios']['bytes_copied'])

    def test_succeeded(self):
        result = sample(4)
        self.assertEqual([], novareport.check(result))
        self.assertTrue(novareport.succeeded(result))

    def test_check_names_each_problem(self):
        result = sample(4)
        run = result['runs'][0]
        run['stock']['servers_active'] = 3
        run['fastboot']['volumes_created'] = 2
        run['fastboot']['fastboot_disks'] = 1
        problems = novareport.check(result)
        self.assertEqual(3, len(problems), problems)
        self.assertIn('N=4 stock: 3/4 servers ACTIVE', problems)
        self.assertFalse(novareport.succeeded(result))

    def test_no_runs_is_no_success(self):
        result = novareport.build_result(sample()['params'], [], 0.0)
        self.assertFalse(novareport.succeeded(result))

    def test_render(self):
        text = novareport.render(sample(4))
        self.assertIn('N = 4 servers', text)
        self.assertIn('volumes created', text)
        self.assertIn('0.25 (25.00 %)', text)
        self.assertIn('copies are performed', text)
        self.assertIn('of which sending the API requests', text)
        self.assertNotIn('FAILED', text)
        result = sample(4)
        result['runs'][0]['fastboot']['fastboot_disks'] = 0
        self.assertIn('FAILED N=4 fastboot: 0/4 servers on a fastboot disk',
                      novareport.render(result))

    def test_render_says_how_fastboot_asked_nova(self):
        result = sample(4)
        text = novareport.render(result)
        self.assertIn('boot step boot_fastboot_image', text)
        self.assertIn('one request for all servers (min_count=max_count=N) '
                      'from a fastboot image', text)
        result['params'].update(fastboot_boot='boot_fastboot_per_server',
                                fastboot_requests='per-server')
        text = novareport.render(result)
        self.assertIn('boot step boot_fastboot_per_server', text)
        self.assertIn('one request per server booting from the volume', text)
        # A result of an older run, without the key, still renders.
        del result['params']['fastboot_requests']
        self.assertIn('requests as counted below', novareport.render(result))


class TestNovaBenchArgs(base.BaseTestCase):

    def test_defaults(self):
        self.assertEqual([20, 50, 100], bench_nova.parse_args([]).counts)
        self.assertEqual([5, 10],
                         bench_nova.parse_args(['--quick']).counts)
        self.assertEqual([3, 7], bench_nova.parse_args(
            ['--quick', '--counts', '3,7']).counts)

    def test_fastboot_requests(self):
        self.assertEqual('one', bench_nova.parse_args([]).fastboot_requests)
        self.assertEqual('per-server', bench_nova.parse_args(
            ['--fastboot-requests', 'per-server']).fastboot_requests)

    def test_bad_arguments_exit_2(self):
        for argv in (['--counts', '0'], ['--counts', 'x'],
                     ['--counts', ','], ['--hosts', '3'],
                     ['--fastboot-requests', 'two'],
                     ['--image', '/nonexistent/image.raw'],
                     ['--json', '/nonexistent/dir/r.json']):
            e = self.assertRaises(SystemExit, bench_nova.parse_args, argv)
            self.assertEqual(2, e.code, argv)

    def test_missing_tool(self):
        e = self.assertRaises(
            bench_nova.MissingDependency, bench_nova.check_dependencies,
            which=lambda tool: None, find_spec=lambda name: True)
        self.assertIn('qemu-img', str(e))

    def test_missing_nova_tests(self):
        def find_spec(name):
            if name.startswith('nova.'):
                raise ModuleNotFoundError(name)
            return True
        e = self.assertRaises(
            bench_nova.MissingDependency, bench_nova.check_dependencies,
            which=lambda tool: '/usr/bin/' + tool, find_spec=find_spec)
        self.assertIn('tox -e bench-nova', str(e))

    def test_main_fails_clearly_without_nova_tests(self):
        self.useFixture(fixtures.MockPatch(
            'gate.bench.nova.check_dependencies',
            side_effect=bench_nova.MissingDependency('no nova tests')))
        stderr = self.useFixture(fixtures.StringStream('stderr'))
        self.useFixture(fixtures.MonkeyPatch('sys.stderr', stderr.stream))
        self.assertEqual(1, bench_nova.main(['--counts', '1']))
        stderr.stream.flush()
        self.assertIn('bench-nova: error: no nova tests',
                      stderr.getDetails()['stderr'].as_text())

    def test_no_guest_image_is_a_clear_error(self):
        from fastboot_nova.demo import guest as guest_mod
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.guest.build_guest',
            side_effect=guest_mod.GuestBuildError(reason='no debootstrap')))
        e = self.assertRaises(bench_nova.MissingDependency,
                              bench_nova.default_image, '/nonexistent', None)
        self.assertIn('no debootstrap', str(e))
        self.assertIn('--image FILE', str(e))
