"""NBD over TLS: privsep config text and argv, TlsFiles, the options."""

import os

import fixtures
from oslo_config import cfg
import testtools

from fastboot_nova.conf import dm as dm_opts
from fastboot_nova import exception
import fastboot_nova.privsep.dm as dm
import fastboot_nova.privsep.nbd as nbd
from fastboot_nova.storage.dm import export as dm_export
from fastboot_nova.storage.dm import multipath as dm_multipath
from fastboot_nova.storage.dm import tls as dm_tls
from tests.unit.dm import nbd_fakes
from tests.unit.dm import test_export

CACHE = '/dev/mapper/fb-0123abcd-cache-img'
EXP1 = 'fb-0123abcd-exp-img-1'
KEY_PEM = '-----BEGIN PRIVATE KEY-----\nSECRETKEYMATERIAL\n'


class TlsFilesFixture(fixtures.Fixture):
    """host.pem, host.key (0600) and ca.pem in a temp dir."""

    def _setUp(self):
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.cert = os.path.join(self.dir, 'host.pem')
        self.key = os.path.join(self.dir, 'host.key')
        self.ca = os.path.join(self.dir, 'ca.pem')
        for path, mode, text in ((self.cert, 0o644, 'CERT\n'),
                                 (self.key, 0o600, KEY_PEM),
                                 (self.ca, 0o644, 'CA\n')):
            with open(path, 'w') as f:
                f.write(text)
            os.chmod(path, mode)

    def files(self, hostname=None):
        return dm_tls.TlsFiles(self.cert, self.key, self.ca, hostname)


class TestPrivsepTls(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.fx = self.useFixture(nbd_fakes.NbdFixture(
            {CACHE: 131072}, export_sectors=131072))
        self.kernel = self.fx.kernel
        self.tls = self.useFixture(TlsFilesFixture())

    def test_config_text_with_tls(self):
        self.assertEqual(
            '[generic]\nlistenaddr = 10.0.0.1\nport = 10809\n'
            'allowlist = false\nforce_tls = true\n'
            'certfile = /etc/fb/host.pem\nkeyfile = /etc/fb/host.key\n'
            'cacertfile = /etc/fb/ca.pem\n'
            '[exp]\nexportname = /dev/vdb\nreadonly = true\n'
            'authfile = /run/x.allow\ntlsonly = true\n',
            nbd.server_config('exp', '/dev/vdb', '10.0.0.1', 10809,
                              '/run/x.allow', ('/etc/fb/host.pem',
                                               '/etc/fb/host.key',
                                               '/etc/fb/ca.pem')))

    def test_config_refuses_injection(self):
        for bad in ('/etc/x.pem\n[x]', '/etc/x\\n.pem', 'relative.pem',
                    '/etc/x y.pem', '/etc/../x.pem', '/etc/x.pem\0',
                    '/etc/x=y.pem', '/etc/#x.pem', '', None, 7):
            self.assertRaises(
                dm.InvalidDmArgument, nbd.server_config, 'exp', '/dev/vdb',
                '10.0.0.1', 10809, '/run/x.allow',
                (bad, '/etc/k.key', '/etc/ca.pem'))

    def test_start_server_with_tls(self):
        t = self.tls
        nbd.start_server(EXP1, CACHE, '192.0.2.1', 10809, ['192.0.2.0/24'],
                         cert_file=t.cert, key_file=t.key, ca_file=t.ca)
        with open(self.fx.run_dir + '/' + EXP1 + '.conf') as f:
            conf = f.read()
        self.assertIn('force_tls = true\ncertfile = %s\nkeyfile = %s\n'
                      'cacertfile = %s\n[%s]\n' % (t.cert, t.key, t.ca, EXP1),
                      conf)
        self.assertTrue(conf.endswith('tlsonly = true\n'))
        # Paths only: the key's contents never reach the configuration.
        self.assertNotIn('SECRETKEYMATERIAL', conf)

    def test_start_server_refuses_partial_or_missing_files(self):
        t = self.tls
        for kw in ({'cert_file': t.cert, 'key_file': t.key},
                   {'ca_file': t.ca},
                   {'cert_file': t.cert, 'key_file': t.key,
                    'ca_file': t.dir + '/nosuch.pem'},
                   {'cert_file': t.dir, 'key_file': t.key, 'ca_file': t.ca}):
            self.assertRaises(dm.InvalidDmArgument, nbd.start_server,
                              EXP1, CACHE, '127.0.0.1', 10809,
                              ['127.0.0.1'], **kw)
        self.assertEqual([], self.kernel.spawns)

    def test_connect_with_tls_argv(self):
        t = self.tls
        dev = nbd.connect('127.0.0.1', 10809, 'exp1', cert_file=t.cert,
                          key_file=t.key, ca_file=t.ca,
                          tls_hostname='parent.example')
        self.assertEqual('/dev/nbd0', dev)
        self.assertEqual([(
            'nbd-client 127.0.0.1 10809 /dev/nbd0 -name exp1 -readonly '
            '-timeout 30 -certfile %s -keyfile %s -cacertfile %s '
            '-tlshostname parent.example' % (t.cert, t.key, t.ca), None)],
            self.kernel.calls)

    def test_connect_with_tls_without_hostname(self):
        t = self.tls
        nbd.connect('127.0.0.1', 10809, 'exp1', cert_file=t.cert,
                    key_file=t.key, ca_file=t.ca)
        self.assertEqual(
            'nbd-client 127.0.0.1 10809 /dev/nbd0 -name exp1 -readonly '
            '-timeout 30 -certfile %s -keyfile %s -cacertfile %s' % (
                t.cert, t.key, t.ca), self.kernel.calls[0][0])

    def test_connect_refuses_bad_tls_input(self):
        t = self.tls
        ok = {'cert_file': t.cert, 'key_file': t.key, 'ca_file': t.ca}
        for kw in (dict(ok, tls_hostname='-x'),
                   dict(ok, tls_hostname='a b'),
                   dict(ok, tls_hostname='x\n'),
                   dict(ok, key_file='-keyfile'),
                   {'tls_hostname': 'parent'},
                   {'cert_file': t.cert}):
            self.assertRaises(dm.InvalidDmArgument, nbd.connect,
                              '127.0.0.1', 10809, 'exp1', **kw)
        self.assertEqual([], self.kernel.calls)

    def test_failed_tls_connect_leaves_nothing(self):
        t = self.tls
        self.kernel.fail['nbd-client'] = (
            1, 'E: received invalid negotiation magic 123 (expected 456)')
        e = self.assertRaises(nbd.NbdFailed, nbd.connect, '127.0.0.1',
                              10809, 'exp1', cert_file=t.cert,
                              key_file=t.key, ca_file=t.ca)
        self.assertIn('TLS session refused', str(e))
        self.assertIn('not signed by %s or does not name 127.0.0.1' % t.ca,
                      str(e))
        self.assertIn('negotiation magic', str(e))
        self.assertEqual([], nbd.connected_devices())

    def test_other_tls_connect_errors_pass_unchanged(self):
        t = self.tls
        self.kernel.fail['nbd-client'] = (1, 'Error: Export unknown')
        e = self.assertRaises(nbd.NbdFailed, nbd.connect, '127.0.0.1',
                              10809, 'exp1', cert_file=t.cert,
                              key_file=t.key, ca_file=t.ca)
        self.assertNotIn('TLS', str(e))


class TestTlsFiles(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tls = self.useFixture(TlsFilesFixture())

    def test_check_and_kwargs(self):
        files = self.tls.files('parent').check()
        self.assertEqual({'cert_file': self.tls.cert,
                          'key_file': self.tls.key, 'ca_file': self.tls.ca},
                         files.server_kwargs())
        self.assertEqual('parent', files.client_kwargs()['tls_hostname'])
        self.assertNotIn('tls_hostname', self.tls.files().client_kwargs())

    def test_key_readable_by_group_refused(self):
        for mode in (0o640, 0o604, 0o660):
            os.chmod(self.tls.key, mode)
            e = self.assertRaises(exception.ExportAuthError,
                                  self.tls.files().check)
            self.assertIn('export_tls_key_file', str(e))
            self.assertIn('%04o' % mode, str(e))
            self.assertNotIn('SECRETKEYMATERIAL', str(e))

    def test_missing_or_bad_files_refused(self):
        t = self.tls
        for files, opt in (
                (dm_tls.TlsFiles(t.dir + '/no.pem', t.key, t.ca),
                 'export_tls_cert_file'),
                (dm_tls.TlsFiles(t.cert, t.key, t.dir), 'export_tls_ca_file'),
                (dm_tls.TlsFiles(t.cert, 'host.key', t.ca),
                 'export_tls_key_file'),
                (dm_tls.TlsFiles(t.cert, t.key, t.ca, 'bad name'),
                 'export_tls_hostname')):
            e = self.assertRaises(exception.ExportAuthError, files.check)
            self.assertIn(opt, str(e))

    def test_exporter_and_attacher_check_at_construction(self):
        os.chmod(self.tls.key, 0o644)
        self.assertRaises(exception.ExportAuthError,
                          dm_multipath.MultipathAttacher,
                          tls=self.tls.files())
        self.assertRaises(exception.ExportAuthError, dm_export.NbdExporter,
                          None, '127.0.0.1', ['127.0.0.1'],
                          tls=self.tls.files())


class TestOptions(testtools.TestCase):

    def setUp(self):
        super().setUp()
        self.tls = self.useFixture(TlsFilesFixture())
        self.conf = cfg.ConfigOpts()
        dm_opts.register_opts(self.conf)
        self.conf([])
        self.opts = self.conf.fastboot_dm

    def set(self, **kw):
        for k, v in kw.items():
            self.conf.set_override(k, v, 'fastboot_dm')

    def test_default_is_tls_and_needs_files(self):
        e = self.assertRaises(exception.ExportAuthError, dm_tls.from_opts,
                              self.opts, 'tls')
        self.assertIn('export_tls_cert_file, export_tls_key_file, '
                      'export_tls_ca_file', str(e))
        self.set(export_tls_cert_file=self.tls.cert)
        e = self.assertRaises(exception.ExportAuthError, dm_tls.from_opts,
                              self.opts, 'tls')
        self.assertNotIn('export_tls_cert_file', str(e))

    def test_tls_files(self):
        self.set(export_tls_cert_file=self.tls.cert,
                 export_tls_key_file=self.tls.key,
                 export_tls_ca_file=self.tls.ca,
                 export_tls_hostname='10.0.0.1')
        self.assertEqual(self.tls.files('10.0.0.1'),
                         dm_tls.from_opts(self.opts, 'tls'))

    def test_none_warns(self):
        log = self.useFixture(fixtures.FakeLogger())
        self.assertIsNone(dm_tls.from_opts(self.opts, 'none'))
        self.assertIn('export_auth = none', log.output)

    def test_key_option_is_secret(self):
        opt = [o for o in dm_opts.dm_opts
               if o.name == 'export_tls_key_file'][0]
        self.assertTrue(opt.secret)


class TestExportTls(test_export.ExportTestCase):
    """The exporter and the attacher pass their TlsFiles through."""

    def setUp(self):
        super().setUp()
        self.tls = self.useFixture(TlsFilesFixture())

    def test_export_and_attach_over_tls(self):
        t = self.tls
        exporter = dm_export.NbdExporter(self.engine, '127.0.0.1',
                                         ['127.0.0.1'], tls=t.files())
        exp = exporter.export('img', [10809])
        with open('%s/%sexp-img-10809.conf' % (self.run_dir, self.p)) as f:
            conf = f.read()
        self.assertIn('force_tls = true\ncertfile = %s\nkeyfile = %s\n'
                      'cacertfile = %s\n' % (t.cert, t.key, t.ca), conf)
        self.assertIn('tlsonly = true\n', conf)
        attacher = dm_multipath.MultipathAttacher(
            dev_name=nbd_fakes.dev_name, tls=t.files('parent'))
        attacher.attach('img', exp.paths)
        self.assertEqual([
            'nbd-client 127.0.0.1 10809 /dev/nbd0 -name %sexp-img-10809 '
            '-readonly -timeout 30 -certfile %s -keyfile %s -cacertfile %s '
            '-tlshostname parent' % (self.p, t.cert, t.key, t.ca),
            'dmsetup create fbmp-img'],
            [c for c, _s in self.kernel.commands()])

    def test_defaults_stay_plain(self):
        self.exporter.export('img', [10809])
        with open('%s/%sexp-img-10809.conf' % (self.run_dir, self.p)) as f:
            self.assertNotIn('tls', f.read())
        self.assertIsNone(self.exporter.tls)
        self.assertIsNone(self.attacher.tls)
