"""The dm backend in the hosts' tree: exports and parents, with fakes."""

import fixtures
from oslo_config import cfg
import testtools

from fastboot_nova.conf import dm as dm_opts
from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.storage.dm import engine as dm_engine
from tests.unit.dm import fakes
from tests.unit.dm import nbd_fakes

ORIGIN = '/dev/vdb'
SSD = '/dev/nvme0n1p2'
SECTORS = 131072
P1 = 'nbd://10.0.0.2:10809/fb-aaaa-exp-img-10809'
P2 = 'nbd://10.0.0.3:10809/fb-bbbb-exp-img-10809'


class TreeTestCase(testtools.TestCase):

    def setUp(self):
        super().setUp()
        fx = self.useFixture(nbd_fakes.NbdFixture(
            {ORIGIN: SECTORS, SSD: 8 * SECTORS}, export_sectors=SECTORS))
        self.kernel = fx.kernel
        self.conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(self.conf)
        dm_opts.register_opts(self.conf)
        self.conf([])
        self.conf.set_override('cache_device', SSD, 'fastboot_dm')
        self.conf.set_override('snapshot_type', 'snapshot', 'fastboot_dm')
        self.conf.set_override('export_auth', 'none', 'fastboot')
        self.state_path = self.useFixture(fixtures.TempDir()).path
        self.engine = self.new_engine()
        self.p = self.engine.prefix
        self.origin_dev = '%sorigin-img' % self.p

    def new_engine(self):
        return dm_engine.DmEngine(self.conf, state_path=self.state_path,
                                  devices=fakes.FakeDevices(self.kernel))

    def image(self):
        (image,) = self.engine.list_images()
        return image


class TestExports(TreeTestCase):

    def setUp(self):
        super().setUp()
        self.conf.set_override('export_address', '10.0.0.9', 'fastboot')
        self.conf.set_override('export_allowed', ['10.0.0.0/24'],
                               'fastboot_dm')

    def test_add_image_exports_it(self):
        self.engine.add_image('img', ORIGIN)
        name = '%sexp-img-10809' % self.p
        self.assertEqual('nbd://10.0.0.9:10809/' + name,
                         self.image().export_url)
        self.assertEqual([name], sorted(self.kernel.servers))
        self.assertIn(('10.0.0.9', 10809), self.kernel.listening)
        # The next image gets the next port.
        self.kernel.host_devices['/dev/vdc'] = SECTORS
        self.engine.add_image('img2', '/dev/vdc')
        self.assertEqual(10810, self.engine.state.read()['images']['img2']
                         ['export_port'])

    def test_ensure_exports_restarts_a_dead_server(self):
        self.engine.add_image('img', ORIGIN)
        self.assertEqual([], self.engine.ensure_exports())
        # The server died: no process, nothing listening.
        self.kernel.servers.clear()
        self.kernel.listening.clear()
        self.assertEqual(['img'], self.engine.ensure_exports())
        self.assertEqual(['%sexp-img-10809' % self.p],
                         sorted(self.kernel.servers))

    def test_remove_image_unexports_first(self):
        self.engine.add_image('img', ORIGIN)
        self.engine.remove_image('img')
        self.assertEqual({}, self.kernel.servers)
        self.assertEqual([], [n for n in self.kernel.tables
                              if n.startswith(self.p)])

    def test_tls_without_files_is_refused_but_the_cache_works(self):
        self.conf.set_override('export_auth', 'tls', 'fastboot')
        log = self.useFixture(fixtures.FakeLogger(level='ERROR'))
        self.engine.add_image('img', ORIGIN)
        self.assertIn('Could not export image img', log.output)
        self.assertIn('export_tls_cert_file', log.output)
        self.assertEqual({}, self.kernel.servers)
        self.assertIn('%scache-img' % self.p, self.kernel.tables)

    def test_no_export_address_serves_the_local_device(self):
        self.conf.clear_override('export_address', 'fastboot')
        self.engine.add_image('img', ORIGIN)
        self.assertEqual('/dev/mapper/%scache-img' % self.p,
                         self.image().export_url)
        self.assertEqual({}, self.kernel.servers)


class TestParents(TreeTestCase):

    def setUp(self):
        super().setUp()
        self.engine.create('vm1', 'img', ORIGIN)
        del self.kernel.calls[:]

    def test_reparent_to_parents_keeps_the_origin_as_last_group(self):
        self.engine.reparent('img', P1, [P2])
        self.assertEqual((P1, P2), self.image().parents)
        mp = '%smp-img.1' % self.p
        self.assertEqual(
            '0 131072 multipath 2 queue_mode bio 0 2 1 round-robin 0 2 1 '
            '/dev/nbd0 1 /dev/nbd1 1 round-robin 0 1 1 /dev/vdb 1\n',
            self.kernel.tables[mp])
        # The origin device stays dm-linear, now over the multipath.
        self.assertEqual('0 131072 linear /dev/mapper/%s 0\n' % mp,
                         self.kernel.tables[self.origin_dev])
        self.assertEqual(('10.0.0.2', 10809, 'fb-aaaa-exp-img-10809'),
                         self.kernel.nbd['/dev/nbd0'])
        # A dead parent stalls a read at most [fastboot_dm] parent_timeout.
        connects = [c for c, _ in self.kernel.calls
                    if c.startswith('nbd-client 10.0.0.')]
        self.assertEqual(2, len(connects))
        self.assertTrue(all(c.endswith('-readonly -timeout 10')
                            for c in connects), connects)
        # The cache and the VM above were never touched.
        self.assertEqual([], [c for c, _ in self.kernel.commands()
                              if '-cache-' in c or '-vm-' in c])

    def test_back_to_the_origin_disconnects(self):
        self.engine.reparent('img', P1, [P2])
        self.engine.reparent('img', ORIGIN)
        self.assertEqual([], [n for n in self.kernel.tables if '-mp-' in n])
        self.assertEqual((), self.image().parents)
        self.assertEqual('0 131072 linear /dev/vdb 0\n',
                         self.kernel.tables[self.origin_dev])
        self.assertEqual([], [d for d, c in self.kernel.nbd.items() if c])

    def test_new_primary_reuses_a_kept_path(self):
        self.engine.reparent('img', P1, [P2])
        self.engine.reparent('img', P2)
        self.assertEqual((P2,), self.image().parents)
        # P2's connection stayed; P1's went.
        self.assertEqual({'/dev/nbd1': ('10.0.0.3', 10809,
                                        'fb-bbbb-exp-img-10809')},
                         {d: c for d, c in self.kernel.nbd.items() if c})
        mp = '%smp-img.2' % self.p
        self.assertIn(' 1 /dev/nbd1 1 round-robin 0 1 1 /dev/vdb 1',
                      self.kernel.tables[mp])
        self.assertIn(mp, self.kernel.tables[self.origin_dev])
        # The first multipath device is gone.
        self.assertNotIn('%smp-img.1' % self.p, self.kernel.tables)

    def test_bad_parents_change_nothing(self):
        table = self.kernel.tables[self.origin_dev]
        for url in ('nbd://10.0.0.2:10809/a;b', 'nbd://host.name/x',
                    'nbd+unix:///x?socket=/tmp/s', '/dev/vdc',
                    'http://10.0.0.2/x'):
            self.assertRaises(exception.FastbootException,
                              self.engine.reparent, 'img', url)
        self.assertEqual(table, self.kernel.tables[self.origin_dev])
        self.assertEqual([], [d for d, c in self.kernel.nbd.items() if c])
        self.assertEqual((), self.image().parents)

    def test_parent_of_another_size_is_refused_and_disconnected(self):
        self.kernel.export_sectors = SECTORS * 2
        self.assertRaises(exception.FastbootException, self.engine.reparent,
                          'img', P1)
        self.assertEqual('0 131072 linear /dev/vdb 0\n',
                         self.kernel.tables[self.origin_dev])
        self.assertEqual([], [d for d, c in self.kernel.nbd.items() if c])

    def test_unknown_image(self):
        self.assertRaises(exception.ImageNotFound, self.engine.reparent,
                          'nope', P1)

    def test_restart_keeps_live_parents(self):
        self.engine.reparent('img', P1)
        report = self.new_engine().reconcile()
        self.assertTrue(report.clean, report)
        self.assertEqual((P1,), self.image().parents)

    def test_rebuilt_devices_start_on_the_origin(self):
        self.engine.reparent('img', P1)
        self.engine.deactivate()
        self.assertEqual([], [d for d, c in self.kernel.nbd.items() if c])
        self.new_engine().reconcile()
        self.assertEqual((), self.image().parents)
        self.assertEqual('0 131072 linear /dev/vdb 0\n',
                         self.kernel.tables[self.origin_dev])

    def test_remove_image_disconnects_the_parents(self):
        self.engine.reparent('img', P1)
        self.engine.destroy('vm1')
        self.engine.remove_image('img')
        self.assertEqual([], [d for d, c in self.kernel.nbd.items() if c])
        self.assertEqual([], [n for n in self.kernel.tables
                              if n.startswith(self.p)])


class TestPrivilegedCalls(TreeTestCase):
    """The two entrypoints of the tree: narrow, checked, nothing half-done."""

    def setUp(self):
        super().setUp()
        import fastboot_nova.privsep.dm as dm_priv
        import fastboot_nova.privsep.multipath as mp_priv
        self.dm, self.mp = dm_priv, mp_priv
        self.engine.add_image('img', ORIGIN)
        self.kernel.nbd['/dev/nbd0'] = ('10.0.0.2', 10809, 'x')
        del self.kernel.calls[:]

    def test_connect_timeout_bounds(self):
        import fastboot_nova.privsep.nbd as nbd_priv
        for timeout in (0, 301, '10', None):
            self.assertRaises(exception.FastbootException, nbd_priv.connect,
                              '10.0.0.2', 10809, 'x', timeout=timeout)
        self.assertEqual([], [c for c, _ in self.kernel.calls
                              if c.startswith('nbd-client')])

    def test_create_parents_multipath_refuses(self):
        for parents, fallback in ((['/dev/vdb'], ORIGIN),
                                  ('/dev/nbd0', ORIGIN),
                                  ([], ORIGIN),
                                  (['/dev/nbd0'], '/dev/vdb;x'),
                                  (['/dev/nbd1'], ORIGIN)):
            self.assertRaises(exception.FastbootException,
                              self.mp.create_parents_multipath, 'fb-mp',
                              parents, fallback)
        self.kernel.export_sectors = SECTORS + 8
        self.assertRaises(exception.FastbootException,
                          self.mp.create_parents_multipath, 'fb-mp',
                          ['/dev/nbd0'], ORIGIN)
        self.assertEqual([], [c for c, _ in self.kernel.commands()])

    def test_retarget_linear_refuses(self):
        cache = '%scache-img' % self.p
        origin = '%sorigin-img' % self.p
        self.kernel.host_devices['/dev/vdc'] = SECTORS * 2
        for name, device in ((cache, ORIGIN),            # not linear
                             (origin, '/dev/vdc'),       # other size
                             (origin, '/etc/passwd'),
                             ('a b', ORIGIN)):
            self.assertRaises(exception.FastbootException,
                              self.dm.retarget_linear, name, device)
        self.assertEqual([], [c for c, _ in self.kernel.commands()])

    def test_retarget_linear_failed_resume_keeps_the_old_table(self):
        origin = '%sorigin-img' % self.p
        old = self.kernel.tables[origin]
        self.kernel.host_devices['/dev/vdc'] = SECTORS
        self.kernel.fail['dmsetup resume'] = (1, 'resume ioctl failed')
        self.assertRaises(exception.FastbootException,
                          self.dm.retarget_linear, origin, '/dev/vdc')
        self.assertEqual(old, self.kernel.tables[origin])
        self.assertEqual({}, self.kernel.inactive)


class TestHostAgentOverDm(TreeTestCase):
    """The real HostAgent drives a DmEngine as it drives the qemu one."""

    def test_agent_follows_and_fails_over(self):
        from fastboot_nova.hierarchy import agent as agent_mod
        from tests.unit.hierarchy import test_agent

        self.conf.set_override('export_address', '10.0.0.9', 'fastboot')
        client = test_agent.FakeClient()
        client.assignment = test_agent.parents(('p1', P1), ('p2', P2), None)
        alive = {P1: True, P2: True}
        agent = agent_mod.HostAgent(self.engine, client, '10.0.0.9',
                                    probe=lambda url: alive[url])
        agent.attach('img', ORIGIN)
        self.assertEqual((P1, P2), self.image().parents)
        self.assertEqual(('report', 'img', False), client.calls[0])
        # p1 dies: the agent follows p2, the coordinator agrees.
        alive[P1] = False
        client.assignment = test_agent.parents(('p2', P2), None)
        agent.check()
        self.assertEqual((P2,), self.image().parents)
        self.assertEqual([], [n for n in self.kernel.tables
                              if n.endswith('mp-img.1')])
        # Every parent gone: back on the origin.
        alive[P2] = False
        client.assignment = test_agent.parents(None)
        agent.check()
        self.assertEqual((), self.image().parents)
        self.assertEqual('0 131072 linear /dev/vdb 0\n',
                         self.kernel.tables[self.origin_dev])
        self.assertEqual([], [d for d, c in self.kernel.nbd.items() if c])
