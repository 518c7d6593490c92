"""Life cycle of fastboot-image servers: stop/start, rebuild, no valid host.

What an operator expects:

* stop and start keep the server's root disk: the same overlay (its data),
  the same Cinder attachment, the origin connected all along;
* rebuild gives a fresh root disk from the origin, as rebuilding any image
  server does: the old overlay is destroyed and a new one made, with one
  attachment for the server afterwards;
* rebuild onto an ordinary image takes the server out of fastboot: overlay
  destroyed, attachment deleted, origin disconnected by the host's last
  fastboot server;
* a request no host can take ends in ERROR with nothing made anywhere;
* evacuate rebuilds the server on another host as a spawn does; the
  source host, back up, destroys its overlay;
* a restarted nova-compute gives a server with an overlay but no
  attachment a new one.
"""

from nova import context as nova_context
from nova import objects
from oslo_utils.fixture import uuidsentinel as uuids

from tests.functional_nova import base
from tests.functional_nova import test_fastboot_image as fbi

#: The glance fixture's ordinary image (ServersTestBase's default).
ORDINARY_IMAGE = '155d900f-4e14-4e4c-a73d-069cbf4541e6'


class TestFastBootImageLifecycle(fbi.FastBootImageBase):

    def setUp(self):
        super().setUp()
        self.start_compute('compute1')
        self.engine = self.engines['compute1']

    def sysmeta(self, server):
        ctxt = nova_context.get_admin_context()
        cell = objects.InstanceMapping.get_by_instance_uuid(
            ctxt, server['id']).cell_mapping
        with nova_context.target_cell(ctxt, cell) as cctxt:
            instance = objects.Instance.get_by_uuid(
                cctxt, server['id'], expected_attrs=['system_metadata'])
        return instance.system_metadata

    def drop_sysmeta(self, server, key):
        ctxt = nova_context.get_admin_context()
        cell = objects.InstanceMapping.get_by_instance_uuid(
            ctxt, server['id']).cell_mapping
        with nova_context.target_cell(ctxt, cell) as cctxt:
            instance = objects.Instance.get_by_uuid(
                cctxt, server['id'], expected_attrs=['system_metadata'])
            del instance.system_metadata[key]
            instance.save()

    def attachments_of(self, server):
        return {a['id'] for a in self.attachments().values()
                if a['instance_uuid'] == server['id']}

    def overlay(self, server):
        return self.engine.vms.get('nova-' + server['id'])

    def test_stop_start_keeps_disk_and_attachment(self):
        (server,), _ = self.boot_image(self.image_id, 1)
        # The guest's writes live in the overlay: keeping the very disk
        # (never destroyed, never re-created) keeps them.
        disk = self.overlay(server)
        (attachment,) = self.attachments_of(server)
        self.assertEqual(attachment,
                         self.sysmeta(server)['fastboot_attachment_id'])

        server = self._stop_server(server)
        # The domain is gone, the root disk and the attachment are not.
        self.assertIs(disk, self.overlay(server))
        self.assertEqual({attachment}, self.attachments_of(server))
        self.assertEqual([], self.disconnects)

        server = self._start_server(server)
        self.assertIs(disk, self.overlay(server))
        self.assertEqual({attachment}, self.attachments_of(server))
        self.assertEqual(attachment,
                         self.sysmeta(server)['fastboot_attachment_id'])
        self.assertEqual(1, len(self.engine.verbs('create')))
        self.assertEqual([], self.engine.verbs('destroy'))
        self.assertEqual([], self.disconnects)
        self.assertEqual(1, len(self.connects))
        self.assert_fastboot([server])

        self.delete_and_wait([server])
        self.assert_cleaned(['compute1'])

    def test_rebuild_same_image_gives_a_fresh_overlay(self):
        (first, second), _ = self.boot_image(self.image_id, 2)
        old = self.overlay(first)
        (old_attachment,) = self.attachments_of(first)

        first = self._rebuild_server(first, self.image_id)
        # A fresh root disk from the origin: the old overlay destroyed
        # (its writes gone), a new one made; the other server untouched.
        new = self.overlay(first)
        self.assertIsNot(old, new)
        self.assertEqual([('destroy', 'nova-' + first['id'])],
                         self.engine.verbs('destroy'))
        self.assertEqual(3, len(self.engine.verbs('create')))
        # One attachment for the server, not the old one; none leaked.
        (attachment,) = self.attachments_of(first)
        self.assertNotEqual(old_attachment, attachment)
        self.assertEqual(attachment,
                         self.sysmeta(first)['fastboot_attachment_id'])
        # second kept the origin connected.
        self.assertEqual([], self.disconnects)
        self.assert_fastboot([first, second])

        self.delete_and_wait([first, second])
        self.assert_cleaned(['compute1'])

    def test_rebuild_last_server_reconnects(self):
        # The host's only fastboot server: the rebuild releases the
        # origin and connects it again.
        (server,), _ = self.boot_image(self.image_id, 1)
        server = self._rebuild_server(server, self.image_id)
        self.assertEqual(1, len(self.attachments_of(server)))
        self.assertEqual(1, len(self.disconnects))
        self.assertEqual(2, len(self.connects))
        self.assertIsNotNone(self.overlay(server))
        self.delete_and_wait([server])
        self.assertEqual({}, self.engine.vms)
        self.assertEqual({}, self.attachments())
        self.assertEqual(2, len(self.disconnects))

    def test_rebuild_onto_ordinary_image_leaves_fastboot(self):
        (first, second), _ = self.boot_image(self.image_id, 2)
        self.assertFalse(self.fetch.called)

        first = self._rebuild_server(first, ORDINARY_IMAGE)
        self.assertEqual(ORDINARY_IMAGE, first['image']['id'])
        # No overlay, no attachment, no fastboot record left.
        self.assertIsNone(self.overlay(first))
        self.assertEqual(set(), self.attachments_of(first))
        sysmeta = self.sysmeta(first)
        for key in ('fastboot_attachment_id', 'fastboot_volume_id',
                    'fastboot_host', 'image_fastboot_origin_volume'):
            self.assertNotIn(key, sysmeta)
        # An ordinary root disk, fetched through the image cache.
        self.assertTrue(self.fetch.called)
        (disk,) = self.guest_disks(first)
        self.assertNotIn('/fake/', disk.find('source').get('file'))
        # second still uses the origin: connected once, not disconnected.
        self.assertEqual([], self.disconnects)
        self.assertEqual({'nova-' + second['id']}, set(self.engine.vms))
        self.assertEqual({second['id']},
                         {a['instance_uuid']
                          for a in self.attachments().values()})

        # Last fastboot server gone: the origin is disconnected.
        self.delete_and_wait([second])
        self.assertEqual(1, len(self.disconnects))
        self.assertEqual({}, self.attachments())
        self.delete_and_wait([first])
        self.assertEqual(1, len(self.disconnects))

    def test_no_valid_host(self):
        self.start_compute('compute2')
        for service in self.api.get_services(binary='nova-compute'):
            self.api.put_service(service['id'], {'status': 'disabled'})
        servers, _ = self.boot_image(self.image_id, 3, expected='ERROR')
        for server in servers:
            self.assertIn('No valid host', self.fault(server))
            self.assertIsNone(server['OS-EXT-SRV-ATTR:host'])
        # Nothing made on any host.
        for host in ('compute1', 'compute2'):
            engine = self.engines.get(host)
            if engine is not None:
                self.assertEqual([], engine.verbs('create'))
                self.assertEqual({}, engine.vms)
        self.assertEqual({}, self.attachments())
        self.assertEqual([], self.connects)
        self.assertEqual({}, self.cinder.volumes)
        for server in servers:
            self._delete_server(server)

    def test_evacuate(self):
        self.start_compute('compute2')
        (first, second), _ = self.boot_image(self.image_id, 2,
                                             host='compute1')
        (old_attachment,) = self.attachments_of(first)

        service = self.api.get_services(binary='nova-compute',
                                        host='compute1')[0]
        self.computes['compute1'].stop()
        self.api.put_service(service['id'], {'forced_down': True})
        # Nova leaves an evacuated server SHUTOFF (microversion 2.95).
        first = self._evacuate_server(first, expected_host='compute2')

        # On compute2: the origin connected, a new overlay, a new
        # attachment; compute1's attachment of the server deleted.
        engine2 = self.engines['compute2']
        self.assertEqual({'nova-' + first['id']}, set(engine2.vms))
        (attachment,) = self.attachments_of(first)
        self.assertNotEqual(old_attachment, attachment)
        self.assertEqual('compute2', self.sysmeta(first)['fastboot_host'])
        # (The connect sees instance.host still compute1: Nova moves it
        # after the spawn.)
        self.assertEqual(2, len(self.connects))
        disk = engine2.vms['nova-' + first['id']]
        first = self._start_server(first)
        self.assertIs(disk, engine2.vms['nova-' + first['id']])
        (guest_disk,) = self.guest_disks(first)
        self.assertEqual(disk.path, guest_disk.find('source').get('file'))

        # compute1 back: the evacuated server's overlay goes; second's
        # stays, and so does the origin it reads.
        self.restart_compute('compute1')
        self.api.put_service(service['id'], {'forced_down': False})
        self.assertEqual({'nova-' + second['id']}, set(self.engine.vms))
        self.assertEqual([], self.disconnects)
        self.assertEqual({first['id'], second['id']},
                         {a['instance_uuid']
                          for a in self.attachments().values()})

        self.delete_and_wait([first, second])
        self.assert_cleaned(['compute1', 'compute2'])

    def test_restart_reattaches(self):
        (first, second, third), _ = self.boot_image(self.image_id, 3)
        # first: its Cinder attachment gone (a reboot that stopped after
        # Nova deleted it); second: the record of it lost as well.
        (lost,) = self.attachments_of(first)
        self.cinder.fake_attachment_delete(None, lost)
        (dropped,) = self.attachments_of(second)
        self.cinder.fake_attachment_delete(None, dropped)
        self.drop_sysmeta(second, 'fastboot_attachment_id')
        (kept,) = self.attachments_of(third)
        # An attachment of a deleted server is Nova's business, not ours.
        stray = self.cinder.create_vol_attachment(base.ORIGIN_VOLUME,
                                                  uuids.deleted_server)

        self.restart_compute('compute1')

        for server in (first, second, third):
            (attachment,) = self.attachments_of(server)
            self.assertEqual(attachment,
                             self.sysmeta(server)['fastboot_attachment_id'])
            self.assertIsNotNone(self.attachments()[attachment]['connector'])
        self.assertEqual({kept}, self.attachments_of(third))
        self.assertNotIn(lost, self.attachments())
        self.assertIn(stray['id'], self.attachments())
        # The overlays were left alone.
        self.assertEqual(3, len(self.engine.verbs('create')))
        self.assertEqual([], self.engine.verbs('destroy'))

        self.delete_and_wait([first, second, third])
        self.assertEqual({stray['id']}, set(self.attachments()))
        self.assertEqual({}, self.engine.vms)
