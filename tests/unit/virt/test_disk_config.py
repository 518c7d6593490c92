"""The libvirt ``<disk>`` of a fastboot server, per backend.

The engine returns the VM disk's path; the disk type and format libvirt is
told follow from the backend: a qcow2 overlay file (qemu), a raw
device-mapper block device (dm). Checked on the XML libvirt receives, for
a root volume and for a fastboot image.
"""

import types
from xml.etree import ElementTree

import fixtures
from nova.virt.libvirt import config as vconfig
from oslotest import base

from fastboot_nova.virt import cacheops
from fastboot_nova.virt import driver
from fastboot_nova.virt import imageops
from fastboot_nova.virt import snapshotops
from tests.unit import fakes

VOLUME = '6e8a6c4c-3b53-4f6e-9a0b-0d5d1e0c9f11'
UUID = '0d6c1c1e-8f0a-4b43-9f53-1d8a3b9c2e77'

#: The path each engine returns for a VM disk, and the XML expected.
BACKENDS = {
    'qemu': ('/var/lib/fastboot/vms/nova-%s.qcow2' % UUID,
             'file', 'qcow2', 'file'),
    'dm': ('/dev/mapper/fb-1a2b3c4d-vm-nova-%s' % UUID,
           'block', 'raw', 'dev'),
}


def make_driver(backend, disk_path):
    drv = object.__new__(driver.FastBootDriver)
    conf = types.SimpleNamespace(fastboot=types.SimpleNamespace(
        use_cachegroup=True, use_cache_snapshot=True, backend=backend))
    engine = fakes.FakeEngine()
    engine.vms['nova-' + UUID] = fakes.base.VmDisk(
        name='nova-' + UUID, image='cinder-' + VOLUME, path=disk_path)
    drv._cacheops = cacheops.CacheOps(conf, lambda conf: engine)
    # A host with no libvirt secret (no encrypted volume).
    host = types.SimpleNamespace(find_secret=lambda usage, uuid: None)
    drv._snapshotops = snapshotops.SnapshotOps(drv._cacheops, host)
    drv._imageops = imageops.ImageOps(drv._cacheops, drv._snapshotops,
                                      None, None, None, None, 'compute1')
    drv.disk_cachemodes = {}
    return drv


def parse(conf):
    return ElementTree.fromstring(conf.to_xml())


class TestDiskConfig(base.BaseTestCase):

    def check(self, xml, backend):
        path, disk_type, disk_format, attr = BACKENDS[backend]
        self.assertEqual(disk_type, xml.get('type'))
        self.assertEqual('disk', xml.get('device'))
        self.assertEqual(disk_format, xml.find('driver').get('type'))
        source = xml.find('source')
        self.assertEqual({attr: path}, dict(source.attrib))
        self.assertIsNone(xml.find('readonly'))
        self.assertIsNone(xml.find('shareable'))

    def volume_xml(self, backend):
        path = BACKENDS[backend][0]
        drv = make_driver(backend, path)
        connection_info = {
            'driver_volume_type': 'iscsi', 'serial': VOLUME,
            'data': {'volume_id': VOLUME, 'device_path': '/dev/sdb',
                     'access_mode': 'ro'},
            snapshotops.MARKER: {'image': 'cinder-' + VOLUME,
                                 'disk': 'nova-' + UUID, 'path': path}}
        disk_info = {'bus': 'virtio', 'dev': 'vda', 'type': 'disk'}
        return parse(drv._get_volume_config(connection_info, disk_info))

    def image_xml(self, backend):
        drv = make_driver(backend, BACKENDS[backend][0])
        # What the image backend (Qcow2) would have made for 'disk'.
        image_disk = vconfig.LibvirtConfigGuestDisk()
        image_disk.source_type = 'file'
        image_disk.source_device = 'disk'
        image_disk.source_path = '/var/lib/nova/instances/%s/disk' % UUID
        image_disk.driver_name = 'qemu'
        image_disk.driver_format = 'qcow2'
        image_disk.driver_cache = 'none'
        image_disk.target_dev = 'vda'
        image_disk.target_bus = 'virtio'
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._get_guest_disk_config',
            return_value=image_disk))
        server = types.SimpleNamespace(
            uuid=UUID, system_metadata={imageops.SM_ORIGIN: VOLUME})
        return parse(drv._get_guest_disk_config(server, 'disk', {}, {}))

    def test_volume_qemu(self):
        self.check(self.volume_xml('qemu'), 'qemu')

    def test_volume_dm(self):
        self.check(self.volume_xml('dm'), 'dm')

    def test_image_qemu(self):
        xml = self.image_xml('qemu')
        self.check(xml, 'qemu')
        self.assertEqual('vda', xml.find('target').get('dev'))

    def test_image_dm(self):
        xml = self.image_xml('dm')
        self.check(xml, 'dm')
        self.assertEqual('none', xml.find('driver').get('cache'))

    def test_unknown_backend(self):
        self.assertRaises(KeyError, snapshotops.set_disk_source,
                          vconfig.LibvirtConfigGuestDisk(), '/x', 'zfs')
