"""OpenStackCloud's fastboot image: what it copies from the origin.

The client objects are mocks (the real calls run in
tests/ministack/test_batch.py); this checks which properties go to Glance.
"""

from unittest import mock

from oslo_config import cfg
import testtools

from fastboot_nova.conf import batches as conf_batches
from fastboot_nova.coordinator.batches import openstack


class TestCreateImage(testtools.TestCase):

    def setUp(self):
        super().setUp()
        conf = cfg.ConfigOpts()
        conf.register_opts(conf_batches.batch_opts,
                           group=conf_batches.GROUP_NAME)
        conf([])
        with mock.patch.object(openstack, 'nova_client'), \
                mock.patch.object(openstack, 'cinder_client'), \
                mock.patch.object(openstack, 'glance_client'):
            self.cloud = openstack.OpenStackCloud(mock.Mock(), conf)
        self.cloud.glance.images.create.return_value = {'id': 'img-1'}

    def _create(self, image_metadata):
        volume = mock.Mock(volume_image_metadata=image_metadata)
        self.cloud.cinder.volumes.get.return_value = volume
        self.assertEqual('img-1', self.cloud.create_image('vol-1', 'fb'))
        self.cloud.cinder.volumes.get.assert_called_once_with('vol-1')
        # glanceclient streams the data: it must be a file, not bytes
        # (bytes failed on ministack: 'bytes' object has no attribute
        # 'read').
        image_id, data = self.cloud.glance.images.upload.call_args.args
        self.assertEqual('img-1', image_id)
        self.assertEqual(openstack.STUB_IMAGE, data.read())
        return self.cloud.glance.images.create.call_args.kwargs

    def test_boot_properties_of_a_bootable_snapshot_are_carried(self):
        kwargs = self._create({
            'kernel_id': 'k', 'ramdisk_id': 'r',
            'os_command_line': 'console=ttyS0', 'hw_disk_bus': 'virtio',
            # Glance's own or the source image's file: not carried.
            'image_id': 'src', 'image_name': 'guest', 'checksum': 'c',
            'size': '1', 'min_disk': '1', 'container_format': 'bare',
            'disk_format': 'raw', 'os_hash_value': 'h',
            'os_glance_importing_to_stores': '', 'os_hidden': 'True',
            'fastboot_origin_volume': 'other'})
        self.assertEqual({
            'name': 'fb', 'disk_format': 'raw', 'container_format': 'bare',
            'fastboot_origin_volume': 'vol-1',
            'trait:CUSTOM_FASTBOOT_CACHE_SNAPSHOT': 'required',
            'kernel_id': 'k', 'ramdisk_id': 'r',
            'os_command_line': 'console=ttyS0', 'hw_disk_bus': 'virtio'},
            kwargs)

    def test_volume_without_image_metadata(self):
        kwargs = self._create(None)
        self.assertEqual({
            'name': 'fb', 'disk_format': 'raw', 'container_format': 'bare',
            'fastboot_origin_volume': 'vol-1',
            'trait:CUSTOM_FASTBOOT_CACHE_SNAPSHOT': 'required'}, kwargs)

    def test_failed_upload_deletes_the_image(self):
        # Each runner pass retries: an image left queued per failed
        # upload piled up in Glance (24 on ministack).
        self.cloud.cinder.volumes.get.return_value = mock.Mock(
            volume_image_metadata=None)
        self.cloud.glance.images.upload.side_effect = RuntimeError('boom')
        self.assertRaises(RuntimeError, self.cloud.create_image, 'vol-1',
                          'fb')
        self.cloud.glance.images.delete.assert_called_once_with('img-1')


class TestCreateServers(TestCreateImage):
    """Against novaclient's real signature (autospec), not a free mock:
    ``return_reservation_id`` is the API's name, novaclient's is
    ``reservation_id`` (every batch on ministack failed with TypeError).
    """

    def test_one_request_for_the_bulk_with_a_reservation_id(self):
        from novaclient.v2 import servers as nova_servers
        manager = mock.create_autospec(nova_servers.ServerManager,
                                       instance=True)
        self.cloud.nova.servers = manager
        self.cloud.create_servers('farm', 'img-1', 'fl-1', 4, 'none',
                                  metadata={'fastboot_batch': 'b1'})
        kwargs = manager.create.call_args.kwargs
        self.assertEqual((4, 4, True, 'none', {'fastboot_batch': 'b1'}),
                         (kwargs['min_count'], kwargs['max_count'],
                          kwargs['reservation_id'], kwargs['nics'],
                          kwargs['meta']))
