"""FastBootDriver refusals and cleanups, without a hypervisor."""

import types

import fixtures
from nova import exception as nova_exception
from oslotest import base

from fastboot_nova.virt import cacheops
from fastboot_nova.virt import driver
from fastboot_nova.virt import imageops
from fastboot_nova.virt import snapshotops
from tests.unit import fakes

VOLUME = '6e8a6c4c-3b53-4f6e-9a0b-0d5d1e0c9f11'


def make_driver(enabled=True):
    """A FastBootDriver without LibvirtDriver.__init__ (no libvirt)."""
    drv = object.__new__(driver.FastBootDriver)
    conf = types.SimpleNamespace(fastboot=types.SimpleNamespace(
        use_cachegroup=enabled, use_cache_snapshot=True))
    engine = fakes.FakeEngine()
    drv._cacheops = cacheops.CacheOps(conf, lambda conf: engine)
    drv._snapshotops = snapshotops.SnapshotOps(drv._cacheops, None)
    return drv


def instance(**system_metadata):
    return types.SimpleNamespace(uuid='uuid-1',
                                 system_metadata=system_metadata)


def volume_bdi(marked):
    connection_info = {'data': {'volume_id': VOLUME}}
    if marked:
        connection_info[snapshotops.MARKER] = {'image': 'cinder-' + VOLUME}
    return {'block_device_mapping': [{
        'connection_info': connection_info, 'boot_index': 0,
        'mount_device': '/dev/vda'}]}


class TestRefusals(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.driver = make_driver()
        self.image_server = instance(**{imageops.SM_ORIGIN: VOLUME})

    def test_snapshot(self):
        e = self.assertRaises(nova_exception.Invalid, self.driver.snapshot,
                              'ctxt', self.image_server, 'image', None)
        self.assertIn('Snapshot is not supported for a fastboot server',
                      str(e))

    def test_resize(self):
        for server, bdi in ((self.image_server, None),
                            (instance(), volume_bdi(marked=True))):
            e = self.assertRaises(
                nova_exception.InstanceFaultRollback,
                self.driver.migrate_disk_and_power_off, 'ctxt', server,
                'dest', {}, [], block_device_info=bdi)
            self.assertIn('Resize or cold migration is not supported for a '
                          'fastboot server', str(e.inner_exception))

    def test_live_migration(self):
        for server, bdi in ((self.image_server, None),
                            (instance(), volume_bdi(marked=True))):
            e = self.assertRaises(
                nova_exception.MigrationPreCheckError,
                self.driver.check_can_live_migrate_source, 'ctxt', server,
                {}, block_device_info=bdi)
            self.assertIn('Live migration is not supported for a fastboot '
                          'server', str(e))

    def test_rescue_from_the_stub(self):
        self.image_server.image_ref = 'image-1'
        self.image_server.system_metadata = {imageops.SM_ORIGIN: VOLUME}
        drv = self.driver
        drv._imageops = imageops.ImageOps(drv._cacheops, drv._snapshotops,
                                          None, None, None, None, 'host')
        e = self.assertRaises(
            nova_exception.InstanceNotRescuable, drv.rescue, 'ctxt',
            self.image_server, [], types.SimpleNamespace(id='image-1'),
            'pw', None, None)
        self.assertIn('must be rescued from another image', str(e))

    def test_which_servers(self):
        is_fastboot = self.driver._is_fastboot_server
        self.assertTrue(is_fastboot(self.image_server))
        self.assertTrue(is_fastboot(instance(), volume_bdi(marked=True)))
        self.assertFalse(is_fastboot(instance(), volume_bdi(marked=False)))
        self.assertFalse(is_fastboot(instance()))
        # Disabled on this host: LibvirtDriver decides.
        self.assertFalse(make_driver(enabled=False)._is_fastboot_server(
            self.image_server))


class TestCleanup(base.BaseTestCase):
    """Which cleanups destroy the overlay (LibvirtDriver._cleanup mocked)."""

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._cleanup'))
        self.driver = make_driver()
        self.released = []
        self.driver._imageops = imageops.ImageOps(
            self.driver._cacheops, self.driver._snapshotops, None, None,
            None, None, 'compute1')
        self.useFixture(fixtures.MockPatchObject(
            self.driver._imageops, 'release',
            side_effect=lambda ctxt, inst: self.released.append(inst.uuid)))

    def cleanup(self, server, destroy_disks):
        self.driver._cleanup('ctxt', server, [],
                             cleanup_instance_disks=destroy_disks)

    def test_which_cleanups_release(self):
        server = instance(**{imageops.SM_ORIGIN: VOLUME})
        # Hard reboot, power off: the overlay stays.
        server.host = 'compute1'
        self.cleanup(server, destroy_disks=False)
        self.assertEqual([], self.released)
        # Delete, failed spawn, rebuild.
        self.cleanup(server, destroy_disks=True)
        self.assertEqual(['uuid-1'], self.released)
        # Evacuated to compute2, storage found shared: the overlay is
        # host-local all the same.
        server.host = 'compute2'
        self.cleanup(server, destroy_disks=False)
        self.assertEqual(['uuid-1', 'uuid-1'], self.released)
