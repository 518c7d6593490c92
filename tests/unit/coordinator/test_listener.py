"""Notifications -> timeline, over oslo.messaging's in-process fake://
transport: FastBootDriver's emitter and Nova-shaped versioned
notifications go in, ``batch_events`` rows and the served timeline come
out. tests/functional/coordinator/test_listener_rabbit.py runs the listener
as a process on RabbitMQ."""

import time
from unittest import mock
import uuid

import oslo_messaging

from fastboot_nova.coordinator.batches import listener
from fastboot_nova.coordinator.batches import timeline
from fastboot_nova.virt import notifications
from tests.unit.coordinator import test_runner


class TestListener(test_runner.RunnerTestCase):

    def setUp(self):
        super().setUp()
        # One transport for both sides, on Nova's control exchange as
        # nova/rpc.py sets it (restored afterwards: a process default).
        oslo_messaging.set_transport_defaults(control_exchange='nova')
        self.addCleanup(oslo_messaging.set_transport_defaults,
                        control_exchange='openstack')
        self.transport = oslo_messaging.get_notification_transport(
            self.conf, url='fake:/')
        self.addCleanup(self.transport.cleanup)
        self.listener = listener.make_listener(self.conf, self.transport,
                                               self.db)
        self.listener.start()
        self.addCleanup(self.listener.wait)
        self.addCleanup(self.listener.stop)
        self.batch_id = self.batch(count=1)
        self.server = str(uuid.uuid4())
        self.queries.ensure_slots(self.ctx, self.batch_id, 1)
        self.queries.update_server(self.ctx, self.batch_id, 0,
                                   server_id=self.server, state='BUILDING')
        self.nova = oslo_messaging.Notifier(
            self.transport, publisher_id='nova-compute:h1',
            driver='messagingv2', topics=['versioned_notifications'])

    def nova_event(self, event_type, uuid_, error=False, **data):
        payload = {'nova_object.data': dict({'uuid': uuid_, 'host': 'h1'},
                                            **data)}
        send = self.nova.error if error else self.nova.info
        send({}, event_type, payload)

    def wait_phases(self, n):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            events = [e for e in self.queries.events(self.ctx, self.batch_id)
                      if e.server_id]
            if len(events) >= n:
                return events
            time.sleep(0.05)
        self.fail('only %d events' % len(events))

    def test_driver_and_nova_phases(self):
        self.conf.set_override('driver', ['messagingv2'],
                               group='oslo_messaging_notifications')
        emitter = notifications.Emitter(self.conf, 'h1',
                                        transport=self.transport)
        self.nova_event('instance.create.start', self.server)
        emitter.emit(None, notifications.CACHE_ATTACH_START, self.server,
                     'vol-1')
        emitter.emit(None, notifications.CACHE_ATTACH_END, self.server,
                     'vol-1', bytes=4096)
        emitter.emit(None, notifications.OVERLAY_CREATED, self.server,
                     'vol-1', path='/var/lib/x')
        # Another server's and another kind of notification: ignored.
        self.nova_event('instance.create.start', str(uuid.uuid4()))
        self.nova_event('instance.update', self.server)
        self.nova_event('instance.create.end', self.server)
        events = self.wait_phases(5)
        self.assertEqual(['scheduled', 'block_device', 'cache_attached',
                          'overlay_created', 'ACTIVE'],
                         sorted((e.phase for e in events),
                                key=timeline.PHASES.index))
        batch = self.queries.get(self.ctx, self.batch_id)
        view = timeline.build(batch,
                              self.queries.events(self.ctx, self.batch_id))
        (row,) = view['servers']
        self.assertEqual({'bytes': 4096, 'host': 'h1', 'volume_id': 'vol-1'},
                         row['details']['cache_attached'])
        self.assertIn('accepted', row['phases'])
        self.assertGreaterEqual(row['durations']['ACTIVE'], 0)
        time.sleep(0.3)  # the ignored ones had time to arrive
        self.assertEqual(5, len([e for e in self.queries.events(
            self.ctx, self.batch_id) if e.server_id]))

    def test_create_error(self):
        self.nova_event('instance.create.error', self.server, error=True)
        (event,) = self.wait_phases(1)
        self.assertEqual('ERROR', event.phase)

    def test_server_the_runner_has_not_recorded_yet(self):
        # instance.create.start can come before the runner lists the
        # servers Nova made: the server's metadata names the batch.
        early = str(uuid.uuid4())
        self.nova_event('instance.create.start', early,
                        tenant_id=test_runner.PROJECT,
                        metadata={'fastboot_batch': self.batch_id})
        (event,) = self.wait_phases(1)
        self.assertEqual(('scheduled', early), (event.phase, event.server_id))

    def test_driver_event_before_the_runner_recorded_the_server(self):
        # On a fast compute the cache and overlay can be done before the
        # runner lists Nova's servers: FastBootDriver's payload names the
        # batch and project, trusted only for a batch of that project.
        self.conf.set_override('driver', ['messagingv2'],
                               group='oslo_messaging_notifications')
        emitter = notifications.Emitter(self.conf, 'h1',
                                        transport=self.transport)
        early, stranger = str(uuid.uuid4()), str(uuid.uuid4())
        emitter.emit(None, notifications.CACHE_ATTACH_START, stranger,
                     'vol-1', project_id='another-project',
                     batch=self.batch_id)
        emitter.emit(None, notifications.OVERLAY_CREATED, early, 'vol-1',
                     path='/x', project_id=test_runner.PROJECT,
                     batch=self.batch_id)
        (event,) = self.wait_phases(1)
        self.assertEqual(('overlay_created', early),
                         (event.phase, event.server_id))
        time.sleep(0.3)
        self.assertEqual(1, len([e for e in self.queries.events(
            self.ctx, self.batch_id) if e.server_id]))

    def test_metadata_naming_another_projects_batch_is_ignored(self):
        # Metadata is the user's to write: a server of another project
        # cannot put events into this batch, nor can a made-up batch id.
        self.nova_event('instance.create.start', str(uuid.uuid4()),
                        tenant_id='another-project',
                        metadata={'fastboot_batch': self.batch_id})
        self.nova_event('instance.create.start', str(uuid.uuid4()),
                        tenant_id=test_runner.PROJECT,
                        metadata={'fastboot_batch': str(uuid.uuid4())})
        self.nova_event('instance.create.start', str(uuid.uuid4()),
                        tenant_id=test_runner.PROJECT,
                        metadata={'fastboot_batch': ['not', 'an', 'id']})
        # A recorded server's event after them, and time for all to land.
        self.nova_event('instance.create.end', self.server)
        self.wait_phases(1)
        time.sleep(0.3)
        events = [(e.phase, e.server_id)
                  for e in self.queries.events(self.ctx, self.batch_id)
                  if e.server_id]
        self.assertEqual([('ACTIVE', self.server)], events)


class TestListenerTargets(test_runner.RunnerTestCase):
    """The listener subscribes where Nova publishes."""

    def targets(self):
        with mock.patch.object(oslo_messaging,
                               'get_notification_listener') as get:
            listener.make_listener(self.conf, mock.sentinel.transport,
                                   self.db)
        return get.call_args[0][1]

    def test_nova_exchange_by_default(self):
        # Nova publishes on its control exchange "nova", not on
        # oslo.messaging's default "openstack": a listener bound there
        # never saw one of Nova's notifications (found on ministack).
        self.assertEqual([('nova', 'versioned_notifications')],
                         [(t.exchange, t.topic) for t in self.targets()])

    def test_exchange_and_topics_configurable(self):
        listener.register_opts(self.conf)
        self.conf.set_override('notification_exchange', 'compute',
                               group='batches')
        self.conf.set_override('notification_topics', ['a', 'b'],
                               group='batches')
        self.assertEqual([('compute', 'a'), ('compute', 'b')],
                         [(t.exchange, t.topic) for t in self.targets()])
