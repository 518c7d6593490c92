"""FastBootDriver over the real qemu engine (qemu-storage-daemon)."""

import json
import os
import shutil
import subprocess
import tempfile

import fixtures

from tests.functional import base as engine_base
from tests.functional_nova import base


class QemuEngineBase(base.FastBootTestBase):

    def setUp(self):
        for tool in ('qemu-img', 'qemu-io', 'qemu-storage-daemon'):
            if shutil.which(tool) is None:
                self.skipTest('%s is not installed' % tool)
        super().setUp()

    def make_engine(self, conf, host):
        from fastboot_nova.storage.qemu import engine as qemu_engine
        state_path = tempfile.mkdtemp(prefix='fbn-', dir='/tmp')
        self.addCleanup(shutil.rmtree, state_path, ignore_errors=True)
        engine = qemu_engine.QemuEngine(engine_base.make_conf(),
                                        state_path=state_path)
        self.addCleanup(engine.shutdown)
        return engine


class TestFastBootQemuEngine(QemuEngineBase):

    def test_boot_2_and_delete(self):
        self.start_compute('compute1')
        with open(self.origin, 'r+b') as f:
            f.write(b'\x2a' * 65536)
        servers, boot_s = self.boot_from_origin(2)
        engine = self.engines['compute1']
        image = 'cinder-' + base.ORIGIN_VOLUME
        (cached,) = engine.list_images()
        self.assertEqual(image, cached.name)
        self.assertEqual({'nova-' + s['id'] for s in servers},
                         set(cached.vms))
        for server in servers:
            (disk,) = self.guest_disks(server)
            path = disk.find('source').get('file')
            self.assertEqual(engine._vm_path('nova-' + server['id']), path)
            self.assertEqual('qcow2', disk.find('driver').get('type'))
            info = json.loads(subprocess.run(
                ['qemu-img', 'info', '-U', '--output=json', path],
                capture_output=True, text=True, check=True).stdout)
            # The overlay's backing is the host cache export, not the
            # origin volume.
            self.assertIn('nbd', info['full-backing-filename'])
            self.assertIn(image, info['full-backing-filename'])
            self.assertNotIn(self.origin, info['full-backing-filename'])
            # The guest reads the origin's data through overlay and cache.
            engine_base.qemu_io(path, 'read -P 0x2a 0 64k', read_only=True)
        self.delete_all(servers)
        for server in servers:
            self._wait_until_deleted(server)
        self.assertEqual([], engine.list())
        # The cache went with the last server: node and file.
        self.assertEqual([], engine.list_images())
        self.assertEqual([], os.listdir(engine.vm_dir))
        self.assertEqual([], os.listdir(engine.cache_dir))
        print('TIMING qemu engine 2 servers boot %.2f s' % boot_s)


class TestFastBootImageQemuEngine(QemuEngineBase):
    """The fastboot image over the real engine: one request, 3 servers."""

    def setUp(self):
        super().setUp()
        # The real _create_image (ServersTestBase mocks it), down to the
        # call that would fetch the image into nova's image cache.
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._create_image',
            base.REAL_CREATE_IMAGE))
        self.fetch = self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.LibvirtDriver.'
            '_try_fetch_image_cache')).mock
        self.image_id = self.make_fastboot_image(base.ORIGIN_VOLUME)

    def test_boot_3_in_one_request(self):
        self.start_compute('compute1')
        with open(self.origin, 'r+b') as f:
            f.write(b'\x2a' * 65536)
        servers, boot_s = self.boot_image(self.image_id, 3)
        engine = self.engines['compute1']
        image = 'cinder-' + base.ORIGIN_VOLUME
        (cached,) = engine.list_images()
        self.assertEqual(image, cached.name)
        self.assertEqual({'nova-' + s['id'] for s in servers},
                         set(cached.vms))
        for server in servers:
            (disk,) = self.guest_disks(server)
            path = disk.find('source').get('file')
            self.assertEqual(engine._vm_path('nova-' + server['id']), path)
            info = json.loads(subprocess.run(
                ['qemu-img', 'info', '-U', '--output=json', path],
                capture_output=True, text=True, check=True).stdout)
            # Each overlay's backing is the host cache export (a json:
            # filename naming the export and the daemon's socket).
            backing = json.loads(
                info['full-backing-filename'].removeprefix('json:'))
            self.assertEqual({'driver': 'nbd', 'export': image,
                              'server': {'type': 'unix',
                                         'path': os.path.join(
                                             engine.state_path,
                                             'nbd.sock')}},
                             {k: backing['file'][k] for k in
                              ('driver', 'export', 'server')})
            engine_base.qemu_io(path, 'read -P 0x2a 0 64k', read_only=True)
        self.assertEqual(3, len(self.attachments()))
        self.assertEqual(1, len(self.connects))
        self.assertFalse(self.fetch.called)
        self.delete_all(servers)
        for server in servers:
            self._wait_until_deleted(server)
        self.assertEqual([], engine.list())
        self.assertEqual([], os.listdir(engine.vm_dir))
        self.assertEqual([], engine.list_images())
        self.assertEqual({}, self.attachments())
        self.assertEqual(1, len(self.disconnects))
        print('TIMING qemu engine fastboot image 3 servers boot %.2f s'
              % boot_s)
