"""fastboot-notification-listener as a real process on a real RabbitMQ.

Needs FASTBOOT_RABBIT_URL (``rabbit://guest:guest@127.0.0.1:PORT/``), a
RabbitMQ started beforehand (README "Boot batches" has the commands); the
test is skipped, saying so, without it. FastBootDriver's emitter and a
Nova-shaped versioned notifier publish; the listener process writes the
timeline to the SQLite database the test reads.
"""

import os
import subprocess
import time
import uuid

import fixtures
from oslo_config import cfg
import oslo_messaging
from oslotest import base
from testtools import content

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import context
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import batches as batch_db
from fastboot_nova.coordinator.db import migration
from fastboot_nova.virt import notifications
from tests.functional.coordinator import test_processes


class TestListenerRabbit(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.url = os.environ.get('FASTBOOT_RABBIT_URL')
        if not self.url:
            self.skipTest('FASTBOOT_RABBIT_URL is not set: no RabbitMQ to '
                          'test the listener on')
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.conf = cfg.ConfigOpts()
        config.parse_args([], conf=self.conf, default_config_files=[])
        self.conf.set_override('state_path', self.workdir,
                               group='coordinator')
        self.db = db_api.Database(self.conf)
        self.addCleanup(self.db.dispose)
        migration.upgrade(self.db.get_engine())
        self.queries = batch_db.BatchQueries(self.db)
        self.ctx = context.admin_context()
        batch, _ = self.queries.create(
            self.ctx, 'p', 'u', 'k', 'k', {},
            {'name': 'b', 'source_type': 'snapshot',
             'source_id': str(uuid.uuid4()), 'count': 1,
             'flavor': 'f', 'priority': 10, 'trust_id': 't'})
        self.batch_id = batch.id
        self.server = str(uuid.uuid4())
        self.queries.ensure_slots(self.ctx, self.batch_id, 1)
        self.queries.update_server(self.ctx, self.batch_id, 0,
                                   server_id=self.server)
        topic = 'fb_test_%s' % uuid.uuid4().hex[:8]
        conf_file = os.path.join(self.workdir, 'listener.conf')
        with open(conf_file, 'w') as f:
            f.write('[DEFAULT]\ntransport_url = %s\ndebug = true\n'
                    '[coordinator]\nstate_path = %s\n'
                    '[batches]\nnotification_topics = %s\n' % (
                        self.url, self.workdir, topic))
        log = os.path.join(self.workdir, 'listener.log')
        with open(log, 'ab') as out:
            proc = subprocess.Popen(
                [test_processes.script('fastboot-notification-listener'),
                 '--config-file', conf_file], stdout=out,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.addCleanup(proc.wait, 30)
        self.addCleanup(proc.terminate)
        self.addOnException(lambda e: self.addDetail(
            'listener log', content.text_content(open(log).read()[-3000:])))
        # The publishers' side as nova-compute configures it: Nova's
        # control exchange is "nova" (not oslo.messaging's default
        # "openstack"), for its own notifications and FastBootDriver's.
        nova_conf = os.path.join(self.workdir, 'nova.conf')
        with open(nova_conf, 'w') as f:
            f.write('[DEFAULT]\ncontrol_exchange = nova\n')
        self.notify_conf = cfg.ConfigOpts()
        self.notify_conf(['--config-file', nova_conf], project='nova',
                         default_config_files=[])
        self.transport = oslo_messaging.get_notification_transport(
            self.notify_conf, url=self.url)
        self.assertEqual('nova', self.notify_conf.control_exchange)
        self.addCleanup(self.transport.cleanup)
        self.notify_conf.set_override('driver', ['messagingv2'],
                                      group='oslo_messaging_notifications')
        self.topic = topic
        self.proc = proc
        # Messages sent before the listener declared its pool's queue
        # would be dropped: wait for it.
        deadline = time.monotonic() + 120
        while 'listener started' not in open(log).read():
            self.assertIsNone(proc.poll(), 'listener exited')
            self.assertLess(time.monotonic(), deadline, 'listener slow')
            time.sleep(0.2)
        time.sleep(1)

    def test_phases_over_rabbitmq(self):
        nova = oslo_messaging.Notifier(self.transport, 'nova-compute:h1',
                                       driver='messagingv2',
                                       topics=[self.topic])
        emitter = notifications.Emitter(self.notify_conf, 'h1',
                                        transport=self.transport,
                                        topics=[self.topic])
        nova.info({}, 'instance.create.start',
                  {'nova_object.data': {'uuid': self.server, 'host': 'h1'}})
        emitter.emit(None, notifications.CACHE_ATTACH_END, self.server,
                     'vol-1', bytes=1024)
        nova.info({}, 'instance.create.end',
                  {'nova_object.data': {'uuid': self.server, 'host': 'h1'}})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.assertIsNone(self.proc.poll(), 'listener exited')
            phases = sorted(e.phase for e in self.queries.events(
                self.ctx, self.batch_id) if e.server_id)
            if len(phases) == 3:
                break
            time.sleep(0.2)
        self.assertEqual(['ACTIVE', 'cache_attached', 'scheduled'], phases)
