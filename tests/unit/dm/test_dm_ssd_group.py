"""Several cache devices joined into one SSD group (dm-linear)."""

from fastboot_nova.storage.dm import engine as dm_engine
from tests.unit.dm import test_dm_engine

ORIGIN = test_dm_engine.ORIGIN
ORIGIN2 = test_dm_engine.ORIGIN2
SSD = test_dm_engine.SSD
SSD2 = '/dev/nvme1n1p2'
SSD2_SECTORS = 2048 * 64          # 64 MiB
META = test_dm_engine.META


class TestSsdGroup(test_dm_engine.DmEngineTestCase):

    snapshot_type = 'snapshot'

    def setUp(self):
        super().setUp()
        self.kernel.host_devices[SSD2] = SSD2_SECTORS
        self.conf.set_override('cache_device', '%s,%s' % (SSD, SSD2),
                               'fastboot_dm')
        self.engine = self.new_engine()
        self.group = '%sssd-group' % self.p
        self.group_path = '/dev/mapper/' + self.group

    def test_group_joins_the_devices_in_order(self):
        self.engine.create('vm1', 'img', ORIGIN)
        p = self.p
        self.assertEqual(
            [('dmsetup create %s' % self.group,
              '0 524288 linear /dev/nvme0n1p2 0\n'
              '524288 131072 linear /dev/nvme1n1p2 0\n'),
             ('dmsetup create %sorigin-img' % p,
              '0 131072 linear /dev/vdb 0\n'),
             ('dmsetup create %scmeta-img' % p,
              '0 10240 linear %s 0\n' % self.group_path)],
            self.kernel.commands()[:3])
        st = self.engine.state.read()
        self.assertEqual(self.group_path, st['dm']['cache_device'])
        self.assertEqual([[SSD, 524288, '524288:serial-' + SSD],
                          [SSD2, 131072, '131072:serial-' + SSD2]],
                         st['dm']['cache_members'])

    def test_slices_may_span_the_devices(self):
        # 256 + 64 MiB: four 64 MiB images (+ metadata) need both.
        origins = {'/dev/vd%s' % c: 131072 for c in 'bcde'}
        self.kernel.host_devices.update(origins)
        for i, origin in enumerate(sorted(origins)):
            self.engine.create('vm%d' % i, 'img%d' % i, origin)
        starts = [self.engine.state.read()['images']['img%d' % i]
                  ['cache']['start'] for i in range(4)]
        self.assertEqual(3 * (META + 131072), starts[3])
        self.assertGreater(starts[3] + META + 131072, 524288)

    def test_group_goes_with_the_last_image(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.engine.create('vm2', 'img2', ORIGIN2)
        self.engine.destroy('vm1')
        self.engine.remove_image('img')
        self.assertIn(self.group, self.kernel.tables)
        self.engine.destroy('vm2')
        self.engine.remove_image('img2')
        self.assertEqual([], self.ours())

    def test_deactivate_and_reconcile_rebuild_the_same_group(self):
        self.engine.create('vm1', 'img', ORIGIN)
        table = self.kernel.tables[self.group]
        self.engine.deactivate()
        self.assertEqual([], self.ours())
        report = self.new_engine().reconcile()
        self.assertEqual(['img'], report.restored_images)
        self.assertEqual(['vm1'], report.restored_vms)
        self.assertEqual(table, self.kernel.tables[self.group])
        self.assertTrue(self.new_engine().reconcile().clean)

    def test_changed_member_is_refused(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.engine.deactivate()
        # Another disk now answers at the second member's path.
        self.devices.identities[SSD2] = 'another-disk'
        report = self.new_engine().reconcile()
        self.assertEqual(['img'], report.failed_images)
        self.assertNotIn(self.group, self.kernel.tables)
        self.assertEqual([], self.ours())

    def test_changing_the_devices_is_refused_while_images_exist(self):
        self.engine.create('vm1', 'img', ORIGIN)
        self.conf.set_override('cache_device', '%s,%s' % (SSD2, SSD),
                               'fastboot_dm')
        engine = self.new_engine()
        e = self.assertRaises(dm_engine.CacheDeviceError, engine.create,
                              'vm2', 'img2', ORIGIN2)
        self.assertIn('remove them before changing cache_device', str(e))
        self.assertNotIn('img2', engine.state.read()['images'])

    def test_bad_member_builds_nothing(self):
        for value in ('%s,%s' % (SSD, SSD), '%s,/dev/nope' % SSD,
                      '%s,/dev/sd;x' % SSD):
            self.conf.set_override('cache_device', value, 'fastboot_dm')
            engine = self.new_engine()
            self.assertRaises(dm_engine.CacheDeviceError, engine.create,
                              'vm1', 'img', ORIGIN)
            self.assertEqual([], self.ours())
            self.assertEqual({}, engine.state.read()['images'])
