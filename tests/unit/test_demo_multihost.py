"""The multi-host demo's pre-shared key and its report line."""

import os
import stat

import fixtures
from oslotest import base

from fastboot_nova.cmd.commands import demo
from fastboot_nova.demo import multihost
from fastboot_nova.storage.qemu import psk


class TestDemoKey(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path

    def test_a_fresh_private_key_the_engine_accepts(self):
        a = multihost.write_psk(os.path.join(self.tmp, 'a.psk'))
        b = multihost.write_psk(os.path.join(self.tmp, 'b.psk'))
        self.assertEqual(0o600, stat.S_IMODE(os.stat(a).st_mode))
        self.assertEqual(('fastboot',), psk.identities(a))
        with open(a) as fa, open(b) as fb:
            self.assertNotEqual(fa.read(), fb.read())

    def test_the_summary_says_how_exports_are_protected(self):
        report = {'hosts': [{'name': 'h0', 'parent': None,
                             'ingress_bytes': 10}],
                  'fanout': 2, 'origin_egress_bytes': 10,
                  'export_auth': 'psk'}
        self.assertIn('host-to-host exports: NBD TLS-PSK',
                      demo.summary(report))

    def test_never_overwrites(self):
        path = multihost.write_psk(os.path.join(self.tmp, 'a.psk'))
        self.assertRaises(FileExistsError, multihost.write_psk, path)
