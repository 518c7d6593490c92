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
        use_cachegroup=enabled, use_cache_snapshot=True, backend='qemu'))
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


def db_instance(**system_metadata):
    """A server whose system metadata has the DB model's list form.

    Nova hands drivers such instances too (``nova.utils.instance_sys_meta``
    exists for them): a list of ``{'key', 'value', 'deleted'}`` rows.
    """
    rows = [{'key': k, 'value': v, 'deleted': False}
            for k, v in system_metadata.items()]
    return types.SimpleNamespace(uuid='uuid-1', host='compute1',
                                 image_ref='image-1', system_metadata=rows)


class TestLibvirtBehaviour(base.BaseTestCase):
    """A non-fastboot server gets LibvirtDriver's behaviour.

    With fastboot enabled, from every method FastBootDriver overrides.
    """

    #: Each overridden method with arguments for a server that is no
    #: fastboot server.
    CALLS = {
        'spawn': ('ctxt', None, {}, [], 'pw', {}),
        'reboot': ('ctxt', None, [], 'HARD'),
        '_hard_reboot': ('ctxt', None, [], None),
        'snapshot': ('ctxt', None, 'image', None),
        'rescue': ('ctxt', None, [], types.SimpleNamespace(id='image-2'),
                   'pw', None, None),
        'migrate_disk_and_power_off': ('ctxt', None, 'dest', {}, []),
        'check_can_live_migrate_source': ('ctxt', None, {}),
        '_cleanup': ('ctxt', None, []),
        '_create_and_inject_local_root': ('ctxt', None, {}, False, '', [],
                                          None, False),
        '_get_guest_disk_config': (None, 'disk', {}, {}),
    }

    def setUp(self):
        super().setUp()
        self.driver = make_driver()
        drv = self.driver
        drv._imageops = imageops.ImageOps(drv._cacheops, drv._snapshotops,
                                          None, None, None, None, 'compute1')

    def test_every_override_is_listed(self):
        overridden = {
            name for name, value in vars(driver.FastBootDriver).items()
            if callable(value) and hasattr(
                driver.libvirt_driver.LibvirtDriver, name)}
        # Host-level hooks take no server; the rest must be checked below.
        host_level = {'__init__', 'init_host', 'cleanup_host',
                      'process_instances_at_startup', 'update_provider_tree',
                      '_get_instance_disk_info_from_config',
                      '_connect_volume', '_get_volume_config',
                      '_disconnect_volume'}
        self.assertEqual(set(), overridden - host_level - set(self.CALLS))

    def test_delegates_unchanged(self):
        for name, args in self.CALLS.items():
            server = db_instance(image_base_image_ref='image-1')
            args = tuple(server if a is None else a for a in args)
            with fixtures.MockPatch(
                    'nova.virt.libvirt.driver.LibvirtDriver.' + name,
                    return_value='libvirt-result') as base_method:
                result = getattr(self.driver, name)(*args)
            self.assertEqual('libvirt-result', result, name)
            base_method.mock.assert_called_once()
            self.assertIs(server, base_method.mock.call_args.args[1]
                          if name != '_get_guest_disk_config'
                          else base_method.mock.call_args.args[0], name)

    def test_snapshot_of_a_stopped_server(self):
        # LibvirtDriver: InstanceNotRunning when there is no domain.
        self.driver._host = types.SimpleNamespace(
            get_guest=mock_raises(nova_exception.InstanceNotFound(
                instance_id='uuid-1')))
        server = db_instance(image_base_image_ref='image-1')
        libvirt = driver.libvirt_driver.LibvirtDriver
        self.assertRaises(nova_exception.InstanceNotRunning,
                          libvirt.snapshot, self.driver, 'ctxt', server,
                          'image', None)
        self.assertRaises(nova_exception.InstanceNotRunning,
                          self.driver.snapshot, 'ctxt', server, 'image',
                          None)

    def test_list_form_of_a_fastboot_server(self):
        server = db_instance(**{imageops.SM_ORIGIN: VOLUME})
        self.assertTrue(imageops.is_fastboot_image(server))
        self.assertEqual(VOLUME, imageops.origin_volume_id(server))
        e = self.assertRaises(nova_exception.Invalid, self.driver.snapshot,
                              'ctxt', server, 'image', None)
        self.assertIn('Snapshot is not supported', str(e))


def mock_raises(error):
    def raise_(*args, **kwargs):
        raise error
    return raise_


class TestReconcileAtStart(base.BaseTestCase):
    """nova-compute start repairs the engine (a dead cache daemon)."""

    def test_reconciled(self):
        drv = make_driver()
        report = drv._reconcile_engine()
        self.assertEqual([('reconcile',)], drv._cacheops.engine.calls)
        self.assertEqual(['lost'], report.orphan_disks)

    def test_failure_does_not_stop_the_service(self):
        from fastboot_nova import exception
        drv = make_driver()
        self.useFixture(fixtures.MockPatchObject(
            drv._cacheops.engine, 'reconcile',
            side_effect=exception.DaemonError(reason='no qemu')))
        self.assertIsNone(drv._reconcile_engine())
