"""Four servers from one volume snapshot with ``nova boot``, then their life.

The command the design card's users name (python-novaclient's ``nova boot
--image ... --min-count 4``), on a fastboot image whose origin is a
volume cloned from a snapshot; then, on the same four guests (one batch
serves every assertion, to keep the CI run short): hard reboot, start
after the guest powered itself off, stop, and delete, after which no
cache, Cinder attachment, libvirt domain or overlay is left.
"""

import shutil
import tempfile
import uuid

from fastboot_nova.demo import guest as guest_mod
from fastboot_nova.demo import runner

from ministack import layout as layout_mod
from tests.ministack import base

COUNT = 4


class TestNovaBootLifecycle(base.MinistackTestCase):

    def setUp(self):
        super().setUp()
        self.tag = uuid.uuid4().hex[:8]
        self.tmp = tempfile.mkdtemp(prefix='fbms-', dir='/tmp')
        self.addCleanup(shutil.rmtree, self.tmp, ignore_errors=True)

    def _fresh_checksum(self, server, action, *args):
        """Run ``nova action`` on a powered-off guest; it boots again and
        prints the checksum again (the console file is emptied first).
        """
        path = self.cloud.instance_dir(server['Host'], server['ID']) / \
            'console.log'
        path.write_bytes(b'')
        self.cloud.nova(action, *args, server['ID'])
        self.wait_for('checksum after %s of %s' % (action, server['ID']),
                      lambda: self.cloud.checksum(server['Host'],
                                                  server['ID']),
                      timeout=600)
        self.assertEqual(self.guest.payload_sha256,
                         self.cloud.checksum(server['Host'], server['ID']))

    def _wait_status(self, server_id, want):
        self.wait_for('%s %s' % (server_id, want), lambda: self.openstack(
            'server', 'show', server_id, '-c', 'status')['status'] == want,
            timeout=600)

    def test_nova_boot_min_count_reboot_stop_start_delete(self):
        self.guest = guest_mod.build_guest(runner.DEFAULT_CACHE_DIR)
        made = self.cloud.snapshot_origin(self.guest, self.tag, self.tmp,
                                          self.addCleanup)
        domains_before = self.cloud.domains()
        name = 'ms-nv%s' % self.tag
        self.cloud.nova('boot', '--image', made['image'], '--flavor',
                        'ms.tiny', '--nic', 'none', '--min-count', COUNT,
                        name)
        servers = self.cloud.wait_servers(name, COUNT, timeout=1200)
        self.addCleanup(self.cloud.openstack, 'server', 'delete', '--wait',
                        *[s['ID'] for s in servers], parse=False,
                        check=False, timeout=900)
        sums = self.cloud.wait_checksums(servers, 0, timeout=900)
        self.assertEqual(
            {s['ID']: self.guest.payload_sha256 for s in servers},
            {sid: value for sid, (_, value) in sums.items()})
        hosts = {s['Host'] for s in servers}
        for host in hosts:
            caches = self.cloud.caches(host)
            self.assertEqual(['cinder-' + made['origin']],
                             [c['name'] for c in caches], caches)
        attached = self.openstack('volume', 'show', made['origin'],
                                  user='admin')['attachments']
        # The origin is attached for every server (what Nova's delete
        # must undo), not only once per host.
        self.assertEqual({s['ID'] for s in servers},
                         {a['server_id'] for a in attached}, attached)

        # The guest powers off after its checksum: Nova marks it SHUTOFF.
        first, second = servers[0], servers[1]
        for server in (first, second):
            self._wait_status(server['ID'], 'SHUTOFF')
        self._fresh_checksum(first, 'start')
        self._wait_status(first['ID'], 'SHUTOFF')
        self._fresh_checksum(second, 'reboot', '--hard')
        self._wait_status(second['ID'], 'SHUTOFF')
        # Stop while it runs: start, then stop at once (the guest may
        # power itself off first; Nova then refuses the stop with a 409,
        # and the server ends SHUTOFF either way).
        self.cloud.nova('start', first['ID'])
        self._wait_status(first['ID'], 'ACTIVE')
        self.cloud.run('nova', 'stop', first['ID'], parse=False,
                       check=False)
        self._wait_status(first['ID'], 'SHUTOFF')

        self.cloud.nova('delete', *[s['ID'] for s in servers])
        self.wait_for('the servers to go', lambda: not self.cloud.servers(
            name), timeout=900)
        self.assertEqual(domains_before, self.cloud.domains())
        for host in layout_mod.COMPUTES:
            self.assertEqual([], self.cloud.caches(host))
        for server in servers:
            path = self.cloud.instance_dir(server['Host'], server['ID'])
            self.assertFalse(path.exists(), path)
        self.wait_for('no attachment on the origin', lambda: self.openstack(
            'volume', 'show', made['origin'], user='admin')[
                'attachments'] == [], timeout=300)
