"""Unit tests of authenticated host-to-host exports (NBD TLS-PSK)."""

import logging
import os

import fixtures
from oslo_config import cfg
from oslotest import base

from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.storage.qemu import psk
from fastboot_nova.storage.qemu import relay
from tests.unit import test_qemu_engine

KEY = 'ab' * 32

# Both ends prefer AES-128-GCM (see export_tls_priority).
PRIORITY = 'NORMAL:-CIPHER-ALL:+AES-128-GCM:+CHACHA20-POLY1305:+AES-256-GCM'


def write_psk(directory, text='fastboot:%s\n' % KEY, mode=0o600):
    path = os.path.join(directory, 'exports.psk')
    with open(path, 'w') as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class AuthTestCase(test_qemu_engine.EngineTestCase):

    def setUp(self):
        super().setUp()
        self.logs = self.useFixture(fixtures.FakeLogger(level=logging.DEBUG))
        self.conf.set_override('export_address', '127.0.0.1', 'fastboot')
        self.conf.set_override('export_port_min', 7000, 'fastboot')
        self.conf.set_override('export_port_max', 7000, 'fastboot')

    def relay_calls(self, *names):
        return [c for c in self.relay_model.calls
                if not names or c[0] in names]


class TestConfiguration(AuthTestCase):

    def assertRefused(self, fragment):
        e = self.assertRaises(exception.ExportAuthError, self.make_engine)
        self.assertIn(fragment, str(e))
        # Nothing was started, and no key reached the logs.
        self.assertEqual([], self.model.calls)
        self.assertEqual([], self.relay_model.calls)
        self.assertNotIn(KEY, self.logs.output)
        self.assertNotIn(KEY, str(e))

    def test_tcp_export_without_a_key_is_refused(self):
        self.assertRefused('export_auth = none')

    def test_missing_file(self):
        self.conf.set_override('export_psk_file', '/nonexistent/k.psk',
                               'fastboot_qemu')
        self.assertRefused('cannot open')

    def test_relative_path(self):
        self.conf.set_override('export_psk_file', 'k.psk', 'fastboot_qemu')
        self.assertRefused('not an absolute path')

    def test_group_or_world_readable_file(self):
        for mode in (0o644, 0o640, 0o604):
            self.conf.set_override('export_psk_file',
                                   write_psk(self.tmp, mode=mode),
                                   'fastboot_qemu')
            self.assertRefused('chmod 600')

    def test_malformed_keys(self):
        for text in ('fastboot:%s\n' % KEY[:-1],  # odd length
                     'fastboot:%s\n' % ('zz' * 32),
                     'fastboot:abcd\n',  # too short
                     'fastboot %s\n' % KEY,
                     'fast:boot:%s\n' % KEY,
                     ':%s\n' % KEY,
                     'fastboot:%s\nfastboot:%s\n' % (KEY, KEY),
                     '\n\n'):
            self.conf.set_override('export_psk_file',
                                   write_psk(self.tmp, text),
                                   'fastboot_qemu')
            e = self.assertRaises(exception.ExportAuthError,
                                  self.make_engine)
            self.assertNotIn(KEY, str(e))
        self.assertEqual([], self.model.calls)

    def test_identity_must_have_a_key(self):
        self.conf.set_override('export_psk_file', write_psk(self.tmp),
                               'fastboot_qemu')
        self.conf.set_override('export_psk_identity', 'other',
                               'fastboot_qemu')
        self.assertRefused('has no key')
        self.conf.set_override('export_psk_identity', 'a:b', 'fastboot_qemu')
        self.assertRefused('export_psk_identity must be')

    def test_none_is_explicit(self):
        self.conf.set_override('export_auth', 'none', 'fastboot')
        engine = self.make_engine()
        self.assertIsNone(engine.auth)

    def test_a_leaf_host_needs_no_key(self):
        # Without export_address nothing is exported over TCP.
        self.conf.clear_override('export_address', 'fastboot')
        self.assertIsNone(self.make_engine().auth)


class TestPskExports(AuthTestCase):

    def setUp(self):
        super().setUp()
        self.conf.set_override('export_psk_file', write_psk(self.tmp),
                               'fastboot_qemu')
        self.engine = self.make_engine()
        self.tls_dir = os.path.join(self.state_path, 'tls')
        self.sock = os.path.join(self.state_path, 'nbd.sock')

    def test_relay_serves_tls_and_vms_use_the_unix_socket(self):
        disk = self.engine.create('vm1', 'img', self.origin)
        # The cache daemon: unix only, and client credentials.
        self.assertEqual({'addr': {'type': 'unix',
                                   'data': {'path': self.sock}}},
                         self.model.nbd)
        self.assertEqual({relay.CLIENT_CREDS: {
            'qom-type': 'tls-creds-psk', 'id': relay.CLIENT_CREDS,
            'endpoint': 'client', 'dir': self.tls_dir,
            'username': 'fastboot', 'priority': PRIORITY}},
            self.model.objects)
        # The relay: server credentials, TLS on its server, the export.
        n = relay.node('img')
        self.assertEqual([
            ('qom-list', {'path': '/objects'}),
            ('object-add', {'qom-type': 'tls-creds-psk',
                            'id': relay.SERVER_CREDS, 'endpoint': 'server',
                            'dir': self.tls_dir, 'priority': PRIORITY}),
            ('nbd-server-start', {'addr': {'type': 'inet', 'data': {
                'host': '127.0.0.1', 'port': '7000'}},
                'tls-creds': relay.SERVER_CREDS}),
        ], self.relay_calls()[:3])
        self.assertEqual({'driver': 'nbd', 'node-name': n,
                          'export': 'img', 'read-only': True,
                          'reconnect-delay': 0,
                          'server': {'type': 'unix', 'path': self.sock}},
                         self.relay_model.nodes[n])
        self.assertEqual({'type': 'nbd', 'id': relay.export_id('img'),
                          'name': 'img', 'writable': False,
                          'node-name': n},
                         self.relay_model.exports[relay.export_id('img')])
        # The key, copied where QEMU wants it, private.
        keys = os.path.join(self.tls_dir, 'keys.psk')
        self.assertEqual(0o600, os.stat(keys).st_mode & 0o777)
        self.assertEqual(0o700, os.stat(self.tls_dir).st_mode & 0o777)
        with open(keys) as f:
            self.assertEqual('fastboot:%s\n' % KEY, f.read())
        # The VM disk reads the unix export, never TCP.
        create = self.execute.img_commands('create')[-1]
        self.assertIn('"path":"%s"' % self.sock, ' '.join(create))
        self.assertNotIn('127.0.0.1', ' '.join(create))
        self.assertEqual('nbd://127.0.0.1:7000/img',
                         self.engine.export_url('img'))
        self.assertTrue(disk.path.endswith('vm1.qcow2'))
        self.assertNotIn(KEY, self.logs.output)

    def test_parents_get_credentials_the_origin_does_not(self):
        self.engine.create('vm1', 'img', 'nbd://array:10809/img')
        # A parent on a unix socket would get no TLS: refused.
        self.assertRaises(exception.InvalidLocation, self.engine.reparent,
                          'img', 'nbd://10.0.0.2:7000/img',
                          ['nbd+unix:///img?socket=/run/p.sock'])
        self.engine.reparent('img', 'nbd://10.0.0.2:7000/img',
                             ['nbd://10.0.0.3:7000/img'])
        added = {a['node-name']: a for c, a in
                 self.qmp_calls('blockdev-add') if a['driver'] == 'nbd'}
        n = self.nodes('img')
        self.assertNotIn('tls-creds', added[n.source(0, 0)])
        self.assertEqual(relay.CLIENT_CREDS,
                         added[n.source(1, 0)]['tls-creds'])
        self.assertEqual(relay.CLIENT_CREDS,
                         added[n.source(1, 1)]['tls-creds'])
        # Never to the origin.
        self.assertNotIn('tls-creds', added[n.source(1, 2)])

    def test_relay_restart_brings_the_exports_back(self):
        disk = self.engine.create('vm1', 'img', self.origin)
        self.execute.info[disk.path] = {
            'format': 'qcow2',
            'backing-filename': test_qemu_engine.local_backing(
                self.state_path, 'img')}
        self.relay_model.running = False
        report = self.engine.reconcile()
        self.assertFalse(report.daemon_restarted)
        self.assertEqual(['img'], report.relayed_images)
        self.assertIn(relay.export_id('img'), self.relay_model.exports)
        self.assertIn(relay.SERVER_CREDS, self.relay_model.objects)
        self.assertEqual(relay.SERVER_CREDS,
                         self.relay_model.nbd['tls-creds'])
        # A relay that lost an export gets it back; strays go.
        self.relay_model.exports.clear()
        self.relay_model.exports['fbx-0000000000000000'] = {
            'node-name': 'fbl-0000000000000000'}
        report = self.engine.reconcile()
        self.assertEqual(['img'], report.relayed_images)
        self.assertEqual(['fbx-0000000000000000'],
                         report.removed_orphan_nodes)
        self.assertEqual({relay.export_id('img')},
                         set(self.relay_model.exports))
        self.assertTrue(self.engine.reconcile().clean)

    def test_ensure_exports_restarts_only_the_relay(self):
        self.engine.create('vm1', 'img', self.origin)
        self.assertIsNone(self.engine.ensure_exports())
        self.relay_model.running = False
        report = self.engine.ensure_exports()
        self.assertEqual(['img'], report.relayed_images)
        self.assertTrue(self.relay_model.running)
        # A dead cache daemon is not the agent's to restart.
        self.model.running = self.relay_model.running = False
        self.assertIsNone(self.engine.ensure_exports())
        self.assertFalse(self.model.running)
        self.assertFalse(self.relay_model.running)

    def test_a_dead_cache_daemon_takes_the_relay_down(self):
        # Children probe the relay's port: a relay left serving for a dead
        # cache daemon would keep them on a parent that reads nothing.
        self.engine.create('vm1', 'img', self.origin)
        self.model.running = False
        self.assertTrue(self.relay_model.running)
        self.assertIsNone(self.engine.ensure_exports())
        self.assertFalse(self.relay_model.running)
        self.assertFalse(self.model.running)

    def test_remove_image_drops_the_relay_export(self):
        self.engine.create('vm1', 'img', self.origin)
        self.engine.destroy('vm1')
        self.engine.remove_image('img')
        self.assertEqual({}, self.relay_model.exports)
        self.assertNotIn(relay.node('img'), self.relay_model.nodes)

    def test_old_tcp_backings_are_repointed_to_the_unix_socket(self):
        disk = self.engine.create('vm1', 'img', self.origin)
        self.execute.info[disk.path] = {
            'backing-filename': 'json:{"driver":"raw","file":{"driver":'
                                '"nbd","server":{"type":"inet","host":'
                                '"127.0.0.1","port":"7000"}}}'}
        report = self.engine.reconcile()
        self.assertEqual(['vm1'], report.rebased_disks)
        rebase = self.execute.img_commands('rebase')[-1]
        self.assertIn('"path":"%s"' % self.sock, ' '.join(rebase))

    def test_a_daemon_of_an_earlier_version_is_named(self):
        self.engine.create('vm1', 'img', self.origin)
        # Started by an earlier version: TCP, no unix socket.
        os.unlink(self.sock)
        e = self.assertRaises(exception.DaemonError, self.engine.create,
                              'vm2', 'img', self.origin)
        self.assertIn('earlier version', str(e))
        self.assertIn('fastboot shutdown', str(e))
        self.assertEqual(['vm1'], [d.name for d in self.engine.list()])
        # Once stopped, the next operation starts it afresh.
        self.engine.shutdown()
        self.engine.create('vm2', 'img', self.origin)
        self.assertTrue(os.path.exists(self.sock))

    def test_shutdown_stops_both_daemons(self):
        self.engine.create('vm1', 'img', self.origin)
        self.engine.shutdown()
        self.assertFalse(self.model.running)
        self.assertFalse(self.relay_model.running)


class TestTlsPriority(base.BaseTestCase):

    def _auth(self, priority):
        conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(conf)
        conf([], default_config_files=[])
        tmp = self.useFixture(fixtures.TempDir()).path
        key = os.path.join(tmp, 'k.psk')
        with open(key, 'w') as f:
            f.write('fastboot:' + '0' * 64 + '\n')
        os.chmod(key, 0o600)
        fastboot_conf.set_overrides(conf, export_psk_file=key,
                                    export_tls_priority=priority)
        return psk.from_opts(conf.fastboot, conf.fastboot_qemu)

    def test_default_and_empty(self):
        self.assertEqual(PRIORITY, self._auth(PRIORITY).priority)
        self.assertIsNone(self._auth('').priority)

    def test_refused(self):
        for bad in ('NORMAL,foo', 'NORMAL "x"', 'a' * 513, 'NORMAL\n'):
            self.assertRaises(exception.ExportAuthError, self._auth, bad)
