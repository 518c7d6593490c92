"""Unit tests of ImageOps: the fastboot-image origin over fakes."""

import os
import types

import fixtures
from nova import exception as nova_exception
from oslotest import base

from fastboot_nova import exception
from fastboot_nova.virt import cacheops
from fastboot_nova.virt import imageops
from fastboot_nova.virt import notifications
from fastboot_nova.virt import snapshotops
from tests.unit import fakes

VOLUME = '6e8a6c4c-3b53-4f6e-9a0b-0d5d1e0c9f11'
IMAGE = 'cinder-' + VOLUME
HOST = 'compute1'


class FakeVolumeAPI:
    """nova.volume.cinder.API: volumes and attachments in memory."""

    def __init__(self):
        self.volumes = {VOLUME: {
            'id': VOLUME, 'multiattach': True,
            'volume_metadata': {'fastboot_cacheable': 'true'}}}
        self.attachments = {}
        self.completed = []
        self.calls = []

    def get(self, context, volume_id):
        self.calls.append(('get', volume_id))
        if volume_id not in self.volumes:
            raise nova_exception.VolumeNotFound(volume_id=volume_id)
        return self.volumes[volume_id]

    def attachment_create(self, context, volume_id, instance_uuid,
                          connector=None):
        self.calls.append(('attachment_create', volume_id, instance_uuid))
        attachment_id = 'att-%d' % len(self.calls)
        self.attachments[attachment_id] = (volume_id, instance_uuid,
                                           connector)
        return {'id': attachment_id,
                'connection_info': self._info(volume_id, attachment_id)}

    @staticmethod
    def _info(volume_id, attachment_id):
        return {'driver_volume_type': 'fake',
                'data': {'volume_id': volume_id,
                         'attachment_id': attachment_id}}

    def attachment_complete(self, context, attachment_id):
        self.completed.append(attachment_id)

    def attachment_get(self, context, attachment_id):
        if attachment_id not in self.attachments:
            raise nova_exception.VolumeAttachmentNotFound(
                attachment_id=attachment_id)
        volume_id = self.attachments[attachment_id][0]
        return {'id': attachment_id,
                'connection_info': self._info(volume_id, attachment_id)}

    def attachment_delete(self, context, attachment_id):
        self.calls.append(('attachment_delete', attachment_id))
        if attachment_id not in self.attachments:
            raise nova_exception.VolumeAttachmentNotFound(
                attachment_id=attachment_id)
        del self.attachments[attachment_id]


class FakeInstance:

    def __init__(self, uuid, volume_id=VOLUME):
        self.uuid = uuid
        self.project_id = 'project'
        self.image_ref = 'image-1'
        self.system_metadata = {imageops.SM_ORIGIN: volume_id}
        self.metadata = {}
        self.saves = 0

    def save(self):
        self.saves += 1

    def obj_attr_is_set(self, name):
        return hasattr(self, name)


class TestImageOps(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.origin = os.path.join(
            self.useFixture(fixtures.TempDir()).path, 'origin.raw')
        with open(self.origin, 'wb') as f:
            f.truncate(1 << 20)
        self.engine = fakes.FakeEngine()
        conf = types.SimpleNamespace(fastboot=types.SimpleNamespace(
            use_cachegroup=True, use_cache_snapshot=True,
            keep_idle_caches=False, coordinator_url=None))
        self.cacheops = cacheops.CacheOps(conf, lambda conf: self.engine)
        self.snapshotops = snapshotops.SnapshotOps(self.cacheops, None)
        self.volume_api = FakeVolumeAPI()
        self.connects = []
        self.disconnects = []
        self.ops = imageops.ImageOps(
            self.cacheops, self.snapshotops, self.volume_api,
            connect=self._connect, disconnect=self._disconnect,
            connector=lambda instance: {'host': HOST}, host=HOST)

    def _connect(self, context, connection_info, instance):
        connection_info['data']['device_path'] = self.origin
        self.connects.append(instance.uuid)

    def _disconnect(self, context, connection_info, instance):
        self.disconnects.append((instance.uuid,
                                 connection_info['data']['device_path']))

    def test_attachment_retried_while_another_is_in_progress(self):
        sleeps = []
        self.useFixture(fixtures.MockPatchObject(imageops, '_sleep',
                                                 sleeps.append))
        real = self.volume_api.attachment_create
        # available/in-use: the other attachment ended before Cinder
        # re-read the status for its message.
        busy = ['attaching', 'reserved', 'available', 'in-use']

        def attachment_create(*args, **kwargs):
            if busy:
                raise nova_exception.InvalidInput(
                    reason='Invalid volume: Volume %s status must be '
                    'available or in-use or downloading to reserve, but '
                    'the current status is %s.' % (VOLUME, busy.pop(0)))
            return real(*args, **kwargs)

        self.volume_api.attachment_create = attachment_create
        self.ops.prepare('ctxt', FakeInstance('uuid-1'))
        self.assertEqual(4, len(sleeps))
        self.assertEqual(1, len(self.volume_api.attachments))

    def test_other_invalid_input_is_not_retried(self):
        sleeps = []
        self.useFixture(fixtures.MockPatchObject(imageops, '_sleep',
                                                 sleeps.append))

        def attachment_create(*args, **kwargs):
            raise nova_exception.InvalidInput(
                reason='Invalid volume: Volume %s status must be available '
                'or in-use or downloading to reserve, but the current '
                'status is error.' % VOLUME)

        self.volume_api.attachment_create = attachment_create
        self.assertRaises(nova_exception.InvalidInput, self.ops.prepare,
                          'ctxt', FakeInstance('uuid-1'))
        self.assertEqual([], sleeps)

    def test_timeline_events_name_the_batch_and_project(self):
        sent = []

        class Recorder:
            def emit(self, context, event_type, instance_uuid, volume_id,
                     **extra):
                sent.append((event_type, instance_uuid, extra))

        self.ops.emitter = Recorder()
        batch_server = FakeInstance('uuid-1')
        batch_server.metadata = {'fastboot_batch': 'b-1', 'other': 'x'}
        self.ops.prepare('ctxt', batch_server)
        self.ops.prepare('ctxt', FakeInstance('uuid-2'))
        self.assertEqual(
            [notifications.CACHE_ATTACH_START, notifications.CACHE_ATTACH_END,
             notifications.OVERLAY_CREATED] * 2, [e[0] for e in sent])
        for event_type, uuid, extra in sent:
            expected = {'project_id': 'project'}
            if uuid == 'uuid-1':
                expected['batch'] = 'b-1'
            extra.pop('path', None)
            self.assertEqual(expected, extra, event_type)

    def test_first_and_second_server(self):
        one, two = FakeInstance('uuid-1'), FakeInstance('uuid-2')
        path = self.ops.prepare('ctxt', one)
        self.assertEqual(self.engine.vms['nova-uuid-1'].path, path)
        self.ops.prepare('ctxt', two)
        # One attachment each, completed, with the host connector.
        self.assertEqual(
            {(VOLUME, 'uuid-1', (('host', HOST),)),
             (VOLUME, 'uuid-2', (('host', HOST),))},
            {(v, i, tuple(c.items()))
             for v, i, c in self.volume_api.attachments.values()})
        self.assertEqual(sorted(self.volume_api.attachments),
                         sorted(self.volume_api.completed))
        # Recorded where delete and reboot find it.
        attachment = one.system_metadata[imageops.SM_ATTACHMENT]
        self.assertIn(attachment, self.volume_api.attachments)
        self.assertEqual(VOLUME, one.system_metadata[imageops.SM_VOLUME])
        self.assertEqual(HOST, one.system_metadata[imageops.SM_HOST])
        self.assertEqual(1, one.saves)
        # The origin was connected once for the host.
        self.assertEqual(['uuid-1'], self.connects)
        self.assertEqual([('create', 'nova-uuid-1', IMAGE, self.origin),
                          ('create', 'nova-uuid-2', IMAGE, self.origin)],
                         [c for c in self.engine.calls
                          if c[0] == 'create'])

    def test_prepare_again_reuses_everything(self):
        one = FakeInstance('uuid-1')
        path = self.ops.prepare('ctxt', one)
        attachments = dict(self.volume_api.attachments)
        self.assertEqual(path, self.ops.prepare('ctxt', one))
        self.assertEqual(attachments, self.volume_api.attachments)
        self.assertEqual(1, len([c for c in self.engine.calls
                                 if c[0] == 'create']))
        self.assertEqual(['uuid-1'], self.connects)

    def test_prepare_after_restart_reconnects(self):
        one = FakeInstance('uuid-1')
        self.ops.prepare('ctxt', one)
        self.ops._connected.clear()  # a new nova-compute process
        self.ops.prepare('ctxt', one)
        self.assertEqual(['uuid-1', 'uuid-1'], self.connects)

    def test_attachment_deleted_by_nova_is_made_again(self):
        one = FakeInstance('uuid-1')
        self.ops.prepare('ctxt', one)
        old = one.system_metadata[imageops.SM_ATTACHMENT]
        self.volume_api.attachments.clear()  # _delete_dangling_bdms
        self.ops.prepare('ctxt', one)
        new = one.system_metadata[imageops.SM_ATTACHMENT]
        self.assertNotEqual(old, new)
        self.assertEqual([new], list(self.volume_api.attachments))

    def test_reconcile(self):
        ok, lost, gone, bare = (FakeInstance('uuid-%d' % i)
                                for i in range(1, 5))
        for server in (ok, lost, gone):
            self.ops.prepare('ctxt', server)
        elsewhere, bad = FakeInstance('uuid-5'), FakeInstance('uuid-6')
        self.ops.prepare('ctxt', elsewhere)
        self.ops.prepare('ctxt', bad)
        for server in (ok, lost, gone, bare, bad):
            server.host = HOST
        elsewhere.host = 'compute2'  # evacuated: not this host's
        kept = ok.system_metadata[imageops.SM_ATTACHMENT]
        del self.volume_api.attachments[
            lost.system_metadata.pop(imageops.SM_ATTACHMENT)]
        del self.volume_api.attachments[
            gone.system_metadata[imageops.SM_ATTACHMENT]]
        del self.volume_api.attachments[
            bad.system_metadata[imageops.SM_ATTACHMENT]]
        bad.system_metadata[imageops.SM_ORIGIN] = 'not-a-uuid'
        before = len(self.volume_api.attachments)

        fixed = self.ops.reconcile(
            'ctxt', [ok, lost, gone, bare, elsewhere, bad])

        self.assertEqual(['uuid-2', 'uuid-3'], fixed)
        self.assertEqual(kept, ok.system_metadata[imageops.SM_ATTACHMENT])
        for server in (lost, gone):
            self.assertIn(server.system_metadata[imageops.SM_ATTACHMENT],
                          self.volume_api.attachments)
        # No overlay (bare), another host's, a failure (bad, logged):
        # nothing attached for them; the overlays untouched.
        self.assertEqual(before + 2, len(self.volume_api.attachments))
        self.assertNotIn(imageops.SM_ATTACHMENT, bare.system_metadata)
        self.assertEqual(5, len(self.engine.vms))

    def _refused(self, instance):
        e = self.assertRaises(nova_exception.ImageUnacceptable,
                              self.ops.prepare, 'ctxt', instance)
        self.assertEqual({}, self.volume_api.attachments)
        self.assertEqual([], self.connects)
        self.assertEqual({}, self.engine.vms)
        self.assertNotIn(imageops.SM_ATTACHMENT, instance.system_metadata)
        return str(e)

    def test_not_multiattach(self):
        self.volume_api.volumes[VOLUME]['multiattach'] = False
        self.assertIn('cannot be shared: it is not multiattach',
                      self._refused(FakeInstance('uuid-1')))

    def test_not_marked(self):
        self.volume_api.volumes[VOLUME]['volume_metadata'] = {}
        self.assertIn('it has no fastboot_cacheable=true metadata',
                      self._refused(FakeInstance('uuid-1')))

    def test_encrypted(self):
        self.volume_api.volumes[VOLUME]['encrypted'] = True
        self.assertIn('it is encrypted',
                      self._refused(FakeInstance('uuid-1')))

    def test_not_found(self):
        del self.volume_api.volumes[VOLUME]
        self.assertIn('origin volume %s was not found (it must exist and be '
                      'visible to project project)' % VOLUME,
                      self._refused(FakeInstance('uuid-1')))

    def test_property_not_uuid(self):
        self.assertIn("property fastboot_origin_volume must be the UUID of "
                      "a volume, not 'vol; rm -rf'",
                      self._refused(FakeInstance('uuid-1', 'vol; rm -rf')))
        self.assertEqual([], self.volume_api.calls)

    def test_release_last_server_disconnects(self):
        one, two = FakeInstance('uuid-1'), FakeInstance('uuid-2')
        self.ops.prepare('ctxt', one)
        self.ops.prepare('ctxt', two)
        self.ops.release('ctxt', one)
        self.assertEqual(['nova-uuid-2'], list(self.engine.vms))
        self.assertEqual([], self.disconnects)
        self.assertEqual(1, len(self.volume_api.attachments))
        self.assertNotIn(imageops.SM_ATTACHMENT, one.system_metadata)

        self.ops.release('ctxt', two)
        self.assertEqual({}, self.engine.vms)
        self.assertEqual({}, self.volume_api.attachments)
        # Disconnected where the cache reads the origin.
        self.assertEqual([('uuid-2', self.origin)], self.disconnects)
        # The cache went first, while its origin was connected.
        self.assertEqual({}, self.engine.images)
        calls = [c[0] for c in self.engine.calls
                 if c[0] in ('destroy', 'remove_image')]
        self.assertEqual(['destroy', 'remove_image'], calls[-2:])

        # Idempotent.
        self.ops.release('ctxt', two)
        self.assertEqual(1, len(self.disconnects))

    def test_release_of_another_hosts_attachment(self):
        one = FakeInstance('uuid-1')
        self.ops.prepare('ctxt', one)
        one.system_metadata[imageops.SM_HOST] = 'compute2'
        self.ops.release('ctxt', one)
        # The overlay is gone; the attachment is not this host's.
        self.assertEqual({}, self.engine.vms)
        self.assertEqual(1, len(self.volume_api.attachments))
        self.assertEqual([], self.disconnects)

    def test_evacuated_server_replaces_the_attachment(self):
        one = FakeInstance('uuid-1')
        self.ops.prepare('ctxt', one)
        old = one.system_metadata[imageops.SM_ATTACHMENT]
        one.system_metadata[imageops.SM_HOST] = 'compute2'
        self.engine.vms.clear()
        self.ops.prepare('ctxt', one)
        self.assertNotIn(old, self.volume_api.attachments)
        self.assertEqual(HOST, one.system_metadata[imageops.SM_HOST])

    def test_engine_failure_then_release(self):
        one = FakeInstance('uuid-1')
        self.useFixture(fixtures.MockPatchObject(
            self.engine, 'create',
            side_effect=exception.DaemonError(reason='boom')))
        self.assertRaises(exception.DaemonError, self.ops.prepare, 'ctxt',
                          one)
        # The caller's cleanup (LibvirtDriver destroy -> _cleanup).
        self.ops.release('ctxt', one)
        self.assertEqual({}, self.volume_api.attachments)
        self.assertEqual([('uuid-1', self.origin)], self.disconnects)

    def test_release_without_attachment(self):
        one = FakeInstance('uuid-1')
        self.ops.release('ctxt', one)
        self.assertEqual([], self.disconnects)
        self.assertEqual([], self.volume_api.calls)

    def test_is_fastboot(self):
        self.assertTrue(self.ops.is_fastboot(FakeInstance('uuid-1')))
        plain = FakeInstance('uuid-2')
        plain.system_metadata = {}
        self.assertFalse(self.ops.is_fastboot(plain))


class TestMovedAway(base.BaseTestCase):

    def test_moved_away(self):
        ops = imageops.ImageOps(None, None, None, None, None, None, HOST)
        server = FakeInstance('uuid-1')
        for host, moved in ((HOST, False), (None, False),
                            ('compute2', True)):
            server.host = host
            self.assertEqual(moved, ops.moved_away(server), host)
