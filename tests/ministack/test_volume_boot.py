"""Stage C, first scenario: four servers from one volume snapshot.

Volume holding the guest -> snapshot -> multiattach origin volume ->
fastboot image (a Glance image naming the origin) -> ``openstack server
create --min 4 --max 4``: every server ACTIVE, each console shows the
payload checksum, each compute host reads the origin (RBD, through
librbd in its storage daemon) into one cache.
"""

import json
import math
import os
import shutil
import subprocess
import tempfile
import uuid

from ministack import layout as layout_mod
from ministack.services import ceph
from ministack.services import cinder
from tests.ministack import base
from tests.ministack import test_boot


class TestVolumeSnapshotBoot(base.MinistackTestCase):

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        self.tmp = tempfile.mkdtemp(prefix='fbms-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def _delete(self, *args):
        subprocess.run(
            [str(self.layout.bin('openstack')), *args],
            env=dict(os.environ, **self.stack.venv_env(),
                     **self.stack.openrc('demo')),
            capture_output=True, timeout=600)

    def wait_status(self, kind, ident, want='available'):
        def check():
            status = self.openstack(kind, 'show', ident, '-c', 'status')[
                'status']
            if status == 'error':
                self.fail('%s %s went to error' % (kind, ident))
            return status == want
        self.wait_for('%s %s %s' % (kind, ident, want), check, timeout=600)

    def caches(self, host):
        state = self.layout.data('compute-' + host) / 'fb'
        out = subprocess.run(
            [str(self.layout.bin('fastboot')), '--state-path', str(state),
             'image', 'list', '-f', 'json'], capture_output=True, text=True,
            env=dict(os.environ, **self.stack.venv_env()), timeout=120)
        return json.loads(out.stdout) if out.returncode == 0 else out.stderr

    def test_four_servers_from_one_snapshot(self):
        guest = test_boot.TestImageBoot._ensure_images(self)
        images = {i['Name']: i['ID'] for i in self.openstack(
            'image', 'list', user='admin')}
        size_gib = max(1, math.ceil(os.path.getsize(guest.image) / 1024 ** 3))
        src = self.openstack('volume', 'create', '--size', str(size_gib),
                             'ms-gsrc-' + self.tag)['id']
        self.addCleanup(self._delete, 'volume', 'delete', src)
        self.wait_status('volume', src)
        subprocess.run(
            ['qemu-img', 'convert', '-n', '-f', 'raw', '-O', 'raw',
             guest.image, 'rbd:%s/volume-%s:conf=%s:id=admin' % (
                 ceph.POOL, src, ceph.conf_path(self.layout))],
            check=True, capture_output=True, timeout=600)
        snap = self.openstack('volume', 'snapshot', 'create', '--volume',
                              src, 'ms-gsnap-' + self.tag)['id']
        self.addCleanup(self._delete, 'volume', 'snapshot', 'delete', snap)
        self.wait_status('volume snapshot', snap)
        origin = self.openstack(
            'volume', 'create', '--snapshot', snap, '--size', str(size_gib),
            '--type', cinder.MULTIATTACH_TYPE,
            '--property', 'fastboot_cacheable=true',
            'ms-gorigin-' + self.tag)['id']
        self.addCleanup(self._delete, 'volume', 'delete', origin)
        self.wait_status('volume', origin)
        stub = os.path.join(self.tmp, 'stub.raw')
        with open(stub, 'wb') as f:
            f.write(b'\0' * 512)
        fb_image = self.openstack(
            'image', 'create', 'ms-fb-' + self.tag, '--disk-format', 'raw',
            '--container-format', 'bare', '--file', stub,
            '--property', 'fastboot_origin_volume=%s' % origin,
            '--property', 'kernel_id=%s' % images['ms-kernel'],
            '--property', 'ramdisk_id=%s' % images['ms-ramdisk'],
            '--property',
            'os_command_line=console=ttyS0 fastboot.vm=ms panic=-1')['id']
        self.addCleanup(self._delete, 'image', 'delete', fb_image)

        name = 'ms-fb%s' % self.tag
        domains_before = self.libvirt_domains()
        self.openstack('server', 'create', '--image', fb_image,
                       '--flavor', 'ms.tiny', '--nic', 'none',
                       '--min', '4', '--max', '4', '--wait', name,
                       timeout=1800)
        servers = [s for s in self.openstack('server', 'list', '--long',
                                             '--all-projects',
                                             user='admin')
                   if s['Name'].startswith(name + '-')]
        self.assertEqual(4, len(servers))
        hosts = set()
        for server in servers:
            self.assertIn(server['Status'], ('ACTIVE', 'SHUTOFF'), server)
            host, sid = server['Host'], server['ID']
            hosts.add(host)
            self.wait_for('checksum on the console of %s' % sid,
                          lambda h=host, i=sid: 'FASTBOOT-CHECKSUM' in
                          self.console_log(h, i), timeout=600)
            self.assertIn('FASTBOOT-CHECKSUM %s' % guest.payload_sha256,
                          self.console_log(host, sid))
        for host in hosts:
            caches = self.caches(host)
            self.assertEqual(['cinder-' + origin],
                             [c['name'] for c in caches], caches)
            self.assertTrue(caches[0]['location'].startswith('rbd://'))
        self.openstack('server', 'delete', '--wait',
                       *[s['ID'] for s in servers], parse=False,
                       timeout=900)
        self.assertEqual(domains_before, self.libvirt_domains())
        for host in layout_mod.COMPUTES:
            self.assertEqual([], self.caches(host))
