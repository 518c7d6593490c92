"""The qemu block engine against real qemu-img and qemu-storage-daemon."""

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from oslo_concurrency import lockutils

from fastboot_nova import exception
from fastboot_nova.storage.qemu import cachegroup
from tests.functional import base


class TestCacheGroup(base.TestCase):

    def setUp(self):
        super().setUp()
        self.origin = self.useFixture(base.OriginFixture())
        self.engine = self.useFixture(base.EngineFixture()).engine

    def _cache_nodes(self):
        with self.engine.daemon.qmp() as qmp:
            return sorted(n['node-name'] for n in
                          qmp.execute('query-named-block-nodes', flat=True)
                          if n['node-name'].startswith('fb'))

    def test_writes_stay_in_their_own_overlay(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        b = self.engine.create('vm-b', 'img', self.origin.url)
        base.qemu_io(a.path, 'write -P 0xaa 0 64k', 'write -P 0xbb 1M 4k')
        base.qemu_io(a.path, 'read -P 0xaa 0 64k', 'read -P 0xbb 1M 4k')
        # b still sees the origin's data, not a's writes.
        base.qemu_io(b.path, 'read -P 1 0 64k',
                     'read -P %d 1M 4k' % self.origin.pattern(16))
        # Neither the cache nor the origin took the write.
        base.qemu_io(self.engine.export_url('img'),
                     'read -P 1 0 64k', fmt='raw', read_only=True)
        self.assertEqual(self.origin.sha256, base.sha256(self.origin.path))
        self.assertGreater(self.engine.list()[0].written_bytes, 64 * 1024)

    def test_origin_bytes_match_the_blocks_touched(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        b = self.engine.create('vm-b', 'img', self.origin.url)
        self.origin.server.reset_counter()
        # Ten clusters, one of them read twice, plus a 4 KiB read inside
        # an eleventh: the cache fetches whole clusters.
        base.qemu_io(a.path, 'read 0 640k', 'read 128k 64k',
                     'read %d 4k' % (20 * base.CLUSTER))
        first = self.origin.server.bytes_read()
        expected = 11 * base.CLUSTER
        self.assertGreaterEqual(first, expected)
        self.assertLess(first, expected * 1.02)
        # The second VM's identical reads are served by the host cache.
        base.qemu_io(b.path, 'read 0 640k', 'read %d 4k' % (
            20 * base.CLUSTER))
        self.assertLess(self.origin.server.bytes_read() - first, 4096)
        image = self.engine.list_images()[0]
        self.assertEqual(('vm-a', 'vm-b'), image.vms)
        self.assertGreaterEqual(image.cached_bytes, expected)

    def test_concurrent_creates_add_the_origin_once(self):
        def create(i):
            engine = base.EngineFixture(
                state_path=self.engine.state_path)
            engine.setUp()
            return engine.engine.create('vm-%d' % i, 'img', self.origin.url)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            disks = list(pool.map(create, range(16)))
        self.assertEqual(16, len({d.path for d in disks}))
        self.assertEqual(16, len(self.engine.list()))
        self.assertEqual(1, len(self.engine.list_images()))
        h = cachegroup.Nodes.of('img')
        self.assertEqual(sorted([h.source(0, 0), h.cache_file, h.cache,
                                 h.cor]),
                         self._cache_nodes())

    def test_concurrent_creates_from_separate_processes(self):
        script = (
            'import sys\n'
            'from tests.functional import base\n'
            'from fastboot_nova import storage\n'
            'e = storage.get_engine(base.make_conf(),\n'
            '                       state_path=sys.argv[1])\n'
            'print(e.create(sys.argv[2], "img", sys.argv[3]).path)\n')
        procs = [subprocess.Popen(
            [sys.executable, '-c', script, self.engine.state_path, 'p%d' % i,
             self.origin.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            cwd=os.path.dirname(os.path.dirname(os.path.dirname(
                __file__))), env=dict(os.environ))
            for i in range(6)]
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            self.assertEqual(0, proc.returncode, err)
        self.assertEqual(['p%d' % i for i in range(6)],
                         [d.name for d in self.engine.list()])
        self.assertEqual(4, len(self._cache_nodes()))

    def test_other_images_do_not_wait_for_a_busy_image(self):
        second = self.useFixture(base.OriginFixture())
        self.engine.create('vm-a', 'img-a', self.origin.url)
        # Hold img-a's lock as a long create of img-a would.
        with self.engine._lock('image', 'img-a'):
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                future = pool.submit(self.engine.create, 'vm-b', 'img-b',
                                     second.url)
                disk = future.result(timeout=30)
        self.assertEqual('img-b', disk.image)

    def test_restart_and_reconcile_keep_every_vm_s_data(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        b = self.engine.create('vm-b', 'img', self.origin.url)
        base.qemu_io(a.path, 'write -P 0x11 0 128k')
        base.qemu_io(b.path, 'write -P 0x22 64k 64k')
        os.kill(self.engine.daemon.pid(), signal.SIGKILL)
        time.sleep(0.2)
        report = self.engine.reconcile()
        self.assertTrue(report.daemon_restarted)
        self.assertEqual(['img'], report.restored_images)
        base.qemu_io(a.path, 'read -P 0x11 0 128k',
                     'read -P %d 128k 64k' % self.origin.pattern(2))
        base.qemu_io(b.path, 'read -P 1 0 64k', 'read -P 0x22 64k 64k')
        self.assertTrue(self.engine.reconcile().clean)

    def test_a_new_engine_object_finds_the_running_daemon(self):
        self.engine.create('vm-a', 'img', self.origin.url)
        pid = self.engine.daemon.pid()
        again = base.EngineFixture(state_path=self.engine.state_path)
        again.setUp()
        self.assertFalse(again.engine.reconcile().daemon_restarted)
        self.assertEqual(pid, again.engine.daemon.pid())

    def test_prefetch_fills_the_cache_and_frees_the_origin(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        seen = []
        image = self.engine.prefetch('img',
                                     lambda d, t: seen.append((d, t)))
        self.assertEqual(image.virtual_size, image.cached_bytes)
        self.assertEqual((base.IMAGE_SIZE, base.IMAGE_SIZE), seen[-1])
        self.origin.server.stop()
        base.qemu_io(a.path, 'read -P %d %d 64k' % (
            self.origin.pattern(63), 63 * base.CLUSTER))
        # Restart works without the origin once the cache is complete.
        self.engine.shutdown()
        report = self.engine.reconcile()
        self.assertEqual(['img'], report.restored_images)
        base.qemu_io(a.path, 'read -P 5 %d 64k' % (4 * base.CLUSTER))

    def test_snapshot_clone_and_migrate(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        base.qemu_io(a.path, 'write -P 0x33 0 64k')
        snapdir = tempfile.mkdtemp(dir='/tmp')
        self.addCleanup(lambda: subprocess.run(['rm', '-rf', snapdir]))
        snap = self.engine.snapshot('vm-a', 'golden', snapdir)
        # A snapshot holds the VM's blocks and reads the rest from the
        # origin, without this host's daemon.
        self.assertEqual(self.origin.url,
                         json.loads(subprocess.check_output(
                             ['qemu-img', 'info', '--output=json', snap]))
                         ['backing-filename'])
        base.qemu_io(snap, 'read -P 0x33 0 64k', 'read -P 2 64k 64k')
        clone = self.engine.clone('vm-a', 'vm-c')
        base.qemu_io(clone.path, 'read -P 0x33 0 64k', 'write -P 0x44 0 4k')
        base.qemu_io(a.path, 'read -P 0x33 0 64k')
        other = self.useFixture(base.EngineFixture()).engine
        moved = self.engine.migrate('vm-c', other.state_path)
        self.assertEqual(['vm-a'], [d.name for d in self.engine.list()])
        self.assertEqual(['vm-c'], [d.name for d in other.list()])
        base.qemu_io(moved.path, 'read -P 0x44 0 4k',
                     'read -P 0x33 4k 60k', 'read -P 3 128k 64k')

    def tcp_parent(self):
        """Another host's engine: parents are read over TCP only."""
        with socket.socket() as sock:
            sock.bind(('127.0.0.1', 0))
            port = sock.getsockname()[1]
        conf = base.make_conf(export_address='127.0.0.1', export_auth='none',
                              export_port_min=port, export_port_max=port)
        return self.useFixture(base.EngineFixture(conf)).engine

    def test_live_reparent_to_a_parent_host_and_back(self):
        parent = self.tcp_parent()
        parent.create('p-vm', 'img', self.origin.url)
        # The parent host reads clusters 0-3 once.
        base.qemu_io(parent.list()[0].path, 'read 0 256k')
        child_vm = self.engine.create('vm-a', 'img', self.origin.url)
        pid = self.engine.daemon.pid()
        self.engine.reparent('img', parent.export_url('img'))
        self.assertEqual((parent.export_url('img'),),
                         self.engine.list_images()[0].parents)
        self.origin.server.reset_counter()
        base.qemu_io(child_vm.path, 'read -P 1 0 64k',
                     'read -P 4 192k 64k')
        # Served by the parent's cache: the origin read nothing.
        self.assertLess(self.origin.server.bytes_read(), 4096)
        # Blocks the parent lacks it fetches from the origin, once.
        base.qemu_io(child_vm.path, 'read -P 9 512k 64k')
        self.assertGreaterEqual(self.origin.server.bytes_read(),
                                base.CLUSTER)
        # The parent goes away: back to the origin, same daemon, VM intact.
        self.engine.reparent('img', self.origin.url)
        parent.shutdown()
        base.qemu_io(child_vm.path, 'read -P 11 640k 64k')
        self.assertEqual(pid, self.engine.daemon.pid())
        self.assertEqual([], self.engine.state.read()['images']['img']
                         ['parents'])
        self.assertEqual((), self.engine.list_images()[0].parents)

    def test_a_dead_parent_costs_no_failed_read(self):
        parent = self.tcp_parent()
        parent.create('p-vm', 'img', self.origin.url)
        child_vm = self.engine.create('vm-a', 'img', self.origin.url)
        self.engine.reparent('img', parent.export_url('img'))
        base.qemu_io(child_vm.path, 'read -P 1 0 64k')
        self.origin.server.reset_counter()
        os.kill(parent.daemon.pid(), signal.SIGKILL)
        # No re-parenting: the fifo quorum under the cache reads on from
        # the origin at once.
        started = time.monotonic()
        base.qemu_io(child_vm.path, 'read -P 2 64k 64k',
                     'read -P 1 0 64k')
        self.assertLess(time.monotonic() - started, 3)
        self.assertGreaterEqual(self.origin.server.bytes_read(),
                                base.CLUSTER)

    def test_restart_falls_back_to_the_origin_when_the_parent_is_gone(self):
        parent = self.tcp_parent()
        parent.create('p-vm', 'img', self.origin.url)
        child_vm = self.engine.create('vm-a', 'img', self.origin.url)
        self.engine.reparent('img', parent.export_url('img'))
        parent.shutdown()
        self.engine.shutdown()
        report = self.engine.reconcile()
        self.assertEqual(['img'], report.restored_images)
        base.qemu_io(child_vm.path, 'read -P 3 128k 64k')

    def test_remove_image(self):
        self.engine.create('vm-a', 'img', self.origin.url)
        self.assertRaises(exception.ImageInUse, self.engine.remove_image,
                          'img')
        self.engine.destroy('vm-a')
        self.engine.remove_image('img')
        self.assertEqual([], self.engine.list_images())
        self.assertEqual([], self._cache_nodes())
        self.assertEqual([], os.listdir(self.engine.cache_dir))
        # The same name can then come from another origin.
        second = self.useFixture(base.OriginFixture())
        self.engine.create('vm-a', 'img', second.url)

    def test_reconcile_reports_and_cleans_leftovers(self):
        a = self.engine.create('vm-a', 'img', self.origin.url)
        orphan = os.path.join(self.engine.vm_dir, 'stray.qcow2')
        subprocess.check_call(['qemu-img', 'create', '-q', '-f', 'qcow2',
                               orphan, '1M'])
        tmp = os.path.join(self.engine.vm_dir, '.half.qcow2.tmp')
        open(tmp, 'w').close()
        stray_cache = os.path.join(self.engine.cache_dir, 'gone.qcow2')
        open(stray_cache, 'w').close()
        with self.engine.state.update() as st:
            st['vms']['interrupted'] = {'image': 'img', 'status': 'creating',
                                        'path': os.path.join(
                                            self.engine.vm_dir,
                                            'interrupted.qcow2')}
        os.unlink(a.path)
        report = self.engine.reconcile()
        self.assertEqual([orphan], report.orphan_disks)
        self.assertTrue(os.path.exists(orphan), 'VM data must be kept')
        self.assertEqual([tmp], report.removed_temp_files)
        self.assertEqual(['gone.qcow2'], report.removed_orphan_caches)
        self.assertEqual(['interrupted'], report.dropped_vms)
        self.assertEqual(['vm-a'], report.missing_disks)

    def test_reconcile_removes_orphan_daemon_nodes(self):
        self.engine.create('vm-a', 'img', self.origin.url)
        with self.engine.daemon.qmp() as qmp:
            qmp.execute('blockdev-add', driver='null-co',
                        **{'node-name': 'fbo-leftover0000'})
        report = self.engine.reconcile()
        self.assertEqual(['fbo-leftover0000'], report.removed_orphan_nodes)
        self.assertEqual(4, len(self._cache_nodes()))


class TestBadInput(base.TestCase):
    """Each error is clear and changes nothing."""

    def setUp(self):
        super().setUp()
        self.origin = self.useFixture(base.OriginFixture())
        self.fixture = self.useFixture(base.EngineFixture())
        self.engine = self.fixture.engine
        self.vm = self.engine.create('keep', 'img', self.origin.url)
        base.qemu_io(self.vm.path, 'write -P 0x5a 0 64k')
        self.before = self._snapshot_of_state()

    def _snapshot_of_state(self):
        return (self.engine.state.read(),
                sorted(os.listdir(self.engine.vm_dir)),
                sorted(os.listdir(self.engine.cache_dir)))

    def assertNothingChanged(self):
        self.assertEqual(self.before, self._snapshot_of_state())
        base.qemu_io(self.vm.path, 'read -P 0x5a 0 64k')

    def test_unknown_origin_file(self):
        e = self.assertRaises(exception.InvalidLocation, self.engine.create,
                              'vm', 'other', '/nonexistent/disk.raw')
        self.assertIn('No such file', str(e))
        self.assertNothingChanged()

    def test_nbd_url_that_refuses(self):
        sock = socket.socket()
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        e = self.assertRaises(exception.OriginUnavailable,
                              self.engine.create, 'vm', 'other',
                              'nbd://127.0.0.1:%d/x' % port)
        self.assertIn('not reachable', str(e))
        self.assertNothingChanged()
        with self.engine.daemon.qmp() as qmp:
            nodes = qmp.execute('query-named-block-nodes', flat=True)
        self.assertEqual(4, len(nodes))

    def test_unsafe_names(self):
        for name in ('a/b', '../x', 'has space', 'x;rm -rf', '$(id)', '',
                     '.hidden', 'a' * 64):
            self.assertRaises(exception.InvalidName, self.engine.create,
                              name, 'img', self.origin.url)
            self.assertRaises(exception.InvalidName, self.engine.create,
                              'vm', name, self.origin.url)
        self.assertNothingChanged()

    def test_duplicate_vm(self):
        self.assertRaises(exception.VmExists, self.engine.create, 'keep',
                          'img', self.origin.url)
        self.assertNothingChanged()

    def test_same_image_name_other_origin(self):
        other = self.useFixture(base.OriginFixture())
        self.assertRaises(exception.ImageConflict, self.engine.create,
                          'vm', 'img', other.url)
        self.assertNothingChanged()

    def test_destroy_unknown_vm(self):
        self.assertRaises(exception.VmNotFound, self.engine.destroy, 'nope')
        self.assertNothingChanged()

    def test_destroy_a_disk_in_use(self):
        qemu = subprocess.Popen(
            ['qemu-system-x86_64', '-nodefaults', '-display', 'none', '-S',
             '-accel', 'tcg', '-blockdev',
             json.dumps({'driver': 'qcow2', 'node-name': 'd',
                         'file': {'driver': 'file',
                                  'filename': self.vm.path}}),
             '-device', 'virtio-blk-pci,drive=d'],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(qemu.wait)
        self.addCleanup(qemu.kill)
        deadline = time.monotonic() + 20
        while not self.engine.img.in_use(self.vm.path):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        self.assertRaises(exception.VmDiskInUse, self.engine.destroy, 'keep')
        qemu.kill()
        qemu.wait()
        self.assertNothingChanged()

    def test_cache_size_limit(self):
        conf = base.make_conf(cache_size_limit=100)  # MiB; 64 used
        engine = self.useFixture(base.EngineFixture(
            conf=conf, state_path=self.engine.state_path)).engine
        other = self.useFixture(base.OriginFixture())
        e = self.assertRaises(exception.CacheFull, engine.create, 'vm',
                              'other', other.url)
        self.assertIn('Not enough room', str(e))
        self.assertNothingChanged()
        with engine.daemon.qmp() as qmp:
            self.assertEqual(4, len(qmp.execute('query-named-block-nodes',
                                                flat=True)))

    def test_full_cache_directory(self):
        self.useFixture(fixtures_statvfs(free=1024 * 1024))
        other = self.useFixture(base.OriginFixture())
        self.assertRaises(exception.CacheFull, self.engine.create, 'vm',
                          'other', other.url)
        self.assertNothingChanged()

    def test_daemon_killed_mid_create(self):
        other = self.useFixture(base.OriginFixture())
        real = self.engine.img.create_cache

        def create_cache_then_die(*args, **kwargs):
            real(*args, **kwargs)
            os.kill(self.engine.daemon.pid(), signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.engine.daemon.pid() is not None:
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)

        self.engine.img.create_cache = create_cache_then_die
        self.assertRaises(exception.FastbootException, self.engine.create,
                          'vm', 'other', other.url)
        self.engine.img.create_cache = real
        self.assertEqual(self.before, self._snapshot_of_state())
        report = self.engine.reconcile()
        self.assertTrue(report.daemon_restarted)
        self.assertNothingChanged()
        # And the engine works again.
        self.engine.create('vm', 'other', other.url)

    def test_state_file_corrupt(self):
        with open(self.engine.state.path, 'w') as f:
            f.write('{not json')
        e = self.assertRaises(exception.StateError, self.engine.list)
        self.assertIn('state.json', str(e))
        self.assertTrue(os.path.exists(self.vm.path))

    def test_lock_files_live_under_the_state_path(self):
        self.assertTrue(any(name.endswith('-image-img') for name in
                            os.listdir(self.engine.lock_path)))
        self.assertIsNone(lockutils.CONF.oslo_concurrency.lock_path)


def fixtures_statvfs(free):
    """Make os.statvfs report ``free`` bytes available."""
    import fixtures

    real = os.statvfs

    def fake(path):
        st = real(path)
        return os.statvfs_result((st.f_bsize, 4096, st.f_blocks, free // 4096,
                                  free // 4096, st.f_files, st.f_ffree,
                                  st.f_favail, st.f_flag, st.f_namemax))

    return fixtures.MonkeyPatch('os.statvfs', fake)
