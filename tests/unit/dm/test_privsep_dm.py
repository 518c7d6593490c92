"""The privileged dm and loop entrypoints: exact argv, tables, refusals."""

import testtools

import fastboot_nova.privsep.dm as dm
import fastboot_nova.privsep.loop as loop
from tests.unit.dm import fakes

ORIGIN = '/dev/vdb'
SSD = '/dev/nvme0n1p2'
#: Names as an engine makes them: fb-<id>-<kind>-<name>.
P = 'fb-0123abcd-'
ORG, M, D, C = P + 'origin-o', P + 'cmeta-m', P + 'cdata-d', P + 'cache-c'
POOL, GRP = P + 'pool-thin', P + 'ssd-group'

#: Before the fixture replaces it.
REAL_MODULE_ON_DISK = dm._module_on_disk


class PrivsepTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.priv = self.useFixture(fakes.PrivsepFixture(
            {ORIGIN: 131072, SSD: 262144}))
        self.kernel = self.priv.kernel


class TestDm(PrivsepTestCase):

    def test_create_linear(self):
        path = dm.create_linear(ORG, [(ORIGIN, 0, 131072)])
        self.assertEqual('/dev/mapper/' + ORG, path)
        self.assertEqual([('dmsetup info ' + ORG, None),
                          ('dmsetup create ' + ORG,
                           '0 131072 linear /dev/vdb 0\n')],
                         self.kernel.calls)

    def test_create_linear_concatenates_segments(self):
        dm.create_linear(GRP, [(ORIGIN, 0, 1000), (SSD, 2048, 24)])
        self.assertEqual('0 1000 linear /dev/vdb 0\n'
                         '1000 24 linear /dev/nvme0n1p2 2048\n',
                         self.kernel.tables[GRP])

    def test_create_snapshot(self):
        dm.create_linear(ORG, [(ORIGIN, 0, 131072)])
        self.kernel.loops['/dev/loop3'] = '/x.cow'
        dm.create_snapshot(P + 'vm-vm1', '/dev/mapper/' + ORG, '/dev/loop3',
                           16)
        self.assertEqual(('dmsetup create %svm-vm1' % P,
                          '0 131072 snapshot /dev/mapper/%s /dev/loop3 P '
                          '16\n' % ORG), self.kernel.calls[-1])

    def test_create_cache(self):
        for name, seg in ((ORG, (ORIGIN, 0, 131072)),
                          (M, (SSD, 0, 8192)),
                          (D, (SSD, 8192, 131072))):
            dm.create_linear(name, [seg])
        dm.create_cache(C, '/dev/mapper/' + M, '/dev/mapper/' + D,
                        '/dev/mapper/' + ORG, 128)
        self.assertEqual(('dmsetup create ' + C,
                          '0 131072 cache /dev/mapper/%s /dev/mapper/%s '
                          '/dev/mapper/%s 128 1 writethrough smq 0\n' % (
                              M, D, ORG)),
                         self.kernel.calls[-1])

    def test_remove_table_status_ls_open(self):
        dm.create_linear(ORG, [(ORIGIN, 0, 8)])
        self.assertEqual('0 8 linear /dev/vdb 0\n', dm.table(ORG))
        self.assertEqual('0 8 linear\n', dm.status(ORG))
        self.assertEqual([[ORG, 253, 0]], dm.list_devices())
        self.assertEqual(0, dm.open_count(ORG))
        dm.remove_device(ORG)
        self.assertEqual([], dm.list_devices())
        self.assertIn(('dmsetup remove --retry ' + ORG, None),
                      self.kernel.calls)
        self.assertIn(('dmsetup info --columns --noheadings --options open '
                       + ORG, None), self.kernel.calls)

    def test_wipe_header(self):
        dm.create_linear(M, [(SSD, 0, 8192)])
        dm.wipe_header(M, 4096)
        self.assertEqual([('/dev/mapper/' + M, 4096)], self.kernel.wipes)

    def test_wipe_header_refuses(self):
        self.assertRaises(dm.InvalidDmArgument, dm.wipe_header,
                          P + 'cmeta-gone', 4096)
        dm.create_linear(M, [(SSD, 0, 8192)])
        for length in (0, 511, 2 << 20, True):
            self.assertRaises(dm.InvalidDmArgument, dm.wipe_header, M,
                              length)
        self.assertEqual([], self.kernel.wipes)

    def test_bad_names_run_nothing(self):
        for name in ('a;b', 'a b', '-x', '.x', '', 'x' * 128, 'a/b',
                     '$(reboot)', 'a`b`', 'n\n', None, 7):
            e = self.assertRaises(dm.InvalidDmArgument, dm.create_linear,
                                  name, [(ORIGIN, 0, 8)])
            self.assertIn('name', str(e))
            self.assertRaises(dm.InvalidDmArgument, dm.remove_device, name)
        self.assertEqual([], self.kernel.calls)

    def test_bad_paths_run_nothing(self):
        for path in ('/etc/passwd', '/dev/../etc/passwd', 'dev/vdb',
                     '/dev/vd b', '/dev/vdb;reboot', '/dev//vdb',
                     '/dev/./vdb', '/dev/missing', None, b'/dev/vdb'):
            self.assertRaises(dm.InvalidDmArgument, dm.create_linear, ORG,
                              [(path, 0, 8)])
        self.assertEqual([], self.kernel.calls)

    def test_bad_numbers_run_nothing(self):
        for seg in ((ORIGIN, -1, 8), (ORIGIN, 0, 0), (ORIGIN, 0, True),
                    (ORIGIN, 0, 1 << 51), (ORIGIN, '0', 8), (ORIGIN, 0),
                    'nope'):
            self.assertRaises(dm.InvalidDmArgument, dm.create_linear, ORG,
                              [seg])
        self.assertRaises(dm.InvalidDmArgument, dm.create_linear, ORG, [])
        self.assertRaises(dm.InvalidDmArgument, dm.create_linear, ORG,
                          [(ORIGIN, 0, 1)] * 257)
        self.assertEqual([], self.kernel.calls)

    def test_snapshot_arguments(self):
        self.kernel.loops['/dev/loop0'] = '/x.cow'
        self.kernel.tables[C] = '0 131072 linear /dev/vdb 0\n'
        cache = '/dev/mapper/' + C
        for chunk in (4, 24, 1 << 21, True):
            e = self.assertRaises(dm.InvalidDmArgument, dm.create_snapshot,
                                  P + 'vm-s', cache, '/dev/loop0', chunk)
            self.assertIn('chunk_sectors', str(e))
        for cow in (cache, '/dev/loop9'):
            e = self.assertRaises(dm.InvalidDmArgument, dm.create_snapshot,
                                  P + 'vm-s', cache, cow, 16)
            self.assertIn('cow_dev', str(e))
        self.assertEqual([], self.kernel.calls)

    def test_cache_arguments(self):
        for args in ((ORIGIN, SSD, ORIGIN, 128, 'writethrough'),
                     (SSD, '/dev/loopX', ORIGIN, 128, 'writethrough'),
                     ('/dev/mapper/m', SSD, ORIGIN, 100, 'writethrough'),
                     ('/dev/mapper/m', SSD, ORIGIN, 32, 'writethrough'),
                     ('/dev/mapper/m', SSD, ORIGIN, 128, 'fast')):
            self.assertRaises(dm.InvalidDmArgument, dm.create_cache, C,
                              *args)
        self.assertEqual([], self.kernel.calls)

    def test_double_create_refused_before_dmsetup_create(self):
        dm.create_linear(ORG, [(ORIGIN, 0, 8)])
        del self.kernel.calls[:]
        e = self.assertRaises(dm.DmCommandFailed, dm.create_linear, ORG,
                              [(ORIGIN, 0, 8)])
        self.assertIn('exists', str(e))
        self.assertEqual([('dmsetup info ' + ORG, None)], self.kernel.calls)
        self.assertEqual('0 8 linear /dev/vdb 0\n', self.kernel.tables[ORG])

    def test_dmsetup_failure_is_reported(self):
        self.kernel.fail['dmsetup create'] = (1, 'reload ioctl failed')
        e = self.assertRaises(dm.DmCommandFailed, dm.create_linear, ORG,
                              [(ORIGIN, 0, 8)])
        self.assertEqual('dmsetup create %s failed: reload ioctl failed' % ORG,
                         str(e))

    def test_ensure_targets(self):
        self.assertEqual([], dm.ensure_targets(['linear', 'cache']))
        self.assertEqual([('dmsetup targets', None)], self.kernel.calls)

    def test_ensure_targets_loads_modules(self):
        self.kernel.targets -= {'thin-pool', 'thin'}
        self.kernel.modules['dm-thin-pool'] = ('thin-pool', 'thin')
        self.assertEqual([], dm.ensure_targets(['thin-pool', 'thin']))
        self.assertIn(('modprobe -q dm-thin-pool', None), self.kernel.calls)

    def test_ensure_targets_reports_missing(self):
        self.kernel.targets.discard('snapshot')
        self.assertEqual(['snapshot'], dm.ensure_targets(['snapshot']))

    def test_ensure_targets_installed_module_is_enough(self):
        # modprobe fails (no CAP_SYS_MODULE); the kernel loads an
        # installed module itself when a table uses the target.
        self.kernel.targets -= {'thin-pool', 'thin'}
        self.kernel.on_disk.add('dm-thin-pool')
        self.assertEqual([], dm.ensure_targets(['thin-pool', 'thin']))

    def test_module_on_disk(self):
        self.assertFalse(REAL_MODULE_ON_DISK('dm-no-such-module'))

    def test_ensure_targets_refuses_unknown(self):
        for bad in (['era'], ['cache;x'], [], 'cache', None, [['cache']]):
            self.assertRaises(dm.InvalidDmArgument, dm.ensure_targets, bad)
        self.assertEqual([], self.kernel.calls)

    def test_missing_tool(self):
        self.kernel.fail['dmsetup'] = (127, 'dmsetup: executable not found')
        e = self.assertRaises(dm.ToolMissing, dm.list_devices)
        self.assertIn('package dmsetup', str(e))

    def test_thin_pool_and_volume(self):
        self.kernel.host_devices['/dev/vdd'] = 1000
        self.kernel.host_devices['/dev/vde'] = 8
        dm.create_linear(C, [(ORIGIN, 0, 131072)])
        del self.kernel.calls[:]
        dm.create_thin_pool(POOL, '/dev/vde', '/dev/vdd', 128, 1)
        dm.thin_message(POOL, 'create_thin', 7)
        dm.thin_message(POOL, 'create_snap', 8, 7)
        dm.create_thin(P + 'vm-t7', POOL, 7, '/dev/mapper/' + C)
        dm.thin_message(POOL, 'delete', 8)
        self.assertEqual([
            ('dmsetup create ' + POOL,
             '0 896 thin-pool /dev/vde /dev/vdd 128 1 1 '
             'error_if_no_space\n'),
            ('dmsetup message %s 0 create_thin 7' % POOL, None),
            ('dmsetup message %s 0 create_snap 8 7' % POOL, None),
            ('dmsetup create %svm-t7' % P,
             '0 131072 thin /dev/mapper/%s 7 /dev/mapper/%s\n' % (POOL, C)),
            ('dmsetup message %s 0 delete 8' % POOL, None),
        ], [c for c in self.kernel.calls if not c[0].startswith(
            'dmsetup info')])

    def test_thin_arguments(self):
        self.kernel.host_devices['/dev/vdd'] = 1000
        for args in ((ORIGIN, '/dev/vdd', 100, 1),
                     (ORIGIN, '/dev/vdd', 192, 1),
                     (ORIGIN, '/dev/vdd', 128, 100),
                     (ORIGIN, '/dev/vdd', 128, -1),
                     ('/dev/vdd', '/dev/vdd', 128, 1),
                     (ORIGIN, '/dev/vdd;x', 128, 1)):
            self.assertRaises(dm.InvalidDmArgument, dm.create_thin_pool,
                              POOL, *args)
        for args in (('create_thin', -1), ('create_thin', 1 << 24),
                     ('create_thin', True), ('create_thin', '1'),
                     ('create_thin', 1, 2), ('create_snap', 1),
                     ('delete; rm', 1), ('trim', 1)):
            self.assertRaises(dm.InvalidDmArgument, dm.thin_message,
                              POOL, *args)
        self.assertRaises(dm.InvalidDmArgument, dm.thin_message, 'p ool',
                          'delete', 1)
        self.assertRaises(dm.InvalidDmArgument, dm.thin_message, ORG,
                          'delete', 1)
        for args in ((POOL, -1, ORIGIN), (POOL, 1, '/etc/passwd'),
                     ('po/ol', 1, ORIGIN)):
            self.assertRaises(dm.InvalidDmArgument, dm.create_thin,
                              P + 'vm-t', *args)
        self.assertEqual([], self.kernel.calls)

    def test_grow_thin_pool(self):
        self.kernel.host_devices['/dev/vdd'] = 1024
        self.kernel.host_devices['/dev/vde'] = 8
        dm.create_thin_pool(POOL, '/dev/vde', '/dev/vdd', 128, 1)
        del self.kernel.calls[:]
        self.kernel.host_devices['/dev/vdd'] = 2048
        dm.grow_thin_pool(POOL, '/dev/vde', '/dev/vdd', 128, 2)
        self.assertEqual([
            ('dmsetup table ' + POOL, None),
            ('dmsetup reload ' + POOL, '0 2048 thin-pool /dev/vde /dev/vdd '
                                       '128 2 1 error_if_no_space\n'),
            ('dmsetup resume ' + POOL, None)], self.kernel.calls)
        # Not larger: refused before any reload.
        del self.kernel.calls[:]
        for data_dev in ('/dev/vdd', '/dev/vde'):
            self.assertRaises(dm.InvalidDmArgument, dm.grow_thin_pool,
                              POOL, '/dev/vdb', data_dev, 128, 1)
        # Not a pool (by name, and by table).
        dm.create_linear(ORG, [(ORIGIN, 0, 8)])
        self.assertRaises(dm.InvalidDmArgument, dm.grow_thin_pool, ORG,
                          '/dev/vde', '/dev/vdd', 128, 1)
        self.kernel.tables[P + 'pool-fake'] = self.kernel.tables[ORG]
        self.assertRaises(dm.InvalidDmArgument, dm.grow_thin_pool,
                          P + 'pool-fake', '/dev/vde', '/dev/vdd', 128, 1)
        for args in (('p ool', '/dev/vde', '/dev/vdd', 128, 1),
                     (POOL, '/dev/vde', '/dev/vdd;x', 128, 1),
                     (POOL, '/dev/vde', '/dev/vdd', 100, 1)):
            self.assertRaises(dm.InvalidDmArgument, dm.grow_thin_pool,
                              *args)
        self.assertEqual([], [c for c in self.kernel.calls
                              if c[0].startswith(('dmsetup reload',
                                                  'dmsetup resume'))])

    def test_list_devices_empty(self):
        self.assertEqual([], dm.list_devices())


class TestLoop(PrivsepTestCase):

    def test_attach_detach_list(self):
        cow = self.useFixture(fakes.fixtures.TempDir()).path + '/vm1.cow'
        open(cow, 'w').close()
        self.assertEqual('/dev/loop0', loop.attach(cow))
        self.assertEqual([['/dev/loop0', cow]], loop.list_attached())
        loop.detach('/dev/loop0')
        self.assertEqual(
            [('losetup --find --show --nooverlap %s' % cow, None),
             ('losetup --list --json --output NAME,BACK-FILE', None),
             ('losetup --list --json --output NAME,BACK-FILE', None),
             ('losetup --list --json --output NAME,BACK-FILE', None),
             ('losetup --detach /dev/loop0', None)], self.kernel.calls)

    def test_set_capacity(self):
        cow = self.useFixture(fakes.fixtures.TempDir()).path + '/pool.data'
        with open(cow, 'wb') as f:
            f.truncate(1 << 20)
        dev = loop.attach(cow)
        with open(cow, 'r+b') as f:
            f.truncate(2 << 20)
        self.assertEqual(2048, self.kernel.device_sectors(dev))
        loop.set_capacity(dev)
        self.assertEqual(('losetup --set-capacity /dev/loop0', None),
                         self.kernel.calls[-1])
        self.assertEqual(4096, self.kernel.device_sectors(dev))
        for bad in ('/dev/vdb', '/dev/loop1;x', None):
            self.assertRaises(dm.InvalidDmArgument, loop.set_capacity, bad)

    def test_attach_refuses(self):
        tmp = self.useFixture(fakes.fixtures.TempDir()).path
        for path in ('relative.cow', tmp + '/missing', tmp, '/dev/vdb',
                     tmp + '/../x', tmp + '/a b', None):
            self.assertRaises(dm.InvalidDmArgument, loop.attach, path)
        for dev in ('/dev/vdb', '/dev/loop', '/dev/loop1;x', None):
            self.assertRaises(dm.InvalidDmArgument, loop.detach, dev)
        self.assertEqual([], self.kernel.calls)
