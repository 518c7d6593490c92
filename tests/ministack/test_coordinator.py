"""The fastboot control plane of a ministack, as production runs it.

Two fastboot-coordinator replicas (uWSGI) on MariaDB and Redis behind
Keystone, the two FastBootDriver computes registered and heartbeating
through them, fastboot-runner and fastboot-notification-listener up, the
listener consuming Nova's versioned notifications from RabbitMQ, and the
``openstack fastboot`` plugin finding the service in the real catalog.
"""

import datetime
import os
import signal
import subprocess
import time

import requests

from ministack import layout as layout_mod
from ministack import proc
from ministack.services import coordinator
from ministack.services import rabbitmq
from tests.ministack import base

#: [coordinator] host_timeout of the ministack (the default).
HOST_TIMEOUT = 30


class TestCoordinator(base.MinistackTestCase):

    def token(self, user='admin'):
        return self.openstack('token', 'issue', user=user)['id']

    def get(self, replica, path, token, status=200):
        resp = requests.get(self.layout.url(replica, '/v1' + path),
                            headers={'X-Auth-Token': token}, timeout=60)
        self.assertEqual(status, resp.status_code, resp.text[:500])
        return resp.json()

    def hosts(self, replica, token):
        return {h['name']: h for h in
                self.get(replica, '/hosts', token)['hosts']}

    def batch_ids(self, replica, token):
        return sorted(b['id'] for b in
                      self.get(replica, '/batches', token)['batches'])

    def test_both_replicas_answer_with_keystone_tokens(self):
        admin, demo = self.token('admin'), self.token('demo')
        # Other tests' batches may be listed: both replicas list the same.
        demo_batches = self.batch_ids(coordinator.REPLICAS[0], demo)
        for replica in coordinator.REPLICAS:
            resp = requests.get(self.layout.url(replica, '/v1/hosts'),
                                timeout=60)
            self.assertEqual(401, resp.status_code, replica)
            resp = requests.get(self.layout.url(replica, '/v1/hosts'),
                                headers={'X-Auth-Token': 'not-a-token'},
                                timeout=60)
            self.assertEqual(401, resp.status_code, replica)
            self.assertEqual(demo_batches, self.batch_ids(replica, demo))
            self.assertEqual(sorted(layout_mod.COMPUTES),
                             sorted(self.hosts(replica, admin)))

    def test_computes_registered_alive_with_their_exports(self):
        admin = self.token()
        one, two = (self.hosts(r, admin) for r in coordinator.REPLICAS)
        for host in layout_mod.COMPUTES:
            self.assertTrue(one[host]['alive'], one[host])
            self.assertEqual('127.0.0.1', one[host]['address'])
            self.assertEqual(one[host]['address'], two[host]['address'])

    def test_batch_list_through_the_catalog(self):
        catalog = self.openstack('catalog', 'show', 'fastboot')
        urls = {e['interface']: e['url'] for e in catalog['endpoints']}
        self.assertEqual(self.layout.url('coordinator'), urls['public'])
        for user in ('demo', 'admin'):
            listed = self.openstack('fastboot', 'batch', 'list', user=user)
            self.assertEqual(
                self.batch_ids(coordinator.REPLICAS[0], self.token(user)),
                sorted(b['id'] for b in listed), user)

    @base.full_only('tox -e functional-redis or functional-services '
                    '(test_redis: two '
                    'fastboot-coordinator processes, one killed, a host '
                    'failing over)')
    def test_kill_one_replica_hosts_stay_registered_via_the_other(self):
        admin = self.token()
        victim, survivor = coordinator.REPLICAS
        name = 'fastboot-' + victim
        pid = proc.running(self.layout, name)
        self.assertTrue(pid, '%s is not running' % name)
        self.addCleanup(self._restart, victim)
        killed_at = datetime.datetime.utcnow()
        # A crash, not a stop: the uWSGI master and its workers at once.
        os.killpg(pid, signal.SIGKILL)
        self.wait_for('%s to die' % name,
                      lambda: not proc.running(self.layout, name), 60)
        self.assertRaises(requests.ConnectionError, requests.get,
                          self.layout.url(victim, '/'), timeout=10)
        # Past the host timeout: a host that had only the dead replica
        # would now be dead. Both heartbeat through the survivor.
        time.sleep(HOST_TIMEOUT + 5)

        def heartbeats_after_kill():
            hosts = self.hosts(survivor, admin)
            return all(
                hosts[h]['alive'] and datetime.datetime.fromisoformat(
                    hosts[h]['heartbeat_at'].rstrip('Z')) > killed_at
                for h in layout_mod.COMPUTES)
        self.wait_for('heartbeats through %s' % survivor,
                      heartbeats_after_kill, 120)
        for host in layout_mod.COMPUTES:
            log = proc.log_tail(self.layout, 'nova-compute-' + host, 400)
            self.assertIn('now using replica %s' % self.layout.url(
                survivor, '/v1'), log)

    def _restart(self, replica):
        coordinator.start_replica(self.stack, replica)
        proc.wait(self.layout, 'fastboot-' + replica,
                  proc.http_ok(self.layout.url(replica, '/')), timeout=180)

    def test_runner_and_listener_up_listener_consumes_from_rabbitmq(self):
        for name in ('fastboot-runner', 'fastboot-notification-listener'):
            self.assertTrue(proc.running(self.layout, name), name)
            self.assertNotIn('Traceback', proc.log_tail(self.layout, name,
                                                        200))
        queues = self.rabbit_queues()
        # The listener consumes in its own pool (a queue of its own bound
        # to Nova's versioned topic), so it never steals a message from
        # another consumer; its queue is consumed and drained.
        self.assertIn('fastboot-batches', queues)
        self.assertGreaterEqual(queues['fastboot-batches'][1], 1, queues)
        self.wait_for('the listener to drain its queue', lambda: (
            self.rabbit_queues()['fastboot-batches'][0] == 0), 120)
        # Bound where Nova publishes: its exchange "nova".
        self.assertIn(('nova', 'versioned_notifications.info'),
                      self.rabbit_bindings('fastboot-batches'))

    def test_nova_versioned_notifications_reach_the_listener(self):
        # With the listener stopped its queue keeps what Nova sends; a
        # service disable/enable makes nova-api send service.update
        # (versioned); the listener, started again, consumes them.
        name = 'fastboot-notification-listener'
        proc.stop(self.layout, name)
        self.addCleanup(coordinator.up_workers, self.stack)
        before = self.rabbit_queues()['fastboot-batches'][0]
        for flag in ('--disable', '--enable'):
            self.openstack('compute', 'service', 'set', flag, 'ms-c1',
                           'nova-compute', user='admin', parse=False)
        self.wait_for('service.update in the listener\'s queue', lambda: (
            self.rabbit_queues()['fastboot-batches'][0] >= before + 2), 120)
        coordinator.up_workers(self.stack)
        self.wait_for('the listener to consume them', lambda: (
            self.rabbit_queues()['fastboot-batches'][0] == 0), 180)
        self.assertNotIn('Traceback', proc.log_tail(self.layout, name, 200))

    def rabbitmqctl(self, *args):
        env = dict(os.environ)
        env.update(rabbitmq._env(self.stack))
        return subprocess.run(
            # Not /usr/sbin/rabbitmqctl: its wrapper resets HOME, and with
            # it the Erlang cookie of this node.
            ['/usr/lib/rabbitmq/bin/rabbitmqctl', '-n',
             env['RABBITMQ_NODENAME'], '-q', *args],
            capture_output=True, text=True, env=env, timeout=120,
            check=True).stdout

    def rabbit_bindings(self, queue):
        """{(exchange, routing key)} binding ``queue``."""
        out = set()
        for line in self.rabbitmqctl('list_bindings', 'source_name',
                                     'destination_name',
                                     'routing_key').splitlines():
            parts = line.split('\t')
            if len(parts) == 3 and parts[1] == queue:
                out.add((parts[0], parts[2]))
        return out

    def rabbit_queues(self):
        """{queue: (messages, consumers)} from rabbitmqctl."""
        queues = {}
        for line in self.rabbitmqctl('list_queues', 'name', 'messages',
                                     'consumers').splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                queues[parts[0]] = (int(parts[1]), int(parts[2]))
        return queues
