"""Growing the dm backend's thin-pool, against the recording fake kernel."""

import os

import fixtures

from fastboot_nova.privsep import dm as dm_priv
from fastboot_nova.storage.dm import pool as pool_mod
from tests.unit.dm import test_dm_engine

ORIGIN = test_dm_engine.ORIGIN
MiB = 1 << 20


class TestPool(test_dm_engine.DmEngineTestCase):

    snapshot_type = 'thin'

    def setUp(self):
        super().setUp()
        self.conf.set_override('thin_pool_size_mib', 64, 'fastboot_dm')
        self.pool = '%spool-thin' % self.p
        self.meta, self.data = self.engine.pool.files()

    def test_no_pool_before_the_first_vm(self):
        self.assertIsNone(self.engine.pool_status())
        e = self.assertRaises(pool_mod.PoolError, self.engine.grow_pool, 128)
        self.assertIn('there is no pool yet', str(e))

    def test_status(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.kernel.pool_used[self.pool] = 100
        st = self.engine.pool_status()
        self.assertEqual({'data_bytes': 64 * MiB, 'meta_bytes': 8 * MiB,
                          'block_bytes': 65536,
                          'files': [self.meta, self.data], 'active': True,
                          'used_bytes': 100 * 65536,
                          'used_meta_bytes': 20 * 4096, 'mode': 'rw',
                          'low_space': False}, st)
        # 1024 blocks, low-water mark 102: 923 used leaves 101 free.
        self.kernel.pool_used[self.pool] = 923
        self.assertTrue(self.engine.pool_status()['low_space'])

    def test_low_pool_warns_at_create(self):
        log = self.useFixture(fixtures.FakeLogger(level='WARNING'))
        self.engine.create('vm1', 'img', ORIGIN)
        self.assertEqual('', log.output)
        self.kernel.pool_used[self.pool] = 1000
        self.engine.create('vm2', 'img', ORIGIN)
        self.assertIn('low on space (62 of 64 MiB used', log.output)
        self.assertIn('fastboot pool grow', log.output)

    def test_grow_live(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        st = self.engine.grow_pool(256)
        self.assertEqual([
            ('losetup --set-capacity /dev/loop0', None),
            ('losetup --set-capacity /dev/loop1', None),
            ('dmsetup reload %s' % self.pool,
             '0 524288 thin-pool /dev/loop0 /dev/loop1 128 409 1 '
             'error_if_no_space\n'),
            ('dmsetup resume %s' % self.pool, None),
        ], self.kernel.commands())
        self.assertEqual(256 * MiB, os.path.getsize(self.data))
        self.assertGreaterEqual(os.stat(self.data).st_blocks * 512,
                                256 * MiB)
        # 4096 blocks still fit the 8 MiB minimum of metadata.
        self.assertEqual(8 * MiB, os.path.getsize(self.meta))
        self.assertEqual(256 * MiB, st['data_bytes'])
        self.assertEqual(8 * MiB, st['meta_bytes'])
        pool = self.engine.state.read()['dm']['pool']
        self.assertEqual((256 * MiB, 8 * MiB),
                         (pool['data_bytes'], pool['meta_bytes']))
        # The VM is untouched, and a new one uses the larger pool.
        self.assertIn('%svm-vm1' % self.p, self.kernel.tables)
        self.engine.create('vm2', 'img', ORIGIN)

    def test_metadata_grows_with_the_data(self):
        # 4 MiB + 128 B per data block, at least 8 MiB, whole MiB.
        self.assertEqual(8 * MiB, pool_mod.meta_bytes_for(1024))
        self.assertEqual(8 * MiB, pool_mod.meta_bytes_for(32768))
        self.assertEqual(9 * MiB, pool_mod.meta_bytes_for(32769))
        self.assertEqual(132 * MiB, pool_mod.meta_bytes_for(1 << 20))

    def test_grow_inactive_pool_grows_the_files(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.engine.deactivate()
        del self.kernel.calls[:]
        self.engine.grow_pool(128)
        self.assertEqual([], self.kernel.commands())
        self.assertEqual(128 * MiB, os.path.getsize(self.data))
        # The pool comes back over the whole, larger file.
        self.new_engine().reconcile()
        self.assertIn('0 262144 thin-pool ', self.kernel.tables[self.pool])

    def test_only_growth(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        for size in (64, 32, 0, -5, '128', True, None):
            self.assertRaises(pool_mod.PoolError, self.engine.grow_pool,
                              size)
        self.assertEqual([], self.kernel.commands())
        self.assertEqual(64 * MiB, os.path.getsize(self.data))

    def test_not_enough_space_changes_nothing(self):
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]
        fs = os.statvfs(self.state_path)
        too_big = fs.f_bavail * fs.f_frsize // MiB + 1024
        e = self.assertRaises(pool_mod.PoolError, self.engine.grow_pool,
                              too_big)
        self.assertIn('are free', str(e))
        self.assertEqual([], self.kernel.commands())
        self.assertEqual(64 * MiB, os.path.getsize(self.data))

    def test_failed_resume_puts_the_old_table_back(self):
        self.engine.create('vm1', 'img', ORIGIN)
        old = self.kernel.tables[self.pool]
        self.kernel.fail['dmsetup resume'] = (1, 'device-mapper: resume '
                                                 'ioctl failed')
        self.assertRaises(dm_priv.DmCommandFailed, self.engine.grow_pool,
                          128)
        cmds = [c for c, _ in self.kernel.commands()]
        self.assertEqual(['dmsetup reload %s' % self.pool,
                          'dmsetup resume %s' % self.pool,
                          'dmsetup clear %s' % self.pool,
                          'dmsetup resume %s' % self.pool], cmds[-4:])
        self.assertEqual(old, self.kernel.tables[self.pool])
        self.assertEqual({}, self.kernel.inactive)
        # Not recorded: the pool still holds 64 MiB.
        self.assertEqual(
            64 * MiB, self.engine.state.read()['dm']['pool']['data_bytes'])
