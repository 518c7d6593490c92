"""Two real ``fastboot-coordinator`` processes on one database and tooz.

What issue 3 promises of replicas, checked with the real pieces: the
console script on real sockets, the host-side CoordinatorClient, the tooz
file driver in a directory both replicas share, and a database (the SQLite
file here; test_mysql and test_postgresql rerun the class on a server).
One replica is SIGKILLed mid-traffic: the other must answer every host,
registration and tree intact, and the killed one, restarted, must see the
same state.
"""

import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import fixtures
from oslotest import base
import requests
from testtools import content
from tooz import coordination

from fastboot_nova.coordinator import service
from fastboot_nova.hierarchy import client as client_mod

SECRET = 'replica-test-secret'
FANOUT = 2
# Generous: the machine is shared and TCG guests may load it.
START_TIMEOUT = 120
REQUEST_TIMEOUT = 60


def script(name):
    path = os.path.join(os.path.dirname(sys.executable), name)
    if not os.path.exists(path):
        raise AssertionError('%s is not installed beside %s; run the tests '
                             'through tox' % (name, sys.executable))
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class Replica:
    """One ``fastboot-coordinator`` process and its configuration file."""

    def __init__(self, name, workdir, options):
        self.name = name
        self.port = free_port()
        self.conf_file = os.path.join(workdir, '%s.conf' % name)
        self.log_file = os.path.join(workdir, '%s.log' % name)
        options = dict(options)
        options['coordinator'] = dict(options['coordinator'],
                                      bind_host='127.0.0.1',
                                      bind_port=self.port)
        with open(self.conf_file, 'w') as f:
            for group, values in options.items():
                f.write('[%s]\n' % group)
                for key, value in values.items():
                    f.write('%s = %s\n' % (key, value))
        self.proc = None

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def db_sync(self):
        proc = subprocess.run(
            [script('fastboot-coordinator-manage'), '--config-file',
             self.conf_file, 'db', 'sync'], capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=120, check=False)
        if proc.returncode:
            raise AssertionError('db sync failed: %s' % proc.stderr)

    def start(self):
        with open(self.log_file, 'ab') as log:
            self.proc = subprocess.Popen(
                [script('fastboot-coordinator'), '--config-file',
                 self.conf_file],
                stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('%s exited with %d: %s' % (
                    self.name, self.proc.returncode, self.log_tail()))
            try:
                if requests.get(self.url + '/', timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError('%s did not answer in %d s: %s' % (
            self.name, START_TIMEOUT, self.log_tail()))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self):
        try:
            with open(self.log_file, errors='replace') as f:
                return f.read()[-3000:]
        except FileNotFoundError:
            return ''


class TestReplicaProcesses(base.BaseTestCase):

    def database_connection(self):
        """[database] connection; None: SQLite under the shared state."""
        return None

    def tooz_backend_url(self):
        """[coordinator] backend_url: tooz's file driver by default."""
        return 'file://%s' % os.path.join(self.state_path, 'tooz')

    def setUp(self):
        super().setUp()
        self.workdir = self.useFixture(fixtures.TempDir()).path
        self.state_path = os.path.join(self.workdir, 'shared')
        os.makedirs(self.state_path)
        self.tooz_url = self.tooz_backend_url()
        options = {
            'DEFAULT': {'debug': 'true'},
            'coordinator': {
                'state_path': self.state_path,
                'backend_url': self.tooz_url,
                'auth_strategy': 'shared_secret',
                'shared_secret': SECRET,
                'fanout': FANOUT,
                # Liveness is not under test: no host may expire mid-test.
                'host_timeout': 3600,
                'lock_timeout': 120,
            },
        }
        if self.database_connection():
            options['database'] = {'connection': self.database_connection()}
        self.replicas = [Replica(name, self.workdir, options)
                         for name in ('replica-a', 'replica-b')]
        for replica in self.replicas:
            self.addCleanup(replica.stop)
            self.addOnException(self._attach_log(replica))
        self.replicas[0].db_sync()
        for replica in self.replicas:
            replica.start()
        self.tokens = {}
        self.hosts = {}

    def _attach_log(self, replica):
        def attach(exc_info):
            self.addDetail(replica.name, content.text_content(
                replica.log_tail()))
        return attach

    # -- helpers -----------------------------------------------------------

    def client(self, replica, host):
        return client_mod.CoordinatorClient(
            replica.url + '/v1', host, secret=SECRET,
            token=self.tokens.get(host), timeout=REQUEST_TIMEOUT)

    def register(self, names):
        for i, host in enumerate(names):
            address = '192.0.2.%d' % (i + 1)
            domain = 'dc1/rack%d' % (i % 3)
            data = self.client(self.replicas[i % 2], host).register(
                address, domain)
            self.tokens[host] = data['token']
            self.hosts[host] = (address, domain)

    def export_url(self, host, volume):
        return 'nbd://%s:10809/%s' % (self.hosts[host][0], volume)

    def get(self, replica, path):
        resp = requests.get(replica.url + '/v1' + path, timeout=30,
                            headers={client_mod.SECRET_HEADER: SECRET})
        self.assertEqual(200, resp.status_code, resp.text)
        return resp.json()

    def assertValidTree(self, tree, hosts):
        parent = {h['host']: h['parent'] for h in tree['hosts']}
        self.assertEqual(sorted(hosts), sorted(parent))
        self.assertTrue(all(h['alive'] for h in tree['hosts']), tree)
        for host in parent:
            seen, node = [], host
            while node is not None:
                self.assertNotIn(node, seen, 'cycle: %s' % seen)
                self.assertIn(node, parent, 'parent is no member')
                seen.append(node)
                node = parent[node]
        counts = collections.Counter(parent.values())
        self.assertLessEqual(max(counts.values()), FANOUT, counts)
        self.assertEqual(sorted(h for h, p in parent.items() if p is None),
                         sorted(tree['origin_children']))
        for h in tree['hosts']:
            self.assertEqual(
                sorted(c for c, p in parent.items() if p == h['host']),
                sorted(h['children']))
            self.assertLessEqual(h['depth'], tree['depth_bound'])

    def assertSameState(self, one, two, volume, hosts):
        """Both replicas give every host the same registration and tree."""
        self.assertEqual(self.get(one, '/hosts'), self.get(two, '/hosts'))
        tree = self.get(one, '/volumes/%s/tree' % volume)
        self.assertEqual(tree, self.get(two, '/volumes/%s/tree' % volume))
        self.assertValidTree(tree, hosts)
        for host in hosts:
            a = self.client(one, host).parents(volume)
            self.assertEqual(a, self.client(two, host).parents(volume))
            stored = next(h for h in tree['hosts'] if h['host'] == host)
            self.assertEqual(stored['parent'], a.primary.host)
        return tree

    # -- tests ---------------------------------------------------------------

    def test_kill_one_replica_mid_traffic_then_restart_it(self):
        one, two = self.replicas
        names = ['h%02d' % i for i in range(10)]
        self.register(names)
        for i, host in enumerate(names):
            self.client(self.replicas[i % 2], host).report_cache(
                'vol1', self.export_url(host, 'vol1'))

        errors = {one.name: [], two.name: []}
        done = collections.Counter()
        progress = threading.Condition()
        killed = threading.Event()

        def traffic(i, host):
            # Until a few rounds after the kill, alternating replicas: the
            # kill lands mid-traffic and later rounds find one dead.
            after_kill = 0
            for r in range(1000):
                replica = self.replicas[(i + r) % 2]
                c = self.client(replica, host)
                try:
                    c.heartbeat()
                    c.report_cache('vol1', self.export_url(host, 'vol1'))
                    c.parents('vol1')
                except client_mod.CoordinatorError as e:
                    errors[replica.name].append((host, r, e.msg))
                with progress:
                    done[host] += 1
                    progress.notify_all()
                if killed.is_set():
                    after_kill += 1
                    if after_kill >= 4:
                        return
        threads = [threading.Thread(target=traffic, args=(i, h))
                   for i, h in enumerate(names)]
        for t in threads:
            t.start()
        with progress:
            self.assertTrue(progress.wait_for(
                lambda: sum(done.values()) >= len(names), 120))
        one.kill()
        killed.set()
        for t in threads:
            t.join(300)
        self.assertFalse(any(t.is_alive() for t in threads))
        # The survivor answered everything; the dead one refused the
        # rounds sent to it after the kill.
        self.assertEqual([], errors[two.name])
        self.assertNotEqual([], errors[one.name])

        # Every host, through the survivor: registration intact, its
        # token valid, a parent in a valid tree.
        listed = {h['name']: h for h in self.get(two, '/hosts')['hosts']}
        self.assertEqual(sorted(names), sorted(listed))
        for host in names:
            self.assertEqual(self.hosts[host],
                             (listed[host]['address'],
                              listed[host]['failure_domain']))
            self.client(two, host).heartbeat()
            self.client(two, host).parents('vol1')
        # A host given both replicas' URLs, the dead one first (as
        # [fastboot] coordinator_url lists them): it fails over and stays
        # registered, with the token the dead replica may have issued.
        both = client_mod.CoordinatorClient(
            [one.url + '/v1', two.url + '/v1'], 'h00', secret=SECRET,
            token=self.tokens['h00'], timeout=REQUEST_TIMEOUT)
        both.heartbeat()
        both.report_cache('vol1', self.export_url('h00', 'vol1'))
        self.assertEqual(two.url + '/v1', both.url)
        tree = self.get(two, '/volumes/vol1/tree')
        self.assertValidTree(tree, names)
        # A replica's death costs no more than its own requests: the
        # survivor did not reshape a tree that had no reason to change.
        self.assertEqual(tree, self.get(two, '/volumes/vol1/tree'))

        one.start()
        self.assertEqual(tree, self.assertSameState(one, two, 'vol1', names))

    def test_concurrent_requests_on_both_replicas_make_one_tree(self):
        names = ['h%02d' % i for i in range(12)]
        self.register(names)
        errors = []
        start = threading.Barrier(len(names))

        def join(i, host):
            # Every host joins vol2 and asks for its parents at once,
            # half through each replica: each request rebuilds the tree
            # under the volume's tooz lock, taken by two processes.
            start.wait(60)
            try:
                for r in range(3):
                    c = self.client(self.replicas[(i + r) % 2], host)
                    c.report_cache('vol2', self.export_url(host, 'vol2'))
                    c.parents('vol2')
            except client_mod.CoordinatorError as e:
                errors.append((host, e.msg))
        threads = [threading.Thread(target=join, args=(i, h))
                   for i, h in enumerate(names)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        self.assertEqual([], errors)
        self.assertSameState(*self.replicas, 'vol2', names)
        self._check_lock_is_shared('vol2')

    def _check_lock_is_shared(self, volume):
        # Hold the volume's lock from this process, through the same tooz
        # backend: a report through either replica waits for it. (Part of
        # the test above, to start the replicas once.)
        holder = coordination.get_coordinator(self.tooz_url, b'test-holder')
        holder.start()
        self.addCleanup(holder.stop)
        lock = holder.get_lock(service.lock_name(volume).encode())
        for replica in self.replicas:
            self.assertTrue(lock.acquire(blocking=30))
            finished = threading.Event()
            result = []
            thread = threading.Thread(target=self._report_warm, args=(
                replica, volume, result, finished))
            thread.start()
            # Blocked on the lock, however slow the machine: 2 s is only
            # how long we give it to go wrong.
            self.assertFalse(finished.wait(2), replica.name)
            lock.release()
            thread.join(REQUEST_TIMEOUT)
            self.assertTrue(finished.is_set())
            self.assertTrue(result and result[0]['cache']['warm'], result)

    def _report_warm(self, replica, volume, result, finished):
        try:
            result.append(self.client(replica, 'h00').report_cache(
                volume, self.export_url('h00', volume), warm=True))
        finally:
            finished.set()
