"""Boot many servers from one shared volume through FastBootDriver."""

import collections
import logging


import fixtures
from nova import test

from tests.functional_nova import base

LOG = logging.getLogger(__name__)


class TestFastBootBoot(base.FastBootTestBase):

    def _assert_fastboot(self, servers, creates=None):
        """One cache per host, one disk per server, and each guest's XML."""
        by_host = collections.defaultdict(set)
        for server in servers:
            by_host[server['OS-EXT-SRV-ATTR:host']].add(server['id'])
        image = 'cinder-' + base.ORIGIN_VOLUME
        for host, uuids in by_host.items():
            engine = self.engines[host]
            self.assertEqual([image], sorted(engine.images))
            self.assertEqual({'nova-' + u for u in uuids}, set(engine.vms))
            self.assertEqual(creates or len(uuids),
                             len(engine.verbs('create')))
            for call in engine.verbs('create'):
                self.assertEqual(('create', call[1], image, self.origin),
                                 call)
        for server in servers:
            engine = self.engines[server['OS-EXT-SRV-ATTR:host']]
            overlay = engine.vms['nova-' + server['id']].path
            disks = self.guest_disks(server)
            self.assertEqual(1, len(disks))
            disk = disks[0]
            self.assertEqual('file', disk.get('type'))
            self.assertEqual('disk', disk.get('device'))
            self.assertEqual('qcow2', disk.find('driver').get('type'))
            self.assertEqual(overlay, disk.find('source').get('file'))
            self.assertEqual('vda', disk.find('target').get('dev'))
            self.assertEqual('ua-' + base.ORIGIN_VOLUME,
                             disk.find('alias').get('name'))
            self.assertIsNone(disk.find('readonly'))
            self.assertIsNone(disk.find('shareable'))
        return by_host

    def _assert_cleaned(self, by_host):
        image = 'cinder-' + base.ORIGIN_VOLUME
        for host, uuids in by_host.items():
            engine = self.engines[host]
            self.assertEqual({}, engine.vms)
            # The cache went with the host's last server, before its
            # origin was disconnected.
            self.assertEqual({}, engine.images)
            self.assertEqual([('remove_image', image)],
                             engine.verbs('remove_image'))
            self.assertEqual({'nova-' + u for u in uuids},
                             {c[1] for c in engine.verbs('destroy')})
            # The origin was disconnected once: by the host's last server.
            self.assertEqual(1, len([d for d in self.disconnects
                                     if d[0] == host]))

    def _boot_and_delete(self, count, hosts=('compute1',)):
        for host in hosts:
            self.start_compute(host)
        servers, boot_s = self.boot_from_origin(
            count, hosts=hosts if len(hosts) > 1 else None)
        by_host = self._assert_fastboot(servers)
        self.assertEqual(set(hosts), set(by_host))
        delete_s = self.delete_all(servers)
        for server in servers:
            self._wait_until_deleted(server)
        self._assert_cleaned(by_host)
        LOG.warning('fastboot: %d servers on %d host(s): boot %.1f s, '
                    'delete %.1f s', count, len(hosts), boot_s, delete_s)
        print('TIMING %d servers %d hosts boot %.2f s delete %.2f s' % (
            count, len(hosts), boot_s, delete_s))
        return servers

    def test_boot_5(self):
        self._boot_and_delete(5)

    def test_boot_5_on_2_hosts(self):
        self._boot_and_delete(5, hosts=('compute1', 'compute2'))

    def test_boot_50(self):
        self._boot_and_delete(50)

    def test_cache_goes_with_last_server(self):
        self.start_compute('compute1')
        first, _ = self.boot_from_origin(2)
        self.delete_all(first)
        for server in first:
            self._wait_until_deleted(server)
        engine = self.engines['compute1']
        self.assertEqual({}, engine.images)
        second, _ = self.boot_from_origin(1)
        self._assert_fastboot(second, creates=3)
        # The new server made a new cache (a cold one).
        self.assertEqual([], engine.verbs('reparent'))

    def test_kept_cache_outlives_servers(self):
        self.flags(keep_idle_caches=True, group='fastboot')
        self.start_compute('compute1')
        first, _ = self.boot_from_origin(2)
        self.delete_all(first)
        for server in first:
            self._wait_until_deleted(server)
        engine = self.engines['compute1']
        self.assertEqual([], engine.verbs('reparent'))
        second, _ = self.boot_from_origin(1)
        self._assert_fastboot(second, creates=3)
        # The idle cache re-opened its origin once, for the new server.
        self.assertEqual([('reparent', 'cinder-' + base.ORIGIN_VOLUME,
                           self.origin)], engine.verbs('reparent'))

    def test_hard_reboot_keeps_disk(self):
        self.start_compute('compute1')
        (server,), _ = self.boot_from_origin(1)
        engine = self.engines['compute1']
        disk = engine.vms['nova-' + server['id']]
        self.api.post_server_action(server['id'],
                                    {'reboot': {'type': 'HARD'}})
        self._wait_for_state_change(server, 'ACTIVE')
        self.assertIs(disk, engine.vms['nova-' + server['id']])
        self.assertEqual(1, len(engine.verbs('create')))
        self.assertEqual([], engine.verbs('destroy'))
        # The origin stays connected: the cache reads from it.
        self.assertEqual([], self.disconnects)
        self._assert_fastboot([server])

    def test_resize_refused(self):
        self.flags(allow_resize_to_same_host=True)
        self.start_compute('compute1')
        (server,), _ = self.boot_from_origin(1)
        engine = self.engines['compute1']
        disk = engine.vms['nova-' + server['id']]
        flavor = self._create_flavor(memory_mb=1024, vcpu=1, disk=2)
        self.api.post_server_action(server['id'],
                                    {'resize': {'flavorRef': flavor}})
        self._wait_for_action_fail_completion(
            server, 'resize', 'compute_resize_instance')
        self.assertIn('Resize or cold migration is not supported for a '
                      'fastboot server', self.faults(server)[0])
        server = self._wait_for_state_change(server, 'ACTIVE')
        self.assertEqual('compute1', server['OS-EXT-SRV-ATTR:host'])
        self.assertIs(disk, engine.vms['nova-' + server['id']])
        self._assert_fastboot([server])

    def test_failed_spawn_destroys_disk(self):
        self.start_compute('compute1')
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.LibvirtDriver.'
            '_create_guest_with_network',
            side_effect=test.TestingException('boom')))
        body = self._build_server(image_uuid='', networks='none')
        body['block_device_mapping_v2'] = [{
            'boot_index': 0, 'uuid': base.ORIGIN_VOLUME,
            'source_type': 'volume', 'destination_type': 'volume'}]
        self.api.post_server({'server': body})
        engine = self.engines['compute1']
        # The build fails after the disk was made; Nova's cleanup destroys
        # it (the server goes to ERROR through the conductor).
        self.wait_for(lambda: engine.verbs('remove_image'))
        self.assertEqual(1, len(engine.verbs('create')))
        self.assertEqual(1, len(engine.verbs('destroy')))
        self.assertEqual({}, engine.vms)
        self.assertEqual({}, engine.images)


class TestNotFastBoot(base.FastBootTestBase):

    def test_disabled_boots_as_libvirt(self):
        self.flags(use_cache_snapshot=False, group='fastboot')
        self.start_compute('compute1')
        (server,), _ = self.boot_from_origin(1)
        (disk,) = self.guest_disks(server)
        self.assertEqual('network', disk.get('type'))
        self.assertNotIn('compute1', self.engines)

    def test_volume_not_marked(self):
        self.start_compute('compute1')
        body = self._build_server(image_uuid='', networks='none')
        body['block_device_mapping_v2'] = [{
            'boot_index': 0, 'uuid': self.cinder.IMAGE_BACKED_VOL,
            'source_type': 'volume', 'destination_type': 'volume'}]
        server = self._wait_for_state_change(
            self.api.post_server({'server': body}), 'ACTIVE')
        (disk,) = self.guest_disks(server)
        self.assertEqual('network', disk.get('type'))
        self.assertEqual({}, self.engines['compute1'].vms)
