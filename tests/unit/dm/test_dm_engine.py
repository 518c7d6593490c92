"""DmEngine against a recording fake kernel: exact commands and rollback."""

import json
import os
import stat

import fixtures
from oslo_config import cfg
import testtools

from fastboot_nova.conf import dm as dm_opts
from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.privsep import dm as dm_priv
from fastboot_nova.storage.dm import engine as dm_engine
from fastboot_nova.storage.dm import kernel as dm_kernel
from tests.unit.dm import fakes
from tests.unit import fakes as unit_fakes

ORIGIN = '/dev/vdb'
ORIGIN2 = '/dev/vdc'
SSD = '/dev/nvme0n1p2'
ORIGIN_SECTORS = 131072          # 64 MiB
SSD_SECTORS = 4 * 2048 * 64      # 256 MiB
META = 10240                     # 4 MiB + 32 B per block, 1 MiB aligned


class DmEngineTestCase(testtools.TestCase):

    snapshot_type = 'snapshot'

    def setUp(self):
        super().setUp()
        self.priv = self.useFixture(fakes.PrivsepFixture(
            {ORIGIN: ORIGIN_SECTORS, ORIGIN2: ORIGIN_SECTORS,
             SSD: SSD_SECTORS}))
        self.kernel = self.priv.kernel
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(self.conf)
        dm_opts.register_opts(self.conf)
        self.conf([])
        self.conf.set_override('cache_device', SSD, 'fastboot_dm')
        self.conf.set_override('snapshot_type', self.snapshot_type,
                               'fastboot_dm')
        self.devices = fakes.FakeDevices(self.kernel)
        self.engine = self.new_engine()
        self.p = self.engine.prefix

    def new_engine(self):
        return dm_engine.DmEngine(self.conf, state_path=self.state_path,
                                  devices=self.devices)

    def ours(self):
        return sorted(n for n in self.kernel.tables
                      if n.startswith(self.p))


class TestCreate(DmEngineTestCase):

    def test_first_create_builds_the_group(self):
        disk = self.engine.create('vm1', 'img', ORIGIN)
        p = self.p
        cow = os.path.join(self.state_path, 'cow', 'vm1.cow')
        self.assertEqual('/dev/mapper/%svm-vm1' % p, disk.path)
        self.assertEqual([
            ('dmsetup create %sorigin-img' % p,
             '0 131072 linear /dev/vdb 0\n'),
            ('dmsetup create %scmeta-img' % p,
             '0 10240 linear /dev/nvme0n1p2 0\n'),
            ('dmsetup create %scdata-img' % p,
             '0 131072 linear /dev/nvme0n1p2 10240\n'),
            ('wipe /dev/mapper/%scmeta-img 4096' % p, None),
            ('dmsetup create %scache-img' % p,
             f'0 131072 cache /dev/mapper/{p}cmeta-img '
             f'/dev/mapper/{p}cdata-img /dev/mapper/{p}origin-img 128 1 '
             'writethrough smq 0\n'),
            ('losetup --find --show --nooverlap %s' % cow, None),
            ('dmsetup create %svm-vm1' % p,
             '0 131072 snapshot /dev/mapper/%scache-img /dev/loop0 P 16\n'
             % p),
        ], self.kernel.commands())
        # Sparse COW file big enough never to overflow.
        self.assertEqual(dm_engine.cow_bytes(ORIGIN_SECTORS, 16),
                         os.path.getsize(cow))
        st = self.engine.state.read()
        self.assertEqual('ready', st['images']['img']['status'])
        self.assertEqual({'device': SSD, 'start': 0, 'meta_sectors': META,
                          'data_sectors': ORIGIN_SECTORS,
                          'block_sectors': 128, 'mode': 'writethrough'},
                         st['images']['img']['cache'])
        self.assertEqual('ready', st['vms']['vm1']['status'])

    def test_writeback_only_when_configured_and_warned(self):
        log = self.useFixture(fixtures.FakeLogger(level='WARNING'))
        self.engine.create('vm1', 'img', ORIGIN)
        self.assertNotIn('writeback', log.output)
        self.conf.set_override('cache_mode', 'writeback', 'fastboot_dm')
        self.engine.create('vm2', 'img2', ORIGIN2)
        p = self.p
        self.assertIn(('dmsetup create %scache-img2' % p,
                       f'0 131072 cache /dev/mapper/{p}cmeta-img2 '
                       f'/dev/mapper/{p}cdata-img2 /dev/mapper/{p}origin-img2 '
                       '128 1 writeback smq 0\n'), self.kernel.commands())
        self.assertIn('Image img2: dm-cache in writeback mode', log.output)
        # The image cached before keeps its mode.
        st = self.engine.state.read()
        self.assertEqual('writethrough', st['images']['img']['cache']['mode'])
        self.assertRaises(ValueError, self.conf.set_override, 'cache_mode',
                          'writearound', 'fastboot_dm')

    def test_second_vm_only_adds_a_snapshot(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        self.engine.create('vm2', 'img', ORIGIN)
        cmds = [c for c, _ in self.kernel.commands()]
        self.assertEqual(['losetup --find --show --nooverlap %s' %
                          os.path.join(self.state_path, 'cow', 'vm2.cow'),
                          'dmsetup create %svm-vm2' % self.p], cmds)

    def test_two_images_get_disjoint_aligned_slices(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.engine.create('vm2', 'img2', ORIGIN2)
        c = self.engine.state.read()['images']['img2']['cache']
        self.assertEqual(META + ORIGIN_SECTORS, c['start'])
        self.assertEqual(0, c['start'] % dm_kernel.ALIGN_SECTORS)

    def test_image_conflict(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.assertRaises(exception.ImageConflict, self.engine.create,
                          'vm2', 'img', ORIGIN2)

    def test_double_create_builds_nothing(self):
        self.engine.create('vm1', 'img', ORIGIN)
        before = dict(self.kernel.tables)
        del self.kernel.calls[:]
        self.assertRaises(exception.VmExists, self.engine.create, 'vm1',
                          'img', ORIGIN)
        self.assertEqual(before, self.kernel.tables)
        self.assertEqual([], self.kernel.commands())

    def test_bad_input_runs_nothing(self):
        for vm, image, location, exc in (
                ('vm;x', 'img', ORIGIN, exception.InvalidName),
                ('vm\x00', 'img', ORIGIN, exception.InvalidName),
                ('vm1', '../img', ORIGIN, exception.InvalidName),
                ('vm1', 'img', '/dev/missing', exception.InvalidLocation),
                ('vm1', 'img', '/etc/passwd', exception.InvalidLocation),
                ('vm1', 'img', '/dev/vdb;reboot',
                 exception.InvalidLocation),
                ('vm1', 'img', 'nbd://h/x',
                 dm_engine.NotSupportedByBackend)):
            self.assertRaises(exc, self.engine.create, vm, image, location)
        self.assertEqual([], self.kernel.commands())
        self.assertEqual({}, self.engine.state.read()['vms'])

    def test_no_cache_device(self):
        self.conf.clear_override('cache_device', 'fastboot_dm')
        engine = self.new_engine()
        e = self.assertRaises(dm_engine.CacheDeviceError, engine.create,
                              'vm1', 'img', ORIGIN)
        self.assertIn('cache_device is not set', str(e))
        self.assertEqual([], self.ours())

    def test_cache_full_builds_nothing(self):
        self.kernel.host_devices[SSD] = ORIGIN_SECTORS  # no room for meta
        self.assertRaises(exception.CacheFull, self.engine.create, 'vm1',
                          'img', ORIGIN)
        self.assertEqual([], self.ours())
        self.assertEqual({}, self.engine.state.read()['images'])

    def test_missing_target_module_builds_nothing(self):
        self.kernel.targets.discard('cache')
        e = self.assertRaises(dm_engine.KernelSupportMissing,
                              self.engine.create, 'vm1', 'img', ORIGIN)
        self.assertIn('target(s) cache', str(e))
        self.assertIn('dm-cache, dm-cache-smq', str(e))
        # modprobe was tried, with an argument list, and nothing built.
        self.assertEqual([('modprobe -q dm-cache', None),
                          ('modprobe -q dm-cache-smq', None)],
                         self.kernel.commands())
        self.assertEqual([], self.ours())
        self.assertEqual([], os.listdir(self.engine.cow_dir))
        st = self.engine.state.read()
        self.assertEqual(({}, {}), (st['images'], st['vms']))

    def test_missing_smq_policy_is_missing_cache(self):
        self.kernel.smq = False
        self.assertRaises(dm_engine.KernelSupportMissing,
                          self.engine.create, 'vm1', 'img', ORIGIN)
        self.assertEqual([], self.ours())

    def test_target_module_loaded_on_demand(self):
        self.kernel.targets.discard('snapshot')
        self.kernel.modules['dm-snapshot'] = ('snapshot',)
        self.engine.create('vm1', 'img', ORIGIN)
        self.assertEqual(('modprobe -q dm-snapshot', None),
                         self.kernel.commands()[0])

    def test_missing_dmsetup(self):
        self.kernel.fail['dmsetup'] = (127, 'dmsetup: executable not found')
        e = self.assertRaises(dm_priv.ToolMissing, self.engine.create,
                              'vm1', 'img', ORIGIN)
        self.assertEqual('dmsetup is not installed (package dmsetup): the '
                         'dm backend cannot run without it', str(e))
        self.assertEqual({}, self.engine.state.read()['images'])

    def test_missing_losetup_drops_the_vm(self):
        self.kernel.fail['losetup --find'] = (127, 'not found')
        e = self.assertRaises(dm_priv.ToolMissing, self.engine.create,
                              'vm1', 'img', ORIGIN)
        self.assertIn('losetup is not installed (package util-linux)',
                      str(e))
        self.assertEqual({}, self.engine.state.read()['vms'])
        self.assertEqual([], os.listdir(self.engine.cow_dir))

    def test_shell_metacharacters_refused(self):
        for bad in ('vm;reboot', 'vm$(id)', 'vm`id`', 'vm|x', 'vm&', 'a b',
                    'vm>x', "vm'", 'vm"', 'vm\n', '-vm', 'vm*'):
            self.assertRaises(exception.InvalidName, self.engine.create,
                              bad, 'img', ORIGIN)
            self.assertRaises(exception.InvalidName, self.engine.create,
                              'vm1', bad, ORIGIN)
        for bad in ('/dev/vdb$(id)', '/dev/vdb`id`', '/dev/vd b',
                    '/dev/vdb|x', '/dev/../etc/passwd'):
            self.assertRaises(exception.InvalidLocation, self.engine.create,
                              'vm1', 'img', bad)
        self.assertEqual([], self.kernel.calls)

    def test_origin_gone_before_create(self):
        del self.kernel.host_devices[ORIGIN]
        self.assertRaises(exception.InvalidLocation, self.engine.create,
                          'vm1', 'img', ORIGIN)
        self.assertEqual([], self.ours())

    def test_cache_failure_rolls_back_everything(self):
        self.kernel.fail['dmsetup create %scache-img' % self.p] = (
            1, 'device-mapper: reload ioctl failed: Invalid argument')
        e = self.assertRaises(dm_priv.DmCommandFailed, self.engine.create,
                              'vm1', 'img', ORIGIN)
        self.assertIn('Invalid argument', str(e))
        self.assertEqual([], self.ours())
        self.assertEqual([], os.listdir(self.engine.cow_dir))
        st = self.engine.state.read()
        self.assertEqual(({}, {}), (st['images'], st['vms']))
        # The slice was wiped on the way out, so it is reusable.
        self.assertEqual(2, len(self.kernel.wipes))

    def test_snapshot_failure_keeps_the_image_drops_the_vm(self):
        self.kernel.fail['dmsetup create %svm-vm1' % self.p] = (
            1, 'snapshot: Failed to read snapshot metadata')
        self.assertRaises(dm_priv.DmCommandFailed, self.engine.create,
                          'vm1', 'img', ORIGIN)
        self.assertEqual(sorted(self.engine._image_devices('img')),
                         self.ours())
        self.assertEqual({}, self.kernel.loops)
        self.assertEqual([], os.listdir(self.engine.cow_dir))
        self.assertEqual({}, self.engine.state.read()['vms'])
        del self.kernel.fail['dmsetup create %svm-vm1' % self.p]
        self.engine.create('vm1', 'img', ORIGIN)


class TestLifecycle(DmEngineTestCase):

    def setUp(self):
        super().setUp()
        self.engine.create('vm1', 'img', ORIGIN)

    def test_destroy(self):
        del self.kernel.calls[:]
        self.engine.destroy('vm1')
        self.assertEqual([('dmsetup remove --retry %svm-vm1' % self.p,
                           None),
                          ('losetup --detach /dev/loop0', None)],
                         self.kernel.commands())
        self.assertEqual([], os.listdir(self.engine.cow_dir))
        self.assertEqual([], self.engine.list())
        self.assertRaises(exception.VmNotFound, self.engine.destroy, 'vm1')

    def test_destroy_refused_while_open(self):
        self.kernel.open_counts[self.p + 'vm-vm1'] = 1
        self.assertRaises(exception.VmDiskInUse, self.engine.destroy, 'vm1')
        self.assertIn(self.p + 'vm-vm1', self.kernel.tables)

    def test_remove_image(self):
        self.assertRaises(exception.ImageInUse, self.engine.remove_image,
                          'img')
        self.engine.destroy('vm1')
        del self.kernel.calls[:]
        self.engine.remove_image('img')
        p = self.p
        self.assertEqual([
            ('dmsetup remove --retry %scache-img' % p, None),
            ('wipe /dev/mapper/%scmeta-img 4096' % p, None),
            ('dmsetup remove --retry %scdata-img' % p, None),
            ('dmsetup remove --retry %scmeta-img' % p, None),
            ('dmsetup remove --retry %sorigin-img' % p, None)],
            self.kernel.commands())
        self.assertEqual([], self.ours())
        self.assertEqual({}, self.engine.state.read()['images'])
        self.assertRaises(exception.ImageNotFound, self.engine.remove_image,
                          'img')

    def test_add_and_remove_leave_other_images_alone(self):
        # Each image has its own devices: adding or removing one never
        # reloads or suspends another's, so its I/O does not stall.
        before = dict(self.kernel.tables)
        del self.kernel.calls[:]
        self.engine.create('vm2', 'img2', ORIGIN2)
        self.engine.destroy('vm2')
        self.engine.remove_image('img2')
        touched = [c for c, _ in self.kernel.commands()
                   if '-img ' in c + ' ' or c.endswith('-vm1')]
        self.assertEqual([], touched)
        self.assertEqual(before, self.kernel.tables)

    def test_new_origin_on_a_freed_slice_starts_wiped(self):
        self.engine.destroy('vm1')
        self.engine.remove_image('img')
        del self.kernel.wipes[:]
        self.engine.create('vm2', 'img2', ORIGIN2)
        self.assertEqual(0, self.engine.state.read()['images']['img2']
                         ['cache']['start'])
        self.assertEqual([('/dev/mapper/%scmeta-img2' % self.p, 4096)],
                         self.kernel.wipes)

    def test_list_and_images(self):
        [disk] = self.engine.list()
        self.assertEqual(('vm1', 'img'), (disk.name, disk.image))
        [image] = self.engine.list_images()
        self.assertEqual(('img', ORIGIN, 64 << 20, 5 * 128 * 512, ('vm1',)),
                         (image.name, image.location, image.virtual_size,
                          image.cached_bytes, image.vms))
        self.assertEqual({'read_hits': 7, 'read_misses': 3},
                         {k: v for k, v in
                          self.engine.cache_stats('img').items()
                          if k.startswith('read')})

    def test_clone(self):
        with open(os.path.join(self.engine.cow_dir, 'vm1.cow'), 'r+b') as f:
            f.seek(4096)
            f.write(b'data')
        disk = self.engine.clone('vm1', 'vm2')
        self.assertEqual('/dev/mapper/%svm-vm2' % self.p, disk.path)
        with open(os.path.join(self.engine.cow_dir, 'vm2.cow'), 'rb') as f:
            f.seek(4096)
            self.assertEqual(b'data', f.read(4))

    def test_deactivate_and_reconcile_restore_warm(self):
        self.engine.deactivate()
        self.assertEqual([], self.ours())
        self.assertEqual({}, self.kernel.loops)
        self.assertTrue(self.engine.state.read()['images']['img']['clean'])
        del self.kernel.wipes[:]
        report = self.new_engine().reconcile()
        self.assertEqual((['img'], ['vm1']), (report.restored_images,
                                              report.restored_vms))
        self.assertEqual([], self.kernel.wipes)  # clean: metadata kept
        self.assertTrue(self.new_engine().reconcile().clean)

    def test_reconcile_after_crash_starts_cold(self):
        # A host crash: every device and loop is gone, nothing was clean.
        self.kernel.tables.clear()
        self.kernel.loops.clear()
        report = self.new_engine().reconcile()
        self.assertEqual(['vm1'], report.restored_vms)
        self.assertEqual([('/dev/mapper/%scmeta-img' % self.p, 4096)],
                         self.kernel.wipes[-1:])

    def test_reconcile_origin_replaced_starts_cold(self):
        self.engine.deactivate()
        self.devices.identities[ORIGIN] = 'another-volume'
        del self.kernel.wipes[:]
        report = self.new_engine().reconcile()
        self.assertEqual(['img'], report.restored_images)
        self.assertEqual(1, len(self.kernel.wipes))

    def test_reconcile_origin_gone(self):
        self.engine.deactivate()
        del self.kernel.host_devices[ORIGIN]
        report = self.new_engine().reconcile()
        self.assertEqual(['img'], report.failed_images)
        self.assertEqual([], self.ours())

    def test_reconcile_removes_orphans_keeps_data(self):
        self.kernel.tables[self.p + 'vm-ghost'] = '0 8 linear /dev/vdb 0\n'
        self.kernel.minors[self.p + 'vm-ghost'] = 99
        self.kernel.tables['not-ours'] = '0 8 linear /dev/vdb 0\n'
        self.kernel.minors['not-ours'] = 98
        stray = os.path.join(self.engine.cow_dir, 'ghost.cow')
        open(stray, 'w').close()
        report = self.engine.reconcile()
        self.assertEqual([self.p + 'vm-ghost'], report.removed_orphan_nodes)
        self.assertIn('not-ours', self.kernel.tables)
        self.assertEqual([stray], report.orphan_disks)
        self.assertTrue(os.path.exists(stray))

    def test_unsupported_verbs_name_the_issue(self):
        for call in (lambda: self.engine.snapshot('vm1', 's', '/tmp'),
                     lambda: self.engine.migrate('vm1', '/tmp'),
                     lambda: self.engine.prefetch('img')):
            e = self.assertRaises(dm_engine.NotSupportedByBackend, call)
            self.assertIn("issue 'Kernel (dm) backend'", str(e))

    def test_shutdown_leaves_devices(self):
        self.engine.shutdown()
        self.assertIn(self.p + 'vm-vm1', self.kernel.tables)


class TestHelpers(testtools.TestCase):

    def test_cow_bytes(self):
        # 8 KiB chunks: 512 exceptions per metadata chunk.
        self.assertEqual((1 + 8192 + 17 + 1) * 8192,
                         dm_engine.cow_bytes(131072, 16))

    def test_parse_cache_status(self):
        line = ('0 131072 cache 8 27/2048 128 455/1024 11 9216 0 0 0 455 '
                '0 1 writethrough 2 migration_threshold 2048 smq 0 rw -')
        s = dm_engine.parse_cache_status(line)
        self.assertEqual((455, 1024, 11, 9216, 455),
                         (s['used_blocks'], s['total_blocks'],
                          s['read_hits'], s['read_misses'],
                          s['promotions']))
        self.assertIsNone(dm_engine.parse_cache_status('0 8 linear'))

    def test_sparse_copy(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        src, dst = os.path.join(tmp, 'a'), os.path.join(tmp, 'b')
        with open(src, 'wb') as f:
            f.truncate(64 << 20)
            f.seek(32 << 20)
            f.write(b'x' * 4096)
        dm_engine.sparse_copy(src, dst)
        with open(src, 'rb') as a, open(dst, 'rb') as b:
            self.assertEqual(a.read(), b.read())
        self.assertLess(os.stat(dst).st_blocks * 512, 1 << 20)


class TestThin(DmEngineTestCase):

    snapshot_type = 'thin'

    def setUp(self):
        super().setUp()
        self.conf.set_override('thin_pool_size_mib', 64, 'fastboot_dm')
        self.pool = '%spool-thin' % self.p
        self.meta, self.data = self.engine.pool.files()

    def test_first_create_builds_pool_and_volume(self):
        disk = self.engine.create('vm1', 'img', ORIGIN)
        p = self.p
        self.assertEqual('/dev/mapper/%svm-vm1' % p, disk.path)
        self.assertEqual([
            ('losetup --find --show --nooverlap %s' % self.meta, None),
            ('losetup --find --show --nooverlap %s' % self.data, None),
            ('dmsetup create %s' % self.pool,
             '0 131072 thin-pool /dev/loop0 /dev/loop1 128 102 1 '
             'error_if_no_space\n'),
            ('dmsetup message %s 0 create_thin 0' % self.pool, None),
            ('dmsetup create %svm-vm1' % p,
             '0 131072 thin /dev/mapper/%s 0 /dev/mapper/%scache-img\n' %
             (self.pool, p)),
        ], self.kernel.commands()[5:])
        # Allocated in full, not sparse: a full pool is the pool's ENOSPC.
        st = os.stat(self.data)
        self.assertEqual(64 << 20, st.st_size)
        self.assertGreaterEqual(st.st_blocks * 512, 64 << 20)
        entry = self.engine.state.read()
        self.assertEqual({'image': 'img', 'type': 'thin', 'thin_id': 0,
                          'path': disk.path, 'status': 'ready'},
                         {k: v for k, v in entry['vms']['vm1'].items()
                          if k != 'created_at'})
        self.assertEqual(1, entry['dm']['next_thin_id'])
        self.assertEqual([], os.listdir(self.engine.cow_dir))
        self.assertEqual(256 * 512, self.engine.list()[0].written_bytes)

    def test_second_vm_only_adds_a_volume(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        self.engine.create('vm2', 'img', ORIGIN)
        self.assertEqual(['dmsetup message %s 0 create_thin 1' % self.pool,
                          'dmsetup create %svm-vm2' % self.p],
                         [c for c, _ in self.kernel.commands()])

    def test_destroy_deletes_the_volume_and_idles_the_pool(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.engine.create('vm2', 'img', ORIGIN)
        self.engine.destroy('vm1')
        self.assertEqual({1}, self.kernel.thin_ids[self.pool])
        self.assertIn(self.pool, self.kernel.tables)
        self.engine.destroy('vm2')
        self.assertEqual(set(), self.kernel.thin_ids[self.pool])
        self.assertNotIn(self.pool, self.kernel.tables)
        self.assertEqual({}, self.kernel.loops)
        self.assertEqual({}, self.engine.state.read()['vms'])

    def test_clone_is_a_thin_snapshot(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        disk = self.engine.clone('vm1', 'vm2')
        p = self.p
        self.assertEqual([
            ('dmsetup remove --retry %svm-vm1' % p, None),
            ('dmsetup message %s 0 create_snap 1 0' % self.pool, None),
            ('dmsetup create %svm-vm2' % p,
             '0 131072 thin /dev/mapper/%s 1 /dev/mapper/%scache-img\n' %
             (self.pool, p)),
            ('dmsetup create %svm-vm1' % p,
             '0 131072 thin /dev/mapper/%s 0 /dev/mapper/%scache-img\n' %
             (self.pool, p)),
        ], self.kernel.commands())
        self.assertEqual('vm2', disk.name)

    def test_volume_failure_rolls_back(self):
        self.kernel.fail['dmsetup create %svm-vm1' % self.p] = (
            1, 'thin: Couldn\'t open thin internal device')
        self.assertRaises(dm_priv.DmCommandFailed, self.engine.create,
                          'vm1', 'img', ORIGIN)
        self.assertEqual(set(), self.kernel.thin_ids[self.pool])
        self.assertEqual({}, self.engine.state.read()['vms'])
        del self.kernel.fail['dmsetup create %svm-vm1' % self.p]
        self.engine.create('vm1', 'img', ORIGIN)
        self.assertEqual({1}, self.kernel.thin_ids[self.pool])

    def test_double_create_builds_nothing(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        self.assertRaises(exception.VmExists, self.engine.create, 'vm1',
                          'img', ORIGIN)
        self.assertEqual([], self.kernel.commands())
        self.assertEqual({0}, self.kernel.thin_ids[self.pool])

    def test_missing_thin_target(self):
        self.kernel.targets -= {'thin-pool', 'thin'}
        e = self.assertRaises(dm_engine.KernelSupportMissing,
                              self.engine.create, 'vm1', 'img', ORIGIN)
        self.assertIn('thin, thin-pool', str(e))
        self.assertEqual([], self.ours())

    def test_deactivate_and_reconcile(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.engine.create('vm2', 'img', ORIGIN)
        self.engine.deactivate()
        self.assertEqual([], self.ours())
        self.assertEqual({}, self.kernel.loops)
        report = self.new_engine().reconcile()
        self.assertEqual(['vm1', 'vm2'], report.restored_vms)
        self.assertIn(self.pool, self.kernel.tables)
        self.assertIn(' thin /dev/mapper/%s 1 ' % self.pool,
                      self.kernel.tables['%svm-vm2' % self.p])
        self.assertTrue(self.new_engine().reconcile().clean)

    def test_reconcile_drops_an_interrupted_create(self):
        self.engine.create('vm1', 'img', ORIGIN)
        with self.engine.state.update() as st:
            st['vms']['vm1']['status'] = 'creating'
        self.kernel.tables.pop('%svm-vm1' % self.p)
        report = self.new_engine().reconcile()
        self.assertEqual(['vm1'], report.dropped_vms)
        self.assertEqual(set(), self.kernel.thin_ids[self.pool])
        self.assertNotIn(self.pool, self.kernel.tables)

    def test_old_entries_are_snapshots(self):
        self.conf.set_override('snapshot_type', 'snapshot', 'fastboot_dm')
        self.new_engine().create('vm1', 'img', ORIGIN)
        self.conf.set_override('snapshot_type', 'thin', 'fastboot_dm')
        engine = self.new_engine()
        engine.create('vm2', 'img', ORIGIN)
        self.assertIn(' snapshot ', self.kernel.tables['%svm-vm1' % self.p])
        self.assertIn(' thin ', self.kernel.tables['%svm-vm2' % self.p])
        engine.destroy('vm1')
        engine.destroy('vm2')
        self.assertEqual([], os.listdir(engine.cow_dir))


class TestStateTrust(DmEngineTestCase):
    """Security review item 3 on the dm backend: derived paths only."""

    def setUp(self):
        super().setUp()
        self.disk = self.engine.create('vm1', 'img', ORIGIN)
        self.victim = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'victim')
        with open(self.victim, 'w') as f:
            f.write('precious')

    def edit_state(self, change):
        return unit_fakes.edit_state(self.state_path, change)

    def assertVictimKept(self):
        with open(self.victim) as f:
            self.assertEqual('precious', f.read())

    def test_destroy_with_an_edited_cow_deletes_nothing(self):
        before = self.edit_state(
            lambda d: d['vms']['vm1'].update(cow=self.victim))
        commands = len(self.kernel.commands())
        e = self.assertRaises(exception.StateError, self.engine.destroy,
                              'vm1')
        self.assertIn('changed outside fastboot', str(e))
        self.assertVictimKept()
        self.assertEqual(before, self.engine.state.read())
        self.assertEqual(commands, len(self.kernel.commands()))
        self.assertTrue(os.path.exists(
            os.path.join(self.state_path, 'cow', 'vm1.cow')))

    def test_clone_and_reconcile_with_an_edited_cow_touch_nothing(self):
        self.edit_state(lambda d: d['vms']['vm1'].update(cow=self.victim))
        self.assertRaises(exception.StateError, self.engine.clone, 'vm1',
                          'vm2')
        report = self.engine.reconcile()
        self.assertEqual(['vm1'], report.corrupt_entries)
        self.assertNotIn('vm2', self.engine.state.read()['vms'])
        self.assertVictimKept()

    def test_edited_device_path_is_corruption(self):
        self.edit_state(lambda d: d['vms']['vm1'].update(path='/dev/sda'))
        self.assertRaises(exception.StateError, self.engine.destroy, 'vm1')
        self.assertEqual([], self.engine.list())

    def test_cow_files_and_copies_are_0600(self):
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        cow = os.path.join(self.state_path, 'cow', 'vm1.cow')
        self.assertEqual(0o600, stat.S_IMODE(os.stat(cow).st_mode))
        self.engine.clone('vm1', 'vm2')
        cow2 = os.path.join(self.state_path, 'cow', 'vm2.cow')
        self.assertEqual(0o600, stat.S_IMODE(os.stat(cow2).st_mode))

    def test_symlinked_data_directories_are_refused(self):
        for name in ('cow', 'thin'):
            state_path = self.useFixture(fixtures.TempDir()).path
            elsewhere = self.useFixture(fixtures.TempDir()).path
            os.symlink(elsewhere, os.path.join(state_path, name))
            e = self.assertRaises(
                exception.InvalidDestination, dm_engine.DmEngine, self.conf,
                state_path=state_path, devices=self.devices)
            self.assertIn('symbolic link', str(e))


class TestThinStateTrust(DmEngineTestCase):

    snapshot_type = 'thin'

    def setUp(self):
        super().setUp()
        self.conf.set_override('thin_pool_size_mib', 64, 'fastboot_dm')
        self.engine.create('vm1', 'img', ORIGIN)
        self.victim = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'victim')
        with open(self.victim, 'w') as f:
            f.write('precious')

    def test_edited_pool_files_are_not_grown(self):
        path = os.path.join(self.state_path, 'state.json')
        with open(path) as f:
            data = json.load(f)
        data['dm']['pool']['data'] = self.victim
        with open(path, 'w') as f:
            json.dump(data, f)
        self.assertRaises(exception.StateError, self.engine.grow_pool, 128)
        self.assertEqual(8, os.path.getsize(self.victim))

    def test_a_thin_id_that_is_not_a_number_is_corruption(self):
        path = os.path.join(self.state_path, 'state.json')
        with open(path) as f:
            data = json.load(f)
        data['vms']['vm1']['thin_id'] = '0 1'
        with open(path, 'w') as f:
            json.dump(data, f)
        self.assertRaises(exception.StateError, self.engine.destroy, 'vm1')


class TestOneLookup(DmEngineTestCase):
    """get_disk / get_image cost one VM's or image's queries (item 10)."""

    snapshot_type = 'thin'

    def setUp(self):
        super().setUp()
        self.conf.set_override('thin_pool_size_mib', 64, 'fastboot_dm')
        for i in range(10):
            self.engine.create('vm%d' % i, 'img', ORIGIN)

    def status_calls(self, call):
        before = len(self.kernel.calls)
        result = call()
        return result, [c[0] for c in self.kernel.calls[before:]
                        if c[0].startswith('dmsetup status')]

    def test_get_disk_queries_one_device(self):
        disk, calls = self.status_calls(lambda: self.engine.get_disk('vm3'))
        self.assertEqual('vm3', disk.name)
        self.assertEqual(['dmsetup status %svm-vm3' % self.p], calls)
        _disks, calls = self.status_calls(self.engine.list)
        self.assertEqual(10, len(calls))

    def test_get_unknown_or_invalid_is_none_and_queries_nothing(self):
        for name in ('nope', '../x', 'a' * 1000):
            disk, calls = self.status_calls(
                lambda name=name: self.engine.get_disk(name))
            self.assertIsNone(disk)
            self.assertEqual([], calls)
            self.assertIsNone(self.engine.get_image(name))

    def test_get_image_matches_list_images(self):
        self.engine.add_image('img2', ORIGIN2)
        for image in self.engine.list_images():
            self.assertEqual(image, self.engine.get_image(image.name))
