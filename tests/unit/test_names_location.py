"""Tests of name validation and origin location parsing."""

import os

import fixtures
from oslotest import base

from fastboot_nova import exception
from fastboot_nova.storage import location
from fastboot_nova.storage import names


class TestNames(base.BaseTestCase):

    def test_good(self):
        for name in ('vm1', 'VM-01', 'a', 'a.b_c-d', 'x' * names.MAX_LENGTH,
                     '0start'):
            self.assertEqual(name, names.validate(name))

    def test_bad(self):
        for name in ('', '/', 'a/b', '/abs', '..', 'a..b', '../etc',
                     'with space', ' lead', 'a;b', '$(reboot)', '`id`',
                     'a|b', 'a,b', 'a:b', '-opt', '.hidden', '_x',
                     'a\nb', 'vm\n', 'x' * (names.MAX_LENGTH + 1),
                     'caf\u00e9', None, 42):
            self.assertRaises(exception.InvalidName, names.validate, name)

    def test_kind_in_message(self):
        e = self.assertRaises(exception.InvalidName, names.validate,
                              'a b', 'image')
        self.assertIn("Invalid image name 'a b'", str(e))


class TestLocation(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.file = os.path.join(self.tmp, 'origin.raw')
        with open(self.file, 'wb') as f:
            f.write(b'\0' * 512)

    def test_local_file(self):
        loc = location.parse(self.file)
        self.assertEqual('file', loc.kind)
        self.assertEqual(self.file, loc.path)
        self.assertFalse(loc.is_nbd)
        spec = loc.blockdev('fbo-1')
        self.assertEqual({'driver': 'file', 'filename': self.file,
                          'read-only': True, 'auto-read-only': False,
                          'node-name': 'fbo-1'}, spec)

    def test_relative_path_is_made_absolute(self):
        self.useFixture(fixtures.MonkeyPatch('os.getcwd',
                                             lambda: self.tmp))
        self.assertEqual(self.file, location.parse('origin.raw').path)

    def test_qcow2_format_wraps_protocol(self):
        spec = location.parse(self.file).blockdev('n', fmt='qcow2')
        self.assertEqual('qcow2', spec['driver'])
        self.assertEqual('file', spec['file']['driver'])

    def test_missing_file(self):
        e = self.assertRaises(exception.InvalidLocation, location.parse,
                              os.path.join(self.tmp, 'nope'))
        self.assertIn('No such file', str(e))

    def test_directory(self):
        e = self.assertRaises(exception.InvalidLocation, location.parse,
                              self.tmp)
        self.assertIn('not a regular file or block device', str(e))

    def test_empty_and_control_characters(self):
        for bad in ('', None, self.file + '\n', 'a\0b'):
            self.assertRaises(exception.InvalidLocation, location.parse,
                              bad)

    def test_nbd_tcp(self):
        loc = location.parse('nbd://origin.example:10810/img-1')
        self.assertEqual('nbd-tcp', loc.kind)
        self.assertEqual(('origin.example', 10810, 'img-1'),
                         (loc.host, loc.port, loc.export))
        self.assertTrue(loc.is_nbd)
        self.assertEqual('nbd://origin.example:10810/img-1', loc.url)
        spec = loc.blockdev('n', reconnect_delay=5)
        self.assertEqual({'type': 'inet', 'host': 'origin.example',
                          'port': '10810'}, spec['server'])
        self.assertEqual(5, spec['reconnect-delay'])
        self.assertTrue(spec['read-only'])

    def test_nbd_default_port(self):
        loc = location.parse('nbd://10.0.0.1/img')
        self.assertEqual(location.NBD_DEFAULT_PORT, loc.port)

    def test_nbd_ipv6(self):
        loc = location.parse('nbd://[::1]:10809/img')
        self.assertEqual('::1', loc.host)
        self.assertEqual('nbd://[::1]:10809/img', loc.url)

    def test_nbd_unix(self):
        loc = location.parse('nbd+unix:///img?socket=/run/fb/nbd.sock')
        self.assertEqual('nbd-unix', loc.kind)
        self.assertEqual('/run/fb/nbd.sock', loc.socket)
        self.assertEqual({'type': 'unix', 'path': '/run/fb/nbd.sock'},
                         loc.blockdev('n')['server'])

    def test_bad_urls(self):
        for bad in ('nbd://host/',                      # no export
                    'nbd://host/a b',                   # bad export
                    'nbd://host/img;rm',                # bad export
                    'nbd:///img',                       # no host
                    'nbd://ho$t/img',                   # bad host
                    'nbd://host:99999/img',             # bad port
                    'nbd://host:port/img',              # bad port
                    'nbd://user@host/img',              # user
                    'nbd://host/img?x=1',               # query
                    'nbd+unix:///img',                  # no socket
                    'nbd+unix:///img?socket=rel.sock',  # relative socket
                    'nbd+unix:///img?socket=/a&socket=/b',
                    'nbd+unix:///img?socket=/a&x=1',
                    'nbd+unix://host/img?socket=/a',    # host
                    'http://host/img',                  # scheme
                    'file:///etc/passwd'):
            self.assertRaises(exception.InvalidLocation, location.parse, bad)

    def test_nbd_url_builder(self):
        self.assertEqual('nbd+unix:///e?socket=/s',
                         location.nbd_url('e', socket='/s'))
        self.assertEqual('nbd://h:1/e', location.nbd_url('e', host='h',
                                                          port=1))
