"""Group access of the VMs' QEMU to the state path (client_group)."""

import grp
import os
import socket
import stat

import fixtures
from oslotest import base

from fastboot_nova import exception
from fastboot_nova.storage.qemu import access


class TestGrantClients(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.state = self.useFixture(fixtures.TempDir()).path
        os.chmod(self.state, 0o700)
        self.vms = os.path.join(self.state, 'vms')
        os.mkdir(self.vms, 0o700)
        self.sock_path = os.path.join(self.state, 'nbd.sock')
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(self.sock_path)
        self.addCleanup(self.sock.close)
        os.chmod(self.sock_path, 0o700)
        self.cache = os.path.join(self.state, 'state.json')
        with open(self.cache, 'w') as f:
            f.write('{}')
        os.chmod(self.cache, 0o600)
        self.group = grp.getgrgid(os.getegid()).gr_name

    def mode(self, path):
        return stat.S_IMODE(os.lstat(path).st_mode)

    def test_group_gets_traverse_and_connect_only(self):
        access.grant_clients(self.state, self.vms, self.sock_path,
                             self.group)
        self.assertEqual(0o750, self.mode(self.state))
        self.assertEqual(0o750, self.mode(self.vms))
        self.assertEqual(0o770, self.mode(self.sock_path))
        self.assertEqual(0o600, self.mode(self.cache))
        for path in (self.state, self.vms, self.sock_path):
            self.assertEqual(os.getegid(), os.lstat(path).st_gid)

    def test_a_sealed_cache_backing_is_readable_by_the_group(self):
        caches = os.path.join(self.state, 'caches')
        os.mkdir(caches, 0o700)
        sealed = os.path.join(caches, 'img.qcow2')
        other = os.path.join(caches, 'other.qcow2')
        for path in (sealed, other):
            with open(path, 'w'):
                pass
            os.chmod(path, 0o600)
        access.grant_clients(self.state, self.vms, self.sock_path,
                             self.group, backing_file=sealed)
        self.assertEqual(0o750, self.mode(caches))
        self.assertEqual(0o640, self.mode(sealed))
        self.assertEqual(0o600, self.mode(other))
        self.assertEqual(0o600, self.mode(self.cache))

    def test_unset_changes_nothing(self):
        access.grant_clients(self.state, self.vms, self.sock_path, None)
        self.assertEqual(0o700, self.mode(self.state))
        self.assertEqual(0o700, self.mode(self.sock_path))

    def test_unknown_group_is_a_clear_error(self):
        e = self.assertRaises(exception.FastbootException,
                              access.grant_clients, self.state, self.vms,
                              self.sock_path, 'no-such-group-fb')
        self.assertIn('client_group', str(e))
        self.assertEqual(0o700, self.mode(self.state))
