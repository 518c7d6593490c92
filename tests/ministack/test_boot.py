"""Real guests through Keystone, Glance, Nova, FastBootDriver and libvirt."""

import uuid

from ministack.scenarios import cloud as cloud_mod
from tests.ministack import base


class TestImageBoot(base.MinistackTestCase):
    """The stock image path of the driver: a Glance kernel/ramdisk/disk."""

    def _ensure_images(self):
        """The demo's guest (built once, ~3 min), its kernel and ramdisk
        images and ``ms.tiny`` (ministack.scenarios.cloud), plus the
        ``ms-guest`` disk image this stock path boots.
        """
        guest, kernel, ramdisk = self.cloud.ensure_guest()
        images = {i['Name'] for i in self.openstack('image', 'list',
                                                   user='admin')}
        if 'ms-guest' not in images:
            self.openstack(
                'image', 'create', 'ms-guest', '--public',
                '--disk-format', 'raw', '--container-format', 'bare',
                '--file', guest.image,
                '--property', 'kernel_id=%s' % kernel,
                '--property', 'ramdisk_id=%s' % ramdisk,
                '--property',
                'os_command_line=%s' % cloud_mod.COMMAND_LINE,
                user='admin')
        return guest

    @base.full_only('the Glance-image path of FastBootDriver: tox -e '
                    'functional-nova (Nova\'s fake libvirt); the real '
                    'libvirt boots of tests/ministack run from volumes')
    def test_boot_two_check_console_delete(self):
        guest = self._ensure_images()
        name = 'ms-t%s' % uuid.uuid4().hex[:8]
        domains_before = self.libvirt_domains()
        self.openstack('server', 'create', '--image', 'ms-guest',
                       '--flavor', 'ms.tiny', '--nic', 'none',
                       '--min', '2', '--max', '2', '--wait', name,
                       timeout=900)
        servers = [s for s in self.openstack('server', 'list', '--long',
                                             '--all-projects',
                                             user='admin')
                   if s['Name'].startswith(name + '-')]
        self.assertEqual(2, len(servers))
        for server in servers:
            self.assertIn(server['Status'], ('ACTIVE', 'SHUTOFF'))
            host, sid = server['Host'], server['ID']
            self.wait_for('checksum on the console of %s' % sid,
                          lambda h=host, i=sid: 'FASTBOOT-CHECKSUM' in
                          self.console_log(h, i), timeout=300)
            self.assertIn('FASTBOOT-CHECKSUM %s' % guest.payload_sha256,
                          self.console_log(host, sid))
        self.openstack('server', 'delete', '--wait',
                       *[s['ID'] for s in servers], parse=False)
        self.assertEqual(domains_before, self.libvirt_domains())
        for server in servers:
            path = (self.layout.data('compute-' + server['Host'])
                    / 'instances' / server['ID'])
            self.assertFalse(path.exists(), path)
