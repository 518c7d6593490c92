"""Unit tests of the qemu engine: exact QMP and qemu-img sequences."""

import json
import os
import stat

import fixtures
from oslo_config import cfg
from oslotest import base

from fastboot_nova.conf import fastboot as fastboot_conf
from fastboot_nova import exception
from fastboot_nova.storage.qemu import cachegroup
from fastboot_nova.storage.qemu import engine as engine_mod
from tests.unit import fakes
from tests.unit import qemu_fakes

SIZE = 1 << 20


class EngineTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        fastboot_conf.register_opts(self.conf)
        self.conf([], default_config_files=[])
        self.tmp = self.useFixture(fixtures.TempDir(rootdir='/tmp')).path
        self.state_path = os.path.join(self.tmp, 's')
        self.origin = qemu_fakes.write_origin(self.tmp)
        self.model = qemu_fakes.FakeDaemonModel()
        self.relay_model = qemu_fakes.FakeDaemonModel()
        self.model.sizes[self.nodes('img').source(0, 0)] = SIZE
        self.execute = qemu_fakes.FakeExecutor()
        self.engine = self.make_engine()

    def make_engine(self):
        return engine_mod.QemuEngine(
            self.conf, state_path=self.state_path, execute=self.execute,
            daemon=qemu_fakes.FakeDaemon(self.model),
            relay_daemon=qemu_fakes.FakeDaemon(self.relay_model))

    @staticmethod
    def nodes(image):
        return cachegroup.Nodes.of(image)

    def qmp_calls(self, *names):
        return [c for c in self.model.calls if not names or c[0] in names]


class TestCreate(EngineTestCase):

    def test_first_create_builds_the_cache_graph(self):
        disk = self.engine.create('vm1', 'img', self.origin)
        n = self.nodes('img')
        origin = n.source(0, 0)
        sock = os.path.join(self.state_path, 'nbd.sock')
        self.assertEqual([
            ('nbd-server-start', {'addr': {'type': 'unix',
                                           'data': {'path': sock}}}),
            ('query-block-exports', {}) if False else
            ('blockdev-add', {'driver': 'file', 'node-name': origin,
                              'filename': self.origin, 'read-only': True,
                              'auto-read-only': False}),
            ('query-named-block-nodes', {'flat': True}),
            ('blockdev-add', {'driver': 'file', 'node-name': n.cache_file,
                              'filename': os.path.join(
                                  self.state_path, 'caches', 'img.qcow2')}),
            ('blockdev-add', {'driver': 'qcow2', 'node-name': n.cache,
                              'file': n.cache_file, 'backing': origin}),
            ('blockdev-add', {'driver': 'copy-on-read', 'node-name': n.cor,
                              'file': n.cache}),
            ('block-export-add', {'type': 'nbd', 'id': n.export,
                                  'node-name': n.cor, 'name': 'img',
                                  'writable': False}),
        ], self.model.calls)
        cache = os.path.join(self.state_path, 'caches', 'img.qcow2')
        overlay = os.path.join(self.state_path, 'vms', 'vm1.qcow2')
        backing = ('json:{"driver":"raw","file":{"driver":"nbd",'
                   '"export":"img","reconnect-delay":5,"server":{"path":"%s",'
                   '"type":"unix"}}}' % sock)
        self.assertEqual([
            ['qemu-img', 'info', '--output=json', '-U', self.origin],
            ['qemu-img', 'create', '-q', '-f', 'qcow2',
             '-o', 'cluster_size=65536', '-u', '-b', self.origin,
             '-F', 'raw', cache + '.tmp', str(SIZE)],
            ['qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', backing,
             '-F', 'raw', os.path.join(self.state_path, 'vms',
                                       '.vm1.qcow2.tmp'), str(SIZE)],
        ], self.execute.commands)
        self.assertEqual(overlay, disk.path)
        self.assertTrue(os.path.exists(overlay))
        self.assertTrue(os.path.exists(cache))
        st = self.engine.state.read()
        self.assertEqual('ready', st['vms']['vm1']['status'])
        self.assertEqual({'location': self.origin, 'format': 'raw',
                          'virtual_size': SIZE, 'prefetched': False,
                          'parents': [], 'generation': 0},
                         {k: v for k, v in st['images']['img'].items()
                          if k != 'added_at'})

    def test_add_image_without_a_vm_is_idempotent(self):
        image = self.engine.add_image('img', self.origin)
        self.assertEqual(('img', (), SIZE),
                         (image.name, image.vms, image.virtual_size))
        self.engine.add_image('img', self.origin)
        self.assertEqual(1, len(self.qmp_calls('block-export-add')))
        self.assertEqual([], os.listdir(self.engine.vm_dir))

    def test_second_create_reuses_the_cache(self):
        self.engine.create('vm1', 'img', self.origin)
        del self.model.calls[:]
        self.engine.create('vm2', 'img', self.origin)
        self.assertEqual([('query-block-exports', {})], self.model.calls)
        self.assertEqual(1, len(self.execute.img_commands('info')))

    def test_cluster_size_option(self):
        self.conf.set_override('cache_cluster_size', 4096, 'fastboot_qemu')
        self.engine.create('vm1', 'img', self.origin)
        cache_create = self.execute.img_commands('create')[0]
        self.assertIn('cluster_size=4096', cache_create)

    def test_failed_export_rolls_everything_back(self):
        self.model.fail['block-export-add'] = 'boom'
        self.assertRaises(exception.QMPError, self.engine.create, 'vm1',
                          'img', self.origin)
        n = self.nodes('img')
        dels = [c[1]['node-name'] for c in self.qmp_calls('blockdev-del')]
        self.assertEqual([n.cor, n.cache, n.cache_file, n.source(0, 0)],
                         dels)
        self.assertEqual({}, self.model.nodes)
        self.assertEqual([], os.listdir(self.engine.cache_dir))
        self.assertEqual([], os.listdir(self.engine.vm_dir))
        st = self.engine.state.read()
        self.assertEqual(({}, {}), (st['images'], st['vms']))

    def test_unreachable_origin(self):
        self.model.fail['blockdev-add'] = 'Failed to connect'
        e = self.assertRaises(exception.OriginUnavailable,
                              self.engine.create, 'vm1', 'img',
                              'nbd://127.0.0.1:1/x')
        self.assertIn('Failed to connect', str(e))
        self.assertEqual({}, self.model.nodes)
        self.assertEqual([], self.execute.img_commands('create'))

    def test_failed_overlay_leaves_no_vm(self):
        real = self.execute.__call__

        def fail_overlay(*cmd, **kw):
            if 'cluster_size=65536' not in cmd and cmd[1] == 'create':
                raise exception.CommandFailed(cmd='qemu-img', code=1,
                                              stderr='disk full')
            return real(*cmd, **kw)

        self.engine.img.execute = fail_overlay
        self.assertRaises(exception.CommandFailed, self.engine.create, 'vm1',
                          'img', self.origin)
        self.assertEqual({}, self.engine.state.read()['vms'])
        self.assertEqual([], os.listdir(self.engine.vm_dir))
        # The image stays cached: it is valid and the next VM will use it.
        self.assertIn('img', self.engine.state.read()['images'])

    def test_unsupported_origin_format(self):
        self.execute.info[self.origin] = {'format': 'vmdk'}
        self.assertRaises(exception.InvalidLocation, self.engine.create,
                          'vm1', 'img', self.origin)
        self.assertEqual({}, self.model.nodes)

    def test_image_conflict(self):
        self.engine.create('vm1', 'img', self.origin)
        other = qemu_fakes.write_origin(self.useFixture(
            fixtures.TempDir()).path)
        self.assertRaises(exception.ImageConflict, self.engine.create, 'vm2',
                          'img', other)

    def test_missing_export_is_restored_on_create(self):
        self.engine.create('vm1', 'img', self.origin)
        self.model.exports.clear()
        self.model.nodes.clear()
        self.engine.create('vm2', 'img', self.origin)
        self.assertIn(self.nodes('img').export, self.model.exports)


class TestExportAddress(EngineTestCase):

    def setUp(self):
        super().setUp()
        self.conf.set_override('export_auth', 'none', 'fastboot')

    def relay_calls(self, *names):
        return [c for c in self.relay_model.calls
                if not names or c[0] in names]

    def test_tcp_port_range_skips_busy_ports(self):
        self.conf.set_override('export_address', '0.0.0.0', 'fastboot')
        self.conf.set_override('export_port_min', 7000, 'fastboot')
        self.conf.set_override('export_port_max', 7002, 'fastboot')
        self.relay_model.fail['nbd-server-start'] = 'Address already in use'
        self.engine = self.make_engine()
        self.engine.create('vm1', 'img', self.origin)
        starts = [c[1]['addr']['data'] for c in
                  self.relay_calls('nbd-server-start')]
        self.assertEqual([{'host': '0.0.0.0', 'port': '7000'},
                          {'host': '0.0.0.0', 'port': '7001'}], starts)
        self.assertEqual('nbd://127.0.0.1:7001/img',
                         self.engine.export_url('img'))
        # After a relay restart the old port is tried first.
        self.relay_model.running = False
        del self.relay_model.calls[:]
        self.engine.reconcile()
        self.assertEqual('7001', self.relay_calls('nbd-server-start')[0][1]
                         ['addr']['data']['port'])

    def test_no_free_port(self):
        self.conf.set_override('export_address', '127.0.0.1', 'fastboot')
        self.conf.set_override('export_port_min', 7000, 'fastboot')
        self.conf.set_override('export_port_max', 7000, 'fastboot')
        self.relay_model.fail['nbd-server-start'] = 'Address already in use'
        self.engine = self.make_engine()
        e = self.assertRaises(exception.DaemonError, self.engine.create,
                              'vm1', 'img', self.origin)
        self.assertIn('no free export port', str(e))
        # Not left half set up: the next operation tries again.
        self.assertFalse(self.relay_model.running)
        self.engine.create('vm1', 'img', self.origin)
        self.assertEqual({'host': '127.0.0.1', 'port': '7000'},
                         self.relay_model.nbd['addr']['data'])

    def test_inverted_port_range(self):
        self.conf.set_override('export_port_min', 7001, 'fastboot')
        self.conf.set_override('export_port_max', 7000, 'fastboot')
        self.assertRaises(exception.FastbootException, self.make_engine)

    def test_state_path_too_long_for_sockets(self):
        self.state_path = '/tmp/' + 'x' * 100
        self.assertRaises(exception.InvalidDestination, self.make_engine)


class TestSpace(EngineTestCase):

    def test_cache_size_limit_counts_virtual_sizes(self):
        self.conf.set_override('cache_size_limit', 1, 'fastboot_qemu')  # MiB
        self.engine.create('vm1', 'img', self.origin)  # exactly 1 MiB
        self.model.sizes[self.nodes('img2').source(0, 0)] = SIZE
        e = self.assertRaises(exception.CacheFull, self.engine.create,
                              'vm2', 'img2', self.origin)
        self.assertIn('1048576 bytes needed, 0 available', str(e))
        self.assertNotIn(self.nodes('img2').source(0, 0), self.model.nodes)

    def test_free_space_counts_what_caches_may_still_take(self):
        self.engine.create('vm1', 'img', self.origin)
        self.model.sizes[self.nodes('img2').source(0, 0)] = SIZE
        real = os.statvfs

        def statvfs(path):
            st = real(path)
            # 1.5 MiB free, but img may still grow by ~1 MiB.
            blocks = (3 * SIZE // 2) // st.f_frsize
            return os.statvfs_result(
                (st.f_bsize, st.f_frsize, st.f_blocks, blocks, blocks,
                 st.f_files, st.f_ffree, st.f_favail, st.f_flag,
                 st.f_namemax))

        self.useFixture(fixtures.MonkeyPatch('os.statvfs', statvfs))
        self.assertRaises(exception.CacheFull, self.engine.create, 'vm2',
                          'img2', self.origin)


class TestVmVerbs(EngineTestCase):

    def setUp(self):
        super().setUp()
        self.disk = self.engine.create('vm1', 'img', self.origin)

    def test_destroy(self):
        self.engine.destroy('vm1')
        self.assertFalse(os.path.exists(self.disk.path))
        self.assertEqual([], self.engine.list())
        self.assertRaises(exception.VmNotFound, self.engine.destroy, 'vm1')

    def test_destroy_in_use(self):
        self.execute.in_use.add(self.disk.path)
        self.assertRaises(exception.VmDiskInUse, self.engine.destroy, 'vm1')
        self.assertTrue(os.path.exists(self.disk.path))
        self.assertEqual(['vm1'], [d.name for d in self.engine.list()])

    def test_snapshot_rebases_onto_the_origin(self):
        target_dir = self.useFixture(fixtures.TempDir()).path
        path = self.engine.snapshot('vm1', 'snap', target_dir)
        self.assertEqual(os.path.join(target_dir, 'snap.qcow2'), path)
        self.assertEqual(
            [['qemu-img', 'rebase', '-q', '-u', '-f', 'qcow2', '-b',
              self.origin, '-F', 'raw',
              os.path.join(target_dir, '.snap.qcow2.tmp')]],
            self.execute.img_commands('rebase'))
        self.assertRaises(exception.InvalidDestination, self.engine.snapshot,
                          'vm1', 'snap', target_dir)
        self.assertRaises(exception.InvalidDestination, self.engine.snapshot,
                          'vm1', 'snap2', '/nonexistent')

    def test_clone(self):
        clone = self.engine.clone('vm1', 'vm2')
        self.assertEqual('img', clone.image)
        self.assertEqual(['vm1', 'vm2'],
                         [d.name for d in self.engine.list()])
        self.assertRaises(exception.VmExists, self.engine.clone, 'vm1',
                          'vm2')
        self.assertRaises(exception.VmExists, self.engine.clone, 'vm1',
                          'vm1')
        self.assertRaises(exception.VmNotFound, self.engine.clone, 'nope',
                          'vm3')

    def test_get_disk_and_get_image(self):
        self.engine.clone('vm1', 'vm2')
        self.assertEqual(self.engine.list()[1], self.engine.get_disk('vm2'))
        self.assertEqual(self.engine.list_images()[0],
                         self.engine.get_image('img'))
        self.assertEqual(('vm1', 'vm2'), self.engine.get_image('img').vms)
        for bad in ('nope', '../vm1', 'x' * 100):
            self.assertIsNone(self.engine.get_disk(bad))
            self.assertIsNone(self.engine.get_image(bad))

    def test_migrate_refuses_itself_and_missing_dirs(self):
        self.assertRaises(exception.InvalidDestination, self.engine.migrate,
                          'vm1', self.state_path)
        self.assertRaises(exception.InvalidDestination, self.engine.migrate,
                          'vm1', '/nonexistent')
        self.assertEqual(['vm1'], [d.name for d in self.engine.list()])

    def test_list_images(self):
        image, = self.engine.list_images()
        self.assertEqual(('img', self.origin, SIZE, ('vm1',)),
                         (image.name, image.location, image.virtual_size,
                          image.vms))
        self.assertTrue(image.export_url.startswith('nbd+unix:///img?'))

    def test_remove_image_in_use_and_unknown(self):
        self.assertRaises(exception.ImageInUse, self.engine.remove_image,
                          'img')
        self.assertRaises(exception.ImageNotFound, self.engine.remove_image,
                          'other')
        self.engine.destroy('vm1')
        self.engine.remove_image('img')
        self.assertEqual({}, self.model.nodes)
        self.assertEqual({}, self.model.exports)


class TestPrefetch(EngineTestCase):

    def test_prefetch_streams_and_drops_the_origin(self):
        self.conf.set_override('direct_complete_cache', False,
                               group='fastboot_qemu')
        self.engine.create('vm1', 'img', self.origin)
        seen = []
        image = self.engine.prefetch('img', lambda d, t: seen.append((d, t)))
        n = self.nodes('img')
        self.assertEqual([('block-stream', {'device': n.cache,
                                            'job-id': n.job,
                                            'auto-dismiss': False})],
                         self.qmp_calls('block-stream'))
        self.assertEqual([(100, 100)], seen)
        self.assertEqual([n.cache_file, n.cache, n.cor],
                         list(self.model.nodes))
        self.assertEqual(SIZE, image.cached_bytes)
        self.assertTrue(self.engine.state.read()['images']['img']
                        ['prefetched'])
        # A restart then re-creates the cache without any origin.
        self.model.running = False
        self.engine.reconcile()
        self.assertEqual([n.cache_file, n.cache, n.cor],
                         list(self.model.nodes))
        self.assertIsNone(self.model.nodes[n.cache]['backing'])

    def test_prefetch_seals_the_cache(self):
        self.engine.create('vm1', 'img', self.origin)
        self.engine.prefetch('img')
        n = self.nodes('img')
        cache = os.path.join(self.state_path, 'caches', 'img.qcow2')
        # Read-only, no copy-on-read filter, no source: the daemon holds
        # only a shared lock and VMs may open the file themselves.
        self.assertEqual([n.cache_file, n.cache], list(self.model.nodes))
        self.assertTrue(self.model.nodes[n.cache_file]['read-only'])
        self.assertTrue(self.model.nodes[n.cache]['read-only'])
        self.assertIsNone(self.model.nodes[n.cache]['backing'])
        self.assertEqual(n.cache, self.model.exports[n.export]['node-name'])
        self.assertEqual(
            [['qemu-img', 'rebase', '-q', '-u', '-f', 'qcow2', '-b', '',
              cache]], self.execute.img_commands('rebase'))
        self.assertTrue(self.engine.state.read()['images']['img']['sealed'])
        # A VM created now has the cache file as its qcow2 backing.
        disk = self.engine.create('vm2', 'img', self.origin)
        self.assertEqual(
            ['qemu-img', 'create', '-q', '-f', 'qcow2', '-u', '-b', cache,
             '-F', 'qcow2'], self.execute.img_commands('create')[-1][:10])
        self.assertTrue(disk.path.endswith('vm2.qcow2'))
        # Prefetching again changes nothing.
        calls = len(self.model.calls)
        self.engine.prefetch('img')
        self.assertEqual([], self.qmp_calls('block-export-del')[
            1:] + [c for c in self.model.calls[calls:]
                   if c[0] != 'query-block-exports'
                   and c[0] != 'query-named-block-nodes'])
        # A restart restores the sealed graph; the idle VM still on the
        # export is re-pointed at the file.
        self.execute.info[disk.path] = {'format': 'qcow2',
                                        'backing-filename': cache}
        self.model.running = False
        report = self.engine.reconcile()
        self.assertEqual([n.cache_file, n.cache], list(self.model.nodes))
        self.assertTrue(self.model.nodes[n.cache]['read-only'])
        self.assertEqual(['vm1'], report.rebased_disks)
        rebase = self.execute.img_commands('rebase')[-1]
        self.assertEqual([cache, '-F', 'qcow2'], rebase[-4:-1])

    def test_seal_off_keeps_vms_on_the_export(self):
        self.conf.set_override('direct_complete_cache', False,
                               group='fastboot_qemu')
        self.engine.create('vm1', 'img', self.origin)
        self.engine.prefetch('img')
        self.engine.create('vm2', 'img', self.origin)
        self.assertFalse(self.engine.state.read()['images']['img'].get(
            'sealed'))
        self.assertTrue(self.execute.img_commands('create')[-1][7]
                        .startswith('json:{"driver":"raw"'))

    def test_failed_job(self):
        self.engine.create('vm1', 'img', self.origin)

        def failing_stream(**args):
            self.model.jobs[args['job-id']] = {
                'id': args['job-id'], 'status': 'concluded',
                'current-progress': 5, 'total-progress': 100,
                'error': 'Input/output error'}
            return {}

        self.useFixture(fixtures.MonkeyPatch(
            'tests.unit.qemu_fakes.FakeQMP._block_stream',
            lambda self, **a: failing_stream(**a)))
        e = self.assertRaises(exception.DaemonError, self.engine.prefetch,
                              'img')
        self.assertIn('Input/output error', str(e))
        self.assertFalse(self.engine.state.read()['images']['img']
                         ['prefetched'])

    def test_unknown_image(self):
        self.assertRaises(exception.ImageNotFound, self.engine.prefetch,
                          'img')


class TestReparent(EngineTestCase):

    def setUp(self):
        super().setUp()
        self.engine.create('vm1', 'img', self.origin)
        del self.model.calls[:]
        self.n = self.nodes('img')

    def test_parent_and_alternate_under_a_fifo_quorum(self):
        self.engine.reparent('img', 'nbd://10.0.0.2/img',
                             ['nbd://10.0.0.3:10810/img', self.origin])
        n = self.n
        adds = [c[1] for c in self.qmp_calls('blockdev-add')]
        self.assertEqual([
            {'driver': 'nbd', 'node-name': n.source(1, 0),
             'server': {'type': 'inet', 'host': '10.0.0.2',
                        'port': '10809'},
             'export': 'img', 'read-only': True, 'reconnect-delay': 0},
            {'driver': 'nbd', 'node-name': n.source(1, 1),
             'server': {'type': 'inet', 'host': '10.0.0.3',
                        'port': '10810'},
             'export': 'img', 'read-only': True, 'reconnect-delay': 0},
            {'driver': 'file', 'node-name': n.source(1, 2),
             'filename': self.origin, 'read-only': True,
             'auto-read-only': False},
            {'driver': 'quorum', 'node-name': n.quorum(1),
             'children': [n.source(1, 0), n.source(1, 1), n.source(1, 2)],
             'vote-threshold': 1, 'read-pattern': 'fifo',
             'read-only': True},
        ], adds)
        self.assertEqual([('blockdev-reopen', {'options': [{
            'driver': 'qcow2', 'node-name': n.cache,
            'file': n.cache_file, 'backing': n.quorum(1)}]})],
            self.qmp_calls('blockdev-reopen'))
        # The old origin node is gone, the new generation stays.
        self.assertEqual([('blockdev-del', {'node-name': n.source(0, 0)})],
                         self.qmp_calls('blockdev-del'))
        entry = self.engine.state.read()['images']['img']
        self.assertEqual((['nbd://10.0.0.2:10809/img',
                           'nbd://10.0.0.3:10810/img'], 1),
                         (entry['parents'], entry['generation']))

    def test_back_to_the_origin_alone(self):
        self.engine.reparent('img', 'nbd://10.0.0.2/img')
        del self.model.calls[:]
        self.engine.reparent('img', self.origin)
        self.assertEqual([self.n.source(0, 0)],
                         [c[1]['node-name'] for c in
                          self.qmp_calls('blockdev-add')])
        self.assertEqual([], self.engine.state.read()['images']['img']
                         ['parents'])
        self.assertEqual({self.n.source(0, 0), self.n.cache,
                          self.n.cache_file, self.n.cor},
                         set(self.model.nodes))

    def test_failed_reopen_keeps_the_old_sources(self):
        self.model.fail['blockdev-reopen'] = 'Permission conflict'
        self.assertRaises(exception.QMPError, self.engine.reparent, 'img',
                          'nbd://10.0.0.2/img')
        self.assertEqual({self.n.source(0, 0), self.n.cache,
                          self.n.cache_file, self.n.cor},
                         set(self.model.nodes))
        self.assertEqual(0, self.engine.state.read()['images']['img']
                         ['generation'])

    def test_unreachable_parent_is_left_out(self):
        self.model.fail['blockdev-add'] = 'Connection refused'
        self.engine.reparent('img', 'nbd://10.0.0.2/img')
        self.assertEqual(self.n.source(1, 1),
                         self.qmp_calls('blockdev-reopen')[0][1]['options']
                         [0]['backing'])

    def test_restart_restores_the_parents(self):
        self.engine.reparent('img', 'nbd://10.0.0.2/img')
        self.model.running = False
        self.engine.reconcile()
        self.assertEqual(self.n.quorum(1),
                         self.model.nodes[self.n.cache]['backing'])

    def test_reconcile_drops_a_past_generation(self):
        self.model.nodes[self.n.source(1, 0)] = {}
        report = self.engine.reconcile()
        self.assertEqual([self.n.source(1, 0)], report.removed_orphan_nodes)

    def test_bad_location(self):
        self.assertRaises(exception.InvalidLocation, self.engine.reparent,
                          'img', 'http://x/img')
        self.assertRaises(exception.ImageNotFound, self.engine.reparent,
                          'other', self.origin)


class TestReconcile(EngineTestCase):

    def test_daemon_restart_restores_every_image(self):
        self.model.sizes[self.nodes('b').source(0, 0)] = SIZE
        self.engine.create('vm1', 'img', self.origin)
        self.engine.create('vm2', 'b', self.origin)
        self.model.running = False
        report = self.engine.reconcile()
        self.assertTrue(report.daemon_restarted)
        self.assertEqual(['b', 'img'], report.restored_images)
        self.assertEqual({self.nodes('b').export, self.nodes('img').export},
                         set(self.model.exports))

    def test_unrestorable_image_is_reported_not_fatal(self):
        self.engine.create('vm1', 'img', self.origin)
        os.unlink(self.origin)
        self.model.running = False
        report = self.engine.reconcile()
        self.assertEqual(['img'], report.failed_images)
        self.assertEqual(['vm1'], [d.name for d in self.engine.list()])

    def test_disks_are_repointed_when_the_export_moves(self):
        disk = self.engine.create('vm1', 'img', self.origin)
        self.execute.info[disk.path] = {'format': 'qcow2',
                                        'backing-filename': 'json:{}'}
        report = self.engine.reconcile()
        self.assertEqual(['vm1'], report.rebased_disks)
        rebase, = self.execute.img_commands('rebase')
        self.assertTrue(rebase[-4].startswith('json:{"driver":"raw"'))

    def test_clean_host_reports_clean(self):
        disk = self.engine.create('vm1', 'img', self.origin)
        self.execute.info[disk.path] = {
            'format': 'qcow2',
            'backing-filename': local_backing(self.state_path, 'img')}
        self.assertTrue(self.engine.reconcile().clean)


def local_backing(state_path, image, reconnect_delay=5):
    """The backing a healthy disk records, spelled out.

    Not the engine's own ``_backing_spec``: that is what is under test.
    """
    return ('json:{"driver":"raw","file":{"driver":"nbd","export":"%s",'
            '"reconnect-delay":%d,"server":{"path":"%s/nbd.sock",'
            '"type":"unix"}}}' % (image, reconnect_delay, state_path))


class TestStateFile(EngineTestCase):

    def test_corrupt_state_is_an_error_not_a_reset(self):
        self.engine.create('vm1', 'img', self.origin)
        with open(self.engine.state.path, 'w') as f:
            f.write('[]')
        self.assertRaises(exception.StateError, self.engine.list)
        with open(self.engine.state.path, 'w') as f:
            json.dump({'version': 99}, f)
        e = self.assertRaises(exception.StateError, self.engine.list)
        self.assertIn('version 99', str(e))

    def test_writes_leave_no_temporary_files(self):
        self.engine.create('vm1', 'img', self.origin)
        self.engine.destroy('vm1')
        leftovers = [n for n in os.listdir(self.state_path)
                     if n.startswith('.state.')]
        self.assertEqual([], leftovers)

    def test_failed_update_writes_nothing(self):
        self.engine.create('vm1', 'img', self.origin)
        before = open(self.engine.state.path).read()
        try:
            with self.engine.state.update() as st:
                st['vms'].clear()
                raise RuntimeError('interrupted')
        except RuntimeError:
            pass
        self.assertEqual(before, open(self.engine.state.path).read())


class TestStateTrust(EngineTestCase):
    """Security review item 3: paths come from names, never state.json."""

    def setUp(self):
        super().setUp()
        self.disk = self.engine.create('vm1', 'img', self.origin)
        self.victim = os.path.join(self.tmp, 'victim')
        with open(self.victim, 'w') as f:
            f.write('precious')

    def edit_state(self, change):
        return fakes.edit_state(self.state_path, change)

    def point_vm1_at_the_victim(self):
        return self.edit_state(
            lambda d: d['vms']['vm1'].update(path=self.victim))

    def assertNothingDone(self, before):
        with open(self.victim) as f:
            self.assertEqual('precious', f.read())
        self.assertTrue(os.path.exists(self.disk.path))
        self.assertEqual(before, self.engine.state.read())

    def test_destroy_with_an_edited_path_deletes_nothing(self):
        before = self.point_vm1_at_the_victim()
        e = self.assertRaises(exception.StateError, self.engine.destroy,
                              'vm1')
        self.assertIn('changed outside fastboot', str(e))
        self.assertIn(self.victim, str(e))
        self.assertNothingDone(before)

    def test_other_verbs_with_an_edited_path_touch_nothing(self):
        before = self.point_vm1_at_the_victim()
        target_dir = self.useFixture(fixtures.TempDir()).path
        for call in (lambda: self.engine.clone('vm1', 'vm2'),
                     lambda: self.engine.snapshot('vm1', 's', target_dir),
                     lambda: self.engine.get_disk('vm1')):
            self.assertRaises(exception.StateError, call)
        self.assertEqual([], os.listdir(target_dir))
        self.assertNothingDone(before)

    def test_list_and_reconcile_skip_a_corrupt_entry(self):
        before = self.point_vm1_at_the_victim()
        self.assertEqual([], self.engine.list())
        report = self.engine.reconcile()
        self.assertEqual(['vm1'], report.corrupt_entries)
        self.assertNothingDone(before)

    def test_a_traversing_vm_name_in_the_state_is_corruption(self):
        def plant(d):
            d['vms']['../../victim'] = dict(d['vms']['vm1'],
                                            path=self.victim)
        plant_state = self.edit_state(plant)
        report = self.engine.reconcile()
        self.assertIn('../../victim', report.corrupt_entries)
        self.assertEqual(['vm1'], [d.name for d in self.engine.list()])
        with open(self.victim) as f:
            self.assertEqual('precious', f.read())
        self.assertEqual(plant_state['vms'],
                         self.engine.state.read()['vms'])

    def test_disks_and_clones_are_0600(self):
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(self.disk.path).st_mode))
        clone = self.engine.clone('vm1', 'vm2')
        self.assertEqual(0o600, stat.S_IMODE(os.stat(clone.path).st_mode))
        cache = os.path.join(self.state_path, 'caches', 'img.qcow2')
        self.assertEqual(0o600, stat.S_IMODE(os.stat(cache).st_mode))

    def test_a_planted_temporary_symlink_is_not_followed(self):
        os.symlink(self.victim, os.path.join(self.state_path, 'vms',
                                             '.vm3.qcow2.tmp'))
        self.engine.create('vm3', 'img', self.origin)
        with open(self.victim) as f:
            self.assertEqual('precious', f.read())

    def test_symlinked_data_directories_are_refused(self):
        for name in ('vms', 'caches'):
            state_path = os.path.join(self.tmp, 'other-' + name)
            elsewhere = os.path.join(self.tmp, 'elsewhere-' + name)
            os.makedirs(elsewhere)
            os.makedirs(state_path)
            os.symlink(elsewhere, os.path.join(state_path, name))
            e = self.assertRaises(
                exception.InvalidDestination, engine_mod.QemuEngine,
                self.conf, state_path=state_path, execute=self.execute,
                daemon=qemu_fakes.FakeDaemon(self.model),
                relay_daemon=qemu_fakes.FakeDaemon(self.relay_model))
            self.assertIn('symbolic link', str(e))
            self.assertEqual([], os.listdir(elsewhere))
