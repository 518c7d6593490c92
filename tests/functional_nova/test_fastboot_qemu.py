"""FastBootDriver over the real qemu engine (qemu-storage-daemon)."""

import json
import os
import shutil
import subprocess
import tempfile

from tests.functional import base as engine_base
from tests.functional_nova import base


class TestFastBootQemuEngine(base.FastBootTestBase):

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
        self.assertEqual([image], [c.name for c in engine.list_images()])
        self.assertEqual([], os.listdir(engine.vm_dir))
        print('TIMING qemu engine 2 servers boot %.2f s' % boot_s)
