"""N servers from one shared volume in one request: the fastboot image."""

import collections
import logging
import os

import fixtures
from nova import conf
from nova import exception as nova_exception

from fastboot_nova import exception
from tests.functional_nova import base

CONF = conf.CONF
LOG = logging.getLogger(__name__)
IMAGE = 'cinder-' + base.ORIGIN_VOLUME
FETCH = 'nova.virt.libvirt.driver.LibvirtDriver._try_fetch_image_cache'


class FastBootImageBase(base.FastBootTestBase):

    def setUp(self):
        super().setUp()
        # The real _create_image (ServersTestBase mocks it), down to the
        # call that fetches a root image from Glance into the image cache.
        self.useFixture(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.LibvirtDriver._create_image',
            base.REAL_CREATE_IMAGE))
        self.fetch = self.useFixture(fixtures.MockPatch(FETCH)).mock
        self.download = self.useFixture(fixtures.MockPatchObject(
            self.glance, 'download')).mock
        self.image_id = self.make_fastboot_image(base.ORIGIN_VOLUME)

    def assert_no_image_fetched(self):
        self.assertFalse(self.fetch.called)
        self.assertFalse(self.download.called)
        # Nothing in nova's image cache directory.
        cache_dir = os.path.join(CONF.instances_path, '_base')
        self.assertFalse(os.path.exists(cache_dir) and os.listdir(cache_dir))

    def assert_fastboot(self, servers):
        """One cache per host, one overlay per server, its own XML."""
        by_host = collections.defaultdict(set)
        for server in servers:
            by_host[server['OS-EXT-SRV-ATTR:host']].add(server['id'])
        for host, uuids in by_host.items():
            engine = self.engines[host]
            self.assertEqual([IMAGE], sorted(engine.images))
            self.assertEqual({'nova-' + u for u in uuids}, set(engine.vms))
        paths = set()
        for server in servers:
            engine = self.engines[server['OS-EXT-SRV-ATTR:host']]
            overlay = engine.vms['nova-' + server['id']].path
            (disk,) = self.guest_disks(server)
            self.assertEqual('file', disk.get('type'))
            self.assertEqual('qcow2', disk.find('driver').get('type'))
            self.assertEqual(overlay, disk.find('source').get('file'))
            self.assertEqual('vda', disk.find('target').get('dev'))
            self.assertIsNone(disk.find('readonly'))
            self.assertIsNone(disk.find('shareable'))
            paths.add(overlay)
        self.assertEqual(len(servers), len(paths))
        # One Cinder attachment per server, each with its host's connector;
        # no volume was created.
        attachments = self.attachments()
        self.assertEqual({s['id'] for s in servers},
                         {a['instance_uuid'] for a in attachments.values()})
        self.assertEqual(len(servers), len(attachments))
        for attachment in attachments.values():
            self.assertIsNotNone(attachment['connector'])
        self.assertEqual({}, self.cinder.volumes)
        # The origin was connected once per host.
        self.assertEqual(sorted(by_host),
                         sorted(host for host, _ in self.connects))
        self.assert_no_image_fetched()
        return by_host

    def assert_cleaned(self, hosts):
        for host in hosts:
            engine = self.engines[host]
            self.assertEqual({}, engine.vms)
            # The cache went with the host's last server.
            self.assertEqual({}, engine.images)
            self.assertEqual([('remove_image', IMAGE)],
                             engine.verbs('remove_image'))
        self.assertEqual({}, self.attachments())
        # Disconnected once per host, by its last server.
        self.assertEqual(sorted(hosts),
                         sorted(host for host, _ in self.disconnects))

    def delete_and_wait(self, servers):
        seconds = self.delete_all(servers)
        for server in servers:
            self._wait_until_deleted(server)
        return seconds

    def fault(self, server):
        server = self.api.get_server(server['id'])
        self.assertEqual('ERROR', server['status'])
        return server['fault']['message']


class TestFastBootImage(FastBootImageBase):

    def test_boot_50_in_one_request(self):
        self.start_compute('compute1')
        servers, boot_s = self.boot_image(self.image_id, 50)
        by_host = self.assert_fastboot(servers)
        self.assertEqual(['compute1'], sorted(by_host))
        self.assertEqual(50, len(self.engines['compute1'].verbs('create')))
        delete_s = self.delete_and_wait(servers)
        self.assert_cleaned(['compute1'])
        LOG.warning('fastboot image: 50 servers, one request: boot %.1f s, '
                    'delete %.1f s', boot_s, delete_s)
        print('TIMING fastboot image 50 servers 1 request boot %.2f s '
              'delete %.2f s' % (boot_s, delete_s))

    def test_boot_6_on_2_hosts(self):
        self.start_compute('compute1')
        self.start_compute('compute2')
        servers, _ = self.boot_image(self.image_id, 6)
        by_host = self.assert_fastboot(servers)
        self.assertEqual(['compute1', 'compute2'], sorted(by_host))
        self.delete_and_wait(servers)
        self.assert_cleaned(['compute1', 'compute2'])

    def test_cache_removed_before_origin_disconnected(self):
        self.start_compute('compute1')
        servers, _ = self.boot_image(self.image_id, 2)
        engine = self.engines['compute1']
        disconnects_seen = []
        remove_image = engine.remove_image

        def recording_remove_image(image):
            disconnects_seen.append(len(self.disconnects))
            return remove_image(image)
        engine.remove_image = recording_remove_image
        self.delete_and_wait(servers)
        # Once, by the last server, while the origin was still connected.
        self.assertEqual([0], disconnects_seen)
        self.assert_cleaned(['compute1'])

    def test_keep_idle_caches(self):
        self.flags(keep_idle_caches=True, group='fastboot')
        self.start_compute('compute1')
        servers, _ = self.boot_image(self.image_id, 2)
        self.delete_and_wait(servers)
        engine = self.engines['compute1']
        self.assertEqual([IMAGE], sorted(engine.images))
        self.assertEqual([], engine.verbs('remove_image'))
        self.assertEqual({}, self.attachments())
        # The origin is disconnected all the same.
        self.assertEqual(['compute1'], [h for h, _ in self.disconnects])
        # The next server finds the cache and re-opens it on its new
        # origin connection.
        (server,), _ = self.boot_image(self.image_id, 1)
        self.assertEqual([IMAGE], sorted(engine.images))
        self.assertEqual({'nova-' + server['id']}, set(engine.vms))
        self.assertIn(('reparent', IMAGE, self.origin),
                      engine.verbs('reparent'))

    def test_ordinary_image_is_fetched(self):
        # The control for assert_no_image_fetched: an image without the
        # property boots the ordinary way, through the image cache.
        self.start_compute('compute1')
        body = self._build_server(networks='none')
        server = self._wait_for_state_change(
            self.api.post_server({'server': body}), 'ACTIVE')
        self.assertTrue(self.fetch.called)
        self.assertEqual({}, self.engines['compute1'].vms)
        self.assertEqual({}, self.attachments())
        self._delete_server(server)

    def test_needs_a_fastboot_host(self):
        # The image requires the trait: a host without the cache group
        # never gets the server (it would boot the stub image).
        # compute1 loses the trait; the servers all go to compute2 (without
        # the trait the scheduler spreads them over both).
        self.start_compute('compute1')
        self.start_compute('compute2')
        rp_uuid = self._get_provider_uuid_by_host('compute1')
        traits = set(self._get_provider_traits(rp_uuid))
        self.assertIn('CUSTOM_FASTBOOT_CACHE_SNAPSHOT', traits)
        self._set_provider_traits(
            rp_uuid, sorted(traits - {'CUSTOM_FASTBOOT_CACHE_SNAPSHOT'}))
        servers, _ = self.boot_image(self.image_id, 3)
        self.assertEqual({'compute2'},
                         {s['OS-EXT-SRV-ATTR:host'] for s in servers})
        self.assertEqual([], self.engines['compute1'].verbs('create'))
        self.assert_fastboot(servers)

    def test_reboot_keeps_overlay(self):
        self.start_compute('compute1')
        (first, second), _ = self.boot_image(self.image_id, 2)
        engine = self.engines['compute1']
        disk = engine.vms['nova-' + first['id']]
        attachments = self.attachments()

        # Nova's reboot deletes the Cinder attachments it has no block
        # device mapping for; the driver makes the server a new one.
        # (Power on is a hard reboot in LibvirtDriver.)
        self._reboot_server(first, hard=True)
        self._reboot_server(first)
        # Same overlay, origin connected once, one attachment per server.
        self.assertIs(disk, engine.vms['nova-' + first['id']])
        after = self.attachments()
        self.assertEqual(2, len(after))
        self.assertEqual(
            {a['instance_uuid'] for a in attachments.values()},
            {a['instance_uuid'] for a in after.values()})
        self.assertEqual(2, len(engine.verbs('create')))
        self.assertEqual([], engine.verbs('destroy'))
        self.assertEqual([], self.disconnects)
        self.assertEqual(1, len(self.connects))
        self.assert_fastboot([first, second])

        self.delete_and_wait([first, second])
        self.assert_cleaned(['compute1'])

    def test_resize_refused(self):
        self.flags(allow_resize_to_same_host=True)
        self.start_compute('compute1')
        (server,), _ = self.boot_image(self.image_id, 1)
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
        self.assertEqual(1, len(self.attachments()))
        self.delete_and_wait([server])
        self.assert_cleaned(['compute1'])


class TestFastBootImageFaults(FastBootImageBase):
    """Bad input and failures: ERROR with a clear fault, nothing left."""

    def setUp(self):
        super().setUp()
        self.start_compute('compute1')

    def assert_nothing_left(self, volume_id=base.ORIGIN_VOLUME):
        self.assertEqual({}, self.attachments(volume_id))
        self.assertEqual({}, self.engines['compute1'].vms)
        self.assertEqual(len(self.connects), len(self.disconnects))

    def test_volume_not_cacheable(self):
        # No fastboot_cacheable metadata (and single-attach).
        image = self.make_fastboot_image(self.cinder.IMAGE_BACKED_VOL,
                                         name='plain')
        (server,), _ = self.boot_image(image, 1, expected='ERROR')
        message = self.fault(server)
        self.assertIn('origin volume %s cannot be shared: it has no '
                      'fastboot_cacheable=true metadata'
                      % self.cinder.IMAGE_BACKED_VOL, message)
        self.assert_nothing_left(self.cinder.IMAGE_BACKED_VOL)
        self.assertEqual([], self.connects)

    def test_writable_volume(self):
        # Cacheable metadata, but a writable single-attach volume.
        volume = self.cinder.IMAGE_BACKED_VOL
        self.volume_fields[volume] = {
            'volume_metadata': {'fastboot_cacheable': 'true'}}
        image = self.make_fastboot_image(volume, name='writable')
        servers, _ = self.boot_image(image, 2, expected='ERROR')
        for server in servers:
            self.assertIn('cannot be shared: it is not multiattach',
                          self.fault(server))
        self.assert_nothing_left(volume)
        self.assertEqual([], self.connects)

    def test_volume_of_another_project(self):
        self.volume_owners[base.ORIGIN_VOLUME] = 'another-project'
        (server,), _ = self.boot_image(self.image_id, 1, expected='ERROR')
        self.assertIn('origin volume %s was not found' % base.ORIGIN_VOLUME,
                      self.fault(server))
        self.assert_nothing_left()
        self.assertEqual([], self.connects)

    def test_property_not_a_uuid(self):
        image = self.make_fastboot_image('my-volume', name='bad')
        (server,), _ = self.boot_image(image, 1, expected='ERROR')
        self.assertIn("property fastboot_origin_volume must be the UUID of a "
                      "volume, not 'my-volume'", self.fault(server))
        self.assertEqual([], self.connects)

    def test_volume_vanishes_at_attach(self):
        self.useFixture(fixtures.MockPatch(
            'nova.volume.cinder.API.attachment_create',
            side_effect=nova_exception.VolumeNotFound(
                volume_id=base.ORIGIN_VOLUME), autospec=False))
        (server,), _ = self.boot_image(self.image_id, 1, expected='ERROR')
        self.assertIn('origin volume %s was not found' % base.ORIGIN_VOLUME,
                      self.fault(server))
        self.assert_nothing_left()
        self.assertEqual([], self.connects)

    def test_cache_group_failure(self):
        # One host and no retries: the build fails here, not elsewhere.
        self.flags(max_attempts=1, group='scheduler')
        self.useFixture(fixtures.MockPatchObject(
            base.HostEngine, 'create',
            side_effect=exception.DaemonError(reason='no room for cache')))
        (server,), _ = self.boot_image(self.image_id, 1, expected='ERROR')
        self.assertIn('qemu-storage-daemon: no room for cache',
                      self.fault(server))
        # The origin was connected, then released with the attachment.
        self.assertEqual(1, len(self.connects))
        self.assert_nothing_left()

    def test_count_beyond_quota(self):
        self.flags(driver='nova.quota.DbQuotaDriver', group='quota')
        self.flags(instances=10, group='quota')
        body = self._build_server(name='fbi', image_uuid=self.image_id,
                                  networks='none')
        body.update(min_count=11, max_count=11)
        resp = self.api.api_post('/servers', {'server': body},
                                 check_response_status=[403])
        self.assertIn('Quota exceeded for instances',
                      resp.body['forbidden']['message'])
        self.assertEqual([], self.api.get_servers())
        self.assertEqual({}, self.attachments())
        self.assertEqual([], self.engines['compute1'].verbs('create'))
