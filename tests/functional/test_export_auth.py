"""Host-to-host exports over NBD TLS-PSK, against real qemu daemons.

Two engines on one machine stand for a parent host (exporting on
loopback TCP through its relay) and a child host (reading from it).
"""

import json
import os
import secrets
import signal
import subprocess
import tempfile
import time

from fastboot_nova import exception
from fastboot_nova import storage
from fastboot_nova.storage.qemu import cachegroup
from tests.functional import base

# Other tests and test runs share this machine: each test takes its own
# range of ports (the engine uses the first free one).
PORT_BASE = 21000
PORT_RANGE = 40


def write_psk(directory, identity='fastboot', key=None, mode=0o600):
    path = os.path.join(directory, '%s.psk' % secrets.token_hex(4))
    with open(path, 'w') as f:
        f.write('%s:%s\n' % (identity, key or secrets.token_hex(32)))
    os.chmod(path, mode)
    return path


def key_of(path):
    with open(path) as f:
        return f.read().strip().partition(':')[2]


class TestExportAuth(base.TestCase):

    def setUp(self):
        super().setUp()
        self.origin = self.useFixture(base.OriginFixture())
        self.keys = tempfile.mkdtemp(prefix='fbk-', dir='/tmp')
        self.addCleanup(subprocess.run, ['rm', '-rf', self.keys])
        self.psk = write_psk(self.keys)
        self.parent = self.engine(export_address='127.0.0.1',
                                  export_psk_file=self.psk)
        self.parent_vm = self.parent.create('p-vm', 'img', self.origin.url)
        # The parent host reads clusters 0-31 once.
        base.qemu_io(self.parent_vm.path, 'read 0 2M')
        self.url = self.parent.export_url('img')

    def engine(self, **overrides):
        if not hasattr(self, 'port_min'):
            self.port_min = PORT_BASE + PORT_RANGE * secrets.randbelow(200)
        overrides.setdefault('export_port_min', self.port_min)
        overrides.setdefault('export_port_max', self.port_min + PORT_RANGE)
        conf = base.make_conf(**overrides)
        return self.useFixture(base.EngineFixture(conf)).engine

    def child_reading_from_parent(self, **overrides):
        child = self.engine(**overrides)
        vm = child.create('c-vm', 'img', self.origin.url)
        child.reparent('img', self.url)
        self.origin.server.reset_counter()
        return child, vm

    def source_nodes(self, engine):
        with engine.daemon.qmp() as qmp:
            return {n['node-name']: n for n in
                    qmp.execute('query-named-block-nodes', flat=True)
                    if n['node-name'].startswith('fbs-')}

    def relay_log(self):
        with open(self.parent.relay_log, errors='replace') as f:
            return f.read()

    def test_a_child_with_the_key_reads_the_parent_s_cache(self):
        self.assertTrue(self.url.startswith('nbd://127.0.0.1:'), self.url)
        child, vm = self.child_reading_from_parent(export_psk_file=self.psk)
        base.qemu_io(vm.path, 'read -P 1 0 64k', 'read -P 4 192k 64k')
        # Served by the parent's cache over TLS: the origin read nothing.
        self.assertLess(self.origin.server.bytes_read(), 4096)
        # The parent's server takes TLS clients only: the child's node
        # on it is connected with its credentials.
        self.assertIn(cachegroup.Nodes.of('img').source(1, 0),
                      self.source_nodes(child))
        # A block the parent lacks passes its copy-on-read cache: the
        # parent's own VM then reads it without the origin.
        read = 'read -P %d %dk 64k' % (self.origin.pattern(41), 41 * 64)
        base.qemu_io(vm.path, read)
        moved = self.origin.server.bytes_read()
        self.assertGreaterEqual(moved, base.CLUSTER)
        base.qemu_io(self.parent_vm.path, read)
        self.assertEqual(moved, self.origin.server.bytes_read())

    def assertRefusedFallsBackToTheOrigin(self, child, vm):
        parent_node = cachegroup.Nodes.of('img').source(1, 0)
        self.assertNotIn(parent_node, self.source_nodes(child))
        # Reads are still right, from the origin.
        base.qemu_io(vm.path, 'read -P 1 0 64k', 'read -P 4 192k 64k')
        self.assertGreaterEqual(self.origin.server.bytes_read(),
                                2 * base.CLUSTER)
        self.assertEqual([self.url],
                         child.state.read()['images']['img']['parents'])

    def test_a_wrong_key_is_refused(self):
        wrong = write_psk(self.keys)
        child, vm = self.child_reading_from_parent(export_psk_file=wrong)
        self.assertRefusedFallsBackToTheOrigin(child, vm)
        self.assertIn('qio_channel_tls_handshake_fail', self.relay_log())

    def test_an_unknown_identity_is_refused(self):
        # The right key under another name.
        other = write_psk(self.keys, identity='intruder',
                          key=key_of(self.psk))
        child, vm = self.child_reading_from_parent(
            export_psk_file=other, export_psk_identity='intruder')
        self.assertRefusedFallsBackToTheOrigin(child, vm)
        self.assertIn('qio_channel_tls_handshake_fail', self.relay_log())

    def test_a_child_without_tls_is_refused(self):
        child, vm = self.child_reading_from_parent(export_auth='none')
        self.assertRefusedFallsBackToTheOrigin(child, vm)
        proc = subprocess.run(['qemu-img', 'info', self.url],
                              capture_output=True, text=True, check=False)
        self.assertNotEqual(0, proc.returncode)
        self.assertIn('TLS', proc.stderr)
        self.assertIn('not permitted before TLS', self.relay_log())

    def qemu_io_tls(self, psk, *commands, read_only=True):
        url = self.url[len('nbd://'):]
        host_port, export = url.split('/', 1)
        host, port = host_port.rsplit(':', 1)
        argv = ['qemu-io', '--object',
                'tls-creds-psk,id=c,endpoint=client,username=fastboot,'
                'dir=%s' % psk, '--image-opts'] + \
            (['-r'] if read_only else [])
        for command in commands:
            argv += ['-c', command]
        argv.append('driver=nbd,host=%s,port=%s,export=%s,tls-creds=c' % (
            host, port, export))
        return subprocess.run(argv, capture_output=True, text=True,
                              check=False)

    def test_the_export_is_read_only_over_tls(self):
        tls_dir = os.path.join(self.keys, 'qemu')
        os.mkdir(tls_dir, 0o700)
        with open(os.path.join(tls_dir, 'keys.psk'), 'w') as f:
            f.write('fastboot:%s\n' % key_of(self.psk))
        read = self.qemu_io_tls(tls_dir, 'read -P 3 128k 64k')
        self.assertEqual(0, read.returncode, read.stderr)
        self.assertNotIn('failed', read.stdout + read.stderr)
        write = self.qemu_io_tls(tls_dir, 'write -P 0xee 0 64k',
                                 read_only=False)
        self.assertNotEqual(0, write.returncode)
        self.assertIn('Permission denied', write.stdout + write.stderr)
        base.qemu_io(self.parent_vm.path, 'read -P 1 0 64k')
        self.assertEqual(self.origin.sha256, base.sha256(self.origin.path))

    def test_vm_disks_use_the_unix_socket(self):
        info = json.loads(subprocess.run(
            ['qemu-img', 'info', '-U', '--output=json',
             self.parent_vm.path], capture_output=True, text=True,
            check=True).stdout)
        backing = info.get('full-backing-filename',
                           info.get('backing-filename'))
        self.assertIn('"path":"%s"' % self.parent.nbd_socket, backing)
        self.assertNotIn('inet', backing)
        self.assertNotIn('127.0.0.1', backing)

    def test_a_killed_relay_comes_back_and_children_reconnect(self):
        child, vm = self.child_reading_from_parent(export_psk_file=self.psk)
        base.qemu_io(vm.path, 'read -P 1 0 64k')
        cache_pid = self.parent.daemon.pid()
        os.kill(self.parent.relay.pid(), signal.SIGKILL)
        # The child reads on from the origin meanwhile.
        base.qemu_io(vm.path, 'read -P 2 64k 64k')
        report = self.parent.ensure_exports()
        self.assertEqual(['img'], report.relayed_images)
        self.assertEqual(self.url, self.parent.export_url('img'))
        self.assertEqual(cache_pid, self.parent.daemon.pid())
        # The child's NBD client reconnects on its own: soon a block the
        # parent holds costs the origin no data again.
        deadline = time.monotonic() + 60
        cluster = 3
        while True:
            self.origin.server.reset_counter()
            base.qemu_io(vm.path, 'read -P %d %dk 64k' % (
                self.origin.pattern(cluster), cluster * 64))
            if self.origin.server.bytes_read() < 4096:
                break
            self.assertLess(time.monotonic(), deadline,
                            'the child never read from the parent again')
            cluster += 1
            self.assertLess(cluster, 32)
            time.sleep(1)
        # reconcile does the same, and finds nothing to do now.
        report = self.parent.reconcile()
        self.assertEqual([], report.relayed_images)


class TestBadConfiguration(base.TestCase):

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.mkdtemp(prefix='fbk-', dir='/tmp')
        self.addCleanup(subprocess.run, ['rm', '-rf', self.tmp])

    def assertNothingStarts(self, fragment, **overrides):
        conf = base.make_conf(export_address='127.0.0.1', **overrides)
        state = os.path.join(self.tmp, 'state')
        e = self.assertRaises(exception.ExportAuthError, storage.get_engine,
                              conf, state_path=state)
        self.assertIn(fragment, str(e))
        # No state directory, no daemon, no socket.
        self.assertFalse(os.path.exists(state))

    def test_no_key(self):
        self.assertNothingStarts('export_auth = none')

    def test_missing_file(self):
        self.assertNothingStarts(
            'cannot open', export_psk_file=os.path.join(self.tmp, 'none'))

    def test_world_readable_file(self):
        self.assertNothingStarts('chmod 600', export_psk_file=write_psk(
            self.tmp, mode=0o644))

    def test_malformed_key(self):
        self.assertNothingStarts('hex digits', export_psk_file=write_psk(
            self.tmp, key='not-hex'))
