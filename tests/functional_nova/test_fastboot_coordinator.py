"""FastBootDriver with a real coordinator and the real qemu engine.

Two computes in one process, each with its own qemu engine (state path,
cache daemon, export relay on loopback TCP with a TLS-PSK key) and its own
host agent, and a real ``fastboot-coordinator`` process on a free port
(SQLite, tooz file driver, fan-out 1): the second host's cache must read
through the first host's export.
"""

import os
import secrets
import shutil
import socket
import tempfile

import fixtures
import requests
from testtools import content

from fastboot_nova.hierarchy import client as client_mod
from tests.functional import base as engine_base
from tests.functional.coordinator import test_processes
from tests.functional import test_export_auth
from tests.functional_nova import base

SECRET = 'nova-coordinator-test-secret'
IMAGE = 'cinder-' + base.ORIGIN_VOLUME
MIB = 1024 * 1024
# Each test takes its own range of ports: other runs share the machine.
PORT_BASE = 24000
PORT_RANGE = 20


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class CoordinatorTestBase(base.FastBootTestBase):

    def setUp(self):
        for tool in ('qemu-img', 'qemu-io', 'qemu-storage-daemon'):
            if shutil.which(tool) is None:
                self.skipTest('%s is not installed' % tool)
        super().setUp()
        keys = self.useFixture(fixtures.TempDir()).path
        self.psk = test_export_auth.write_psk(keys)
        self.port_min = PORT_BASE + PORT_RANGE * secrets.randbelow(200)
        self.flags(coordinator_url=self.coordinator_url(),
                   coordinator_secret=SECRET, export_address='127.0.0.1',
                   # The loop's first round runs at init_host, the next
                   # after the test: a cache in the tree was joined by
                   # the spawn (or init_host) itself.
                   heartbeat_interval=60, group='fastboot')
        self.flags(export_psk_file=self.psk, group='fastboot_qemu')
        # A recognisable pattern where the servers will read.
        with open(self.origin, 'r+b') as f:
            f.write(b'\x2a' * 65536)
            f.seek(8 * MIB)
            f.write(b'\x5b' * MIB)

    def coordinator_url(self):
        raise NotImplementedError()

    def make_engine(self, conf, host):
        from fastboot_nova.storage.qemu import engine as qemu_engine
        state_path = tempfile.mkdtemp(prefix='fbc-', dir='/tmp')
        self.addCleanup(shutil.rmtree, state_path, ignore_errors=True)
        engine = qemu_engine.QemuEngine(
            engine_base.make_conf(
                export_address='127.0.0.1', export_psk_file=self.psk,
                export_port_min=self.port_min,
                export_port_max=self.port_min + PORT_RANGE - 1),
            state_path=state_path)
        self.addCleanup(engine.shutdown)
        return engine

    def start_compute(self, hostname='compute1', **kwargs):
        host = super().start_compute(hostname=hostname, **kwargs)
        # The fixtures kill services without cleanup_host: stop the agent
        # loop before the engine's daemons go (cleanups run last first).
        driver = self.computes[hostname].driver
        self.addCleanup(driver.cleanup_host, hostname)
        return host

    def cached(self, host):
        (image,) = self.engines[host].list_images()
        self.assertEqual(IMAGE, image.name)
        return image

    def read_disk(self, server, command):
        engine = self.engines[server['OS-EXT-SRV-ATTR:host']]
        path = engine._vm_path('nova-' + server['id'])
        engine_base.qemu_io(path, command, read_only=True)


class TestWithCoordinator(CoordinatorTestBase):

    def setUp(self):
        workdir = tempfile.mkdtemp(prefix='fbco-', dir='/tmp')
        self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
        state_path = os.path.join(workdir, 'state')
        os.makedirs(state_path)
        self.replica = test_processes.Replica('coordinator', workdir, {
            'DEFAULT': {'debug': 'true'},
            'coordinator': {
                'state_path': state_path,
                'backend_url': 'file://%s' % os.path.join(state_path,
                                                          'tooz'),
                'auth_strategy': 'shared_secret',
                'shared_secret': SECRET,
                'fanout': 1,
                # Liveness is not under test: no host may expire mid-test.
                'host_timeout': 3600,
                'lock_timeout': 120,
            },
        })
        self.addCleanup(self.replica.stop)
        self.addOnException(lambda exc_info: self.addDetail(
            'coordinator', content.text_content(self.replica.log_tail())))
        self.replica.db_sync()
        self.replica.start()
        super().setUp()

    def coordinator_url(self):
        return self.replica.url + '/v1'

    def get(self, path):
        resp = requests.get(self.replica.url + '/v1' + path, timeout=60,
                            headers={client_mod.SECRET_HEADER: SECRET})
        self.assertEqual(200, resp.status_code, resp.text)
        return resp.json()

    def test_second_host_reads_through_the_first(self):
        self.start_compute('compute1')
        self.start_compute('compute2')
        # One after the other, so the tree is known: the first cache of
        # the volume is the root under the origin.
        (first,), _ = self.boot_from_origin(1, hosts=['compute1'])
        (second,), _ = self.boot_from_origin(1, hosts=['compute2'])

        hosts = {h['name']: h for h in self.get('/hosts')['hosts']}
        self.assertEqual({'compute1', 'compute2'}, set(hosts))
        self.assertEqual('127.0.0.1', hosts['compute2']['address'])
        tree = self.get('/volumes/%s/tree' % IMAGE)
        parent = {h['host']: h['parent'] for h in tree['hosts']}
        self.assertEqual({'compute1': None, 'compute2': 'compute1'}, parent)
        exports = {h['host']: h['export_url'] for h in tree['hosts']}

        root, child = self.cached('compute1'), self.cached('compute2')
        self.assertEqual(root.export_url, exports['compute1'])
        self.assertEqual(child.export_url, exports['compute2'])
        self.assertTrue(root.export_url.startswith('nbd://127.0.0.1:'),
                        root.export_url)
        self.assertEqual((), root.parents)
        # The child's cache reads from the parent's export (the origin
        # last, always).
        self.assertEqual((root.export_url,), child.parents)

        # A block nobody read yet: the child's read goes through the
        # parent's export, whose copy-on-read cache fills on the way.
        before = root.cached_bytes
        self.read_disk(second, 'read -P 0x5b 8M 1M')
        self.assertGreaterEqual(self.cached('compute1').cached_bytes,
                                before + MIB)
        self.assertGreaterEqual(self.cached('compute2').cached_bytes, MIB)
        self.read_disk(first, 'read -P 0x2a 0 64k')

        # The host tokens are in the engines' state paths, private.
        for host in ('compute1', 'compute2'):
            token = os.path.join(self.engines[host].state_path,
                                 'coordinator-token')
            self.assertEqual(0o600, os.stat(token).st_mode & 0o777)
        self.assertNotIn(SECRET, self.stdlog.logger.output)

    def test_restarted_compute_rejoins_its_caches(self):
        self.start_compute('compute1')
        self.boot_from_origin(1, hosts=['compute1'])
        driver = self.computes['compute1'].driver
        driver.cleanup_host('compute1')
        # The coordinator forgets the host (an operator, lost data).
        token = os.path.join(self.engines['compute1'].state_path,
                             'coordinator-token')
        with open(token) as f:
            resp = requests.delete(
                self.replica.url + '/v1/hosts/compute1', timeout=60,
                headers={client_mod.SECRET_HEADER: SECRET,
                         client_mod.HOST_TOKEN_HEADER: f.read().strip()})
        self.assertEqual(204, resp.status_code, resp.text)
        self.assertEqual([], self.get('/hosts')['hosts'])
        # init_host again, as a restarted nova-compute does: the cache
        # that really exists is registered again.
        driver.init_host('compute1')
        tree = self.get('/volumes/%s/tree' % IMAGE)
        self.assertEqual(['compute1'], [h['host'] for h in tree['hosts']])


class TestCoordinatorDown(CoordinatorTestBase):

    def coordinator_url(self):
        # Nothing listens there.
        return 'http://127.0.0.1:%d/v1' % free_port()

    def test_spawn_reads_from_the_origin(self):
        self.start_compute('compute1')
        (server,), _ = self.boot_from_origin(1, hosts=['compute1'])
        self.assertEqual((), self.cached('compute1').parents)
        self.read_disk(server, 'read -P 0x5b 8M 1M')
        output = self.stdlog.logger.output
        self.assertIn('Coordinator unusable for %s' % IMAGE, output)
        self.assertNotIn(SECRET, output)
