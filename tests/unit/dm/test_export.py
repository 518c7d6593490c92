"""NbdExporter and MultipathAttacher against recording fakes."""

import fixtures
from oslo_config import cfg
import testtools

from fastboot_nova.conf import dm as dm_opts
from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
import fastboot_nova.privsep.dm as dm
from fastboot_nova.storage.dm import engine as dm_engine
from fastboot_nova.storage.dm import export as dm_export
from fastboot_nova.storage.dm import multipath as dm_multipath
from tests.unit.dm import fakes
from tests.unit.dm import nbd_fakes

ORIGIN = '/dev/vdb'
SSD = '/dev/nvme0n1p2'
SECTORS = 131072


class ExportTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        fx = self.useFixture(nbd_fakes.NbdFixture(
            {ORIGIN: SECTORS, SSD: 8 * SECTORS}, export_sectors=SECTORS))
        self.kernel = fx.kernel
        self.run_dir = fx.run_dir
        conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(conf)
        dm_opts.register_opts(conf)
        conf([])
        conf.set_override('cache_device', SSD, 'fastboot_dm')
        self.engine = dm_engine.DmEngine(
            conf, state_path=self.useFixture(fixtures.TempDir()).path,
            devices=fakes.FakeDevices(self.kernel))
        self.engine.add_image('img', ORIGIN)
        self.exporter = dm_export.NbdExporter(self.engine, '127.0.0.1',
                                              ['127.0.0.1'])
        self.attacher = dm_multipath.MultipathAttacher(
            dev_name=nbd_fakes.dev_name)
        self.p = self.engine.prefix
        del self.kernel.calls[:]


class TestExporter(ExportTestCase):

    def test_export_serves_the_cache_device_per_port(self):
        exp = self.exporter.export('img', [10809, 10810])
        name = '%sexp-img-' % self.p
        self.assertEqual((('127.0.0.1', 10809, name + '10809'),
                          ('127.0.0.1', 10810, name + '10810')), exp.paths)
        self.assertEqual([name + '10809', name + '10810'],
                         sorted(self.kernel.servers))
        with open('%s/%s10809.conf' % (self.run_dir, name)) as f:
            self.assertIn('exportname = /dev/mapper/%scache-img\n'
                          'readonly = true\n' % self.p, f.read())
        # Again: the running servers are kept, nothing new started.
        self.exporter.export('img', [10809, 10810])
        self.assertEqual(2, len(self.kernel.spawns))

    def test_unexport(self):
        self.exporter.export('img', [10809, 10810])
        self.assertEqual([10810], self.exporter.unexport('img', [10810]))
        self.assertEqual([10809], self.exporter.unexport('img'))
        self.assertEqual({}, self.kernel.servers)
        self.assertEqual([], self.exporter.unexport('img'))

    def test_refusals_start_nothing(self):
        for image, ports in (('nosuch', [10809]), ('img', []),
                             ('img', 10809), ('img', [10809, 10809]),
                             ('img', [22]), ('../img', [10809])):
            self.assertRaises(exception.FastbootException,
                              self.exporter.export, image, ports)
        self.assertEqual([], self.kernel.spawns)
        self.assertRaises(dm.InvalidDmArgument, dm_export.NbdExporter,
                          self.engine, '127.0.0.1', ['everyone'])

    def test_failed_second_server_stops_the_first(self):
        real_spawn = self.kernel.spawn

        def spawn(argv, log):
            if len(self.kernel.spawns) == 1:
                self.kernel.spawn_code = 1
            return real_spawn(argv, log)

        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.privsep.nbd._spawn', spawn))
        self.assertRaises(exception.FastbootException, self.exporter.export,
                          'img', [10809, 10810])
        self.assertEqual({}, self.kernel.servers)


class TestAttacher(ExportTestCase):

    def setUp(self):
        super().setUp()
        self.exp = self.exporter.export('img', [10809, 10810])
        del self.kernel.calls[:]

    def test_attach_connects_each_path_and_builds_multipath(self):
        path = self.attacher.attach('img', self.exp.paths)
        self.assertEqual('/dev/mapper/fbmp-img', path)
        self.assertEqual([
            'nbd-client 127.0.0.1 10809 /dev/nbd0 -name %sexp-img-10809 '
            '-readonly -timeout 30' % self.p,
            'nbd-client 127.0.0.1 10810 /dev/nbd1 -name %sexp-img-10810 '
            '-readonly -timeout 30' % self.p,
            'dmsetup create fbmp-img'],
            [c for c, _s in self.kernel.commands()])
        self.assertEqual('0 131072 multipath 0 0 1 1 round-robin 0 2 1 '
                         '/dev/nbd0 1 /dev/nbd1 1\n',
                         self.kernel.tables['fbmp-img'])
        self.assertEqual(['/dev/nbd0', '/dev/nbd1'],
                         self.attacher.paths('img'))
        self.assertEqual(['fbmp-img'], self.attacher.list())

    def test_status_shows_a_failed_path(self):
        self.attacher.attach('img', self.exp.paths)
        self.kernel.failed_paths.add('/dev/nbd0')
        self.assertEqual([('/dev/nbd0', False), ('/dev/nbd1', True)],
                         [(p['path'], p['active'])
                          for p in self.attacher.status('img')])

    def test_multipath_device_is_a_child_origin(self):
        path = self.attacher.attach('img', self.exp.paths)
        self.kernel.host_devices[path] = SECTORS
        disk = self.engine.create('vm1', 'child-img', path)
        self.assertIn('linear %s 0' % path,
                      self.kernel.tables['%sorigin-child-img' % self.p])
        self.assertTrue(disk.path.startswith('/dev/mapper/'))

    def test_detach_removes_device_then_paths(self):
        self.attacher.attach('img', self.exp.paths)
        del self.kernel.calls[:]
        self.assertEqual(['/dev/nbd0', '/dev/nbd1'],
                         self.attacher.detach('img'))
        self.assertEqual(['dmsetup remove --retry fbmp-img',
                          'nbd-client -d /dev/nbd0',
                          'nbd-client -d /dev/nbd1'],
                         [c for c, _s in self.kernel.commands()])
        self.assertEqual([], self.attacher.list())
        self.assertEqual([], self.attacher.detach('img'))

    def test_failed_path_connect_disconnects_the_others(self):
        self.kernel.fail['nbd-client 127.0.0.1 10810'] = (1, 'refused')
        self.assertRaises(exception.FastbootException, self.attacher.attach,
                          'img', self.exp.paths)
        self.assertEqual({}, {d: c for d, c in self.kernel.nbd.items()
                              if c})
        self.assertNotIn('fbmp-img', self.kernel.tables)

    def test_bad_input_builds_nothing(self):
        good = self.exp.paths[0]
        self.attacher.attach('img', self.exp.paths)
        del self.kernel.calls[:]
        for name, paths in (
                ('img', self.exp.paths),            # attached already
                ('a;b', self.exp.paths),
                ('x', []),
                ('x', [good, good]),
                ('x', [('127.0.0.1; id', 10809, 'e')]),
                ('x', [('127.0.0.1', 10809, '$(id)')]),
                ('x', [('127.0.0.1', 'port', 'e')])):
            self.assertRaises(exception.FastbootException,
                              self.attacher.attach, name, paths)
        self.assertEqual([], self.kernel.commands())
