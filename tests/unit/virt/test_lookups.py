"""The driver finds one disk or cache without listing them all (item 10).

``_get_instance_disk_info_from_config`` runs once per domain in every
resource tracker pass: listing every disk there made a pass O(N^2), and on
the dm backend each listed thin VM costs a privileged ``dmsetup status``.
"""

import types
from unittest import mock

from nova.virt.libvirt import driver as libvirt_driver
from oslotest import base

from fastboot_nova.virt import imageops
from fastboot_nova.virt import snapshotops
from tests.unit.virt import test_driver

N = 100


class TestOneDiskLookups(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.driver = test_driver.make_driver()
        self.engine = self.driver._cacheops.engine
        self.driver._imageops = imageops.ImageOps(
            self.driver._cacheops, self.driver._snapshotops, None, None,
            None, None, 'compute1')
        self.uuids = ['uuid-%03d' % i for i in range(N)]
        for uuid in self.uuids:
            self.engine.create(snapshotops.SnapshotOps.disk_name(uuid),
                               'img', 'nbd://origin/img')
        self.engine.calls.clear()

    def disks_of(self, uuid):
        overlay = self.engine.vms[
            snapshotops.SnapshotOps.disk_name(uuid)].path
        return [{'path': overlay, 'type': 'qcow2'},
                {'path': '/var/lib/nova/instances/%s/disk.config' % uuid,
                 'type': 'raw'}]

    def test_resource_tracker_pass_looks_up_one_disk_per_domain(self):
        kept = []
        for uuid in self.uuids:
            with mock.patch.object(
                    libvirt_driver.LibvirtDriver,
                    '_get_instance_disk_info_from_config',
                    return_value=self.disks_of(uuid)):
                kept += self.driver._get_instance_disk_info_from_config(
                    types.SimpleNamespace(uuid=uuid), None)
        # The overlays are the engine's; only Nova's own files remain.
        self.assertEqual(['/var/lib/nova/instances/%s/disk.config' % u
                          for u in self.uuids], [d['path'] for d in kept])
        verbs = [c[0] for c in self.engine.calls]
        self.assertEqual(['get_disk'] * N, verbs)

    def test_disk_path_and_cache_users_do_not_list(self):
        inst = types.SimpleNamespace(uuid=self.uuids[7])
        self.assertEqual(
            self.engine.vms[snapshotops.SnapshotOps.disk_name(
                self.uuids[7])].path,
            self.driver._imageops.disk_path(inst))
        self.assertIsNone(self.driver._imageops.disk_path(
            types.SimpleNamespace(uuid='uuid-none')))
        self.assertEqual(N, len(self.driver._cacheops.users('img')))
        self.assertEqual(set(), self.driver._cacheops.users('other'))
        verbs = {c[0] for c in self.engine.calls}
        self.assertEqual({'get_disk', 'get_image'}, verbs)
