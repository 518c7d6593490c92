"""The privileged entrypoints refuse what is not fastboot's own.

Each attack below was accepted before the entrypoints were confined
(issue "Harden the trust boundaries", item 2). The entrypoints run
in-process with the privsep client mode off, against the FakeKernel of
:mod:`tests.unit.dm.fakes`: every test checks that the refusal names what
was refused and that nothing ran.
"""

import os

import fixtures
from oslo_rootwrap import filters as rootwrap_filters
from oslo_rootwrap import wrapper as rootwrap_wrapper
import testtools

import fastboot_nova.privsep.dm as dm
import fastboot_nova.privsep.loop as loop
import fastboot_nova.privsep.multipath as mp
import fastboot_nova.privsep.nbd as nbd
from fastboot_nova.privsep import utils
from tests.unit.dm import nbd_fakes

ROOT_DISK = '/dev/sda'
PV = '/dev/sdc'
ORIGIN = '/dev/vdb'
SSD = '/dev/nvme0n1p2'
P = 'fb-0123abcd-'
CACHE = '/dev/mapper/%scache-img' % P
LVM = 'vg0-lv0'
SHADOW = '/etc/shadow'
FILTERS = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'etc',
                       'fastboot', 'rootwrap.d',
                       'fastboot-privsep.filters')
CHANGES = ('dmsetup create', 'dmsetup remove', 'dmsetup reload',
           'dmsetup resume', 'dmsetup message', 'losetup --find',
           'losetup --detach', 'losetup --set-capacity', 'nbd-client', 'wipe')


class ConfinementTestCase(testtools.TestCase):
    """A host with a mounted root disk, another service's LVM volume on
    its own physical volume, an unused origin and an SSD.
    """

    def setUp(self):
        super().setUp()
        tmp = self.useFixture(fixtures.TempDir()).path
        self.state = os.path.join(tmp, 'state')
        os.makedirs(self.state)
        self.outside = os.path.join(tmp, 'outside')
        os.makedirs(self.outside)
        self.fx = self.useFixture(nbd_fakes.NbdFixture(
            {ROOT_DISK: 1 << 20, PV: 1 << 20, ORIGIN: 131072, SSD: 262144},
            export_sectors=131072))
        self.kernel = k = self.fx.kernel
        utils.set_confinement(utils.Confinement(state_path=self.state,
                                                cache_devices=(SSD,)))
        k.mounted.add(ROOT_DISK)
        k.tables[LVM] = '0 1048576 linear %s 0\n' % PV
        k.minors[LVM] = 99
        k.dm_uuids[LVM] = 'LVM-abcdefgh'
        k.tables[P + 'cache-img'] = '0 131072 linear %s 0\n' % ORIGIN
        k.minors[P + 'cache-img'] = 98

    def changes(self):
        return [c for c, _s in self.kernel.calls if c.startswith(CHANGES)]

    def assertRefused(self, what, value, func, *args, **kwargs):
        e = self.assertRaises(utils.Refused, func, *args, **kwargs)
        self.assertTrue(str(e).startswith('Refused %s=%r: ' % (what, value)),
                        str(e))
        self.assertEqual([], self.changes())
        return e

    def state_file(self, name, size=1 << 20):
        path = os.path.join(self.state, name)
        with open(path, 'wb') as f:
            f.truncate(size)
        return path


class TestLoopConfinement(ConfinementTestCase):

    def test_attach_shadow_refused(self):
        e = self.assertRefused('path', SHADOW, loop.attach, SHADOW)
        self.assertIn('outside the state path %s' % self.state, str(e))

    def test_attach_through_a_symlink_out_refused(self):
        target = os.path.join(self.outside, 'secret')
        open(target, 'w').close()
        link = os.path.join(self.state, 'vm1.cow')
        os.symlink(target, link)
        self.assertRefused('path', link, loop.attach, link)
        os.symlink(self.outside, os.path.join(self.state, 'cow'))
        via_dir = os.path.join(self.state, 'cow', 'secret')
        self.assertRefused('path', via_dir, loop.attach, via_dir)

    def test_attach_a_second_hard_link_refused(self):
        target = os.path.join(self.outside, 'secret')
        open(target, 'w').close()
        link = os.path.join(self.state, 'vm1.cow')
        os.link(target, link)
        e = self.assertRefused('path', link, loop.attach, link)
        self.assertIn('2 hard links', str(e))

    def test_attach_dotdot_refused(self):
        path = self.state + '/../outside/x'
        self.assertRaises(utils.InvalidDmArgument, loop.attach, path)
        self.assertEqual([], self.changes())

    def test_attach_a_state_file_passes(self):
        cow = self.state_file('vm1.cow')
        self.assertEqual('/dev/loop0', loop.attach(cow))
        self.assertEqual(['losetup --find --show --nooverlap ' + cow],
                         self.changes())

    def test_detach_another_services_loop_refused(self):
        self.kernel.loops['/dev/loop7'] = '/var/lib/docker/disk.img'
        self.kernel.loop_sectors['/dev/loop7'] = 8
        self.assertRefused('device', '/dev/loop7', loop.detach, '/dev/loop7')
        self.assertRefused('device', '/dev/loop7', loop.set_capacity,
                           '/dev/loop7')
        self.assertIn('/dev/loop7', self.kernel.loops)


class TestDmConfinement(ConfinementTestCase):

    def test_linear_over_the_root_disk_refused(self):
        e = self.assertRefused('segment', ROOT_DISK, dm.create_linear,
                               P + 'origin-img', [(ROOT_DISK, 0, 8)])
        self.assertIn('mounted', str(e))

    def test_linear_over_another_services_physical_volume_refused(self):
        e = self.assertRefused('segment', PV, dm.create_linear,
                               P + 'origin-img', [(PV, 0, 8)])
        self.assertIn('in use by %s' % LVM, str(e))

    def test_linear_over_another_services_volume_refused(self):
        lv = '/dev/mapper/' + LVM
        e = self.assertRefused('segment', lv, dm.create_linear,
                               P + 'origin-img', [(lv, 0, 8)])
        self.assertIn('fastboot did not create', str(e))

    def test_a_multipath_origin_passes(self):
        self.kernel.tables['3600a0980'] = '0 8 multipath ...\n'
        self.kernel.minors['3600a0980'] = 97
        self.kernel.dm_uuids['3600a0980'] = 'mpath-3600a0980'
        dm.create_linear(P + 'origin-img', [('/dev/mapper/3600a0980', 0, 8)])

    def test_foreign_names_refused(self):
        for func, args in ((dm.remove_device, ()), (dm.table, ()),
                           (dm.status, ()), (dm.open_count, ()),
                           (dm.retarget_linear, (ORIGIN,)),
                           (dm.wipe_header, (4096,)),
                           (dm.create_linear, ([(ORIGIN, 0, 8)],))):
            self.assertRefused('name', LVM, func, LVM, *args)
        self.assertIn(LVM, self.kernel.tables)

    def test_retarget_onto_a_foreign_device_refused(self):
        origin = dm.create_linear(P + 'origin-img', [(ORIGIN, 0, 131072)])
        del self.kernel.calls[:]
        for device in (ROOT_DISK, '/dev/mapper/' + LVM):
            self.assertRefused('device', device, dm.retarget_linear,
                               P + 'origin-img', device)
        self.assertIn(ORIGIN, self.kernel.tables[origin[len(
            '/dev/mapper/'):]])

    def test_kinds_are_kept_apart(self):
        # Only metadata slices are wiped, only origins retargeted, only
        # pools get thin messages.
        self.kernel.tables[P + 'vm-vm1'] = '0 8 linear %s 0\n' % ORIGIN
        self.assertRefused('name', P + 'vm-vm1', dm.wipe_header,
                           P + 'vm-vm1', 4096)
        self.assertRefused('name', P + 'vm-vm1', dm.retarget_linear,
                           P + 'vm-vm1', ORIGIN)
        self.assertRefused('pool', P + 'vm-vm1', dm.thin_message,
                           P + 'vm-vm1', 'delete', 1)

    def test_cache_and_snapshot_only_over_our_devices(self):
        self.assertRefused('origin_dev', ROOT_DISK, dm.create_snapshot,
                           P + 'vm-vm1', ROOT_DISK, '/dev/loop0', 16)
        self.assertRefused('metadata_dev', SSD, dm.create_cache,
                           P + 'cache-x', SSD, CACHE, CACHE, 128)
        self.assertRefused('origin_dev', ORIGIN, dm.create_thin,
                           P + 'vm-vm1', P + 'pool-thin', 1, ORIGIN)

    def test_the_engines_own_calls_pass(self):
        # What DmEngine builds for an image: the origin over an unused
        # device, slices of the configured cache device, the cache; a
        # second image's slices on the same (now held) cache device.
        dm.create_linear(P + 'origin-a', [(ORIGIN, 0, 131072)])
        dm.create_linear(P + 'cmeta-a', [(SSD, 0, 8192)])
        dm.create_linear(P + 'cdata-a', [(SSD, 8192, 131072)])
        dm.wipe_header(P + 'cmeta-a', 4096)
        dm.create_cache(P + 'cache-a', '/dev/mapper/%scmeta-a' % P,
                        '/dev/mapper/%scdata-a' % P,
                        '/dev/mapper/%sorigin-a' % P, 128)
        dm.create_linear(P + 'cmeta-b', [(SSD, 139264, 8192)])
        meta, data = self.state_file('pool.meta'), self.state_file(
            'pool.data', 1 << 22)
        meta_dev, data_dev = loop.attach(meta), loop.attach(data)
        dm.create_thin_pool(P + 'pool-thin', meta_dev, data_dev, 128, 1)
        dm.thin_message(P + 'pool-thin', 'create_thin', 1)
        dm.create_thin(P + 'vm-vm1', P + 'pool-thin', 1,
                       '/dev/mapper/%scache-a' % P)
        dm.remove_device(P + 'vm-vm1')
        self.assertEqual(7, len([c for c in self.changes()
                                 if c.startswith('dmsetup create')]))

    def test_a_configured_cache_device_passes_even_if_held(self):
        # The operator named it: [fastboot_dm] cache_device.
        self.kernel.tables['other'] = '0 8 linear %s 0\n' % SSD
        self.kernel.minors['other'] = 96
        dm.create_linear(P + 'cmeta-a', [(SSD, 0, 8192)])


class TestNbdConfinement(ConfinementTestCase):

    def test_serving_the_root_disk_everywhere_refused(self):
        e = self.assertRefused('device', ROOT_DISK, nbd.start_server,
                               P + 'exp-img-1', ROOT_DISK, '0.0.0.0', 10809,
                               ['0.0.0.0/0'])
        self.assertIn('not a device-mapper device of fastboot', str(e))
        self.assertEqual([], self.kernel.spawns)

    def test_wildcard_without_tls_refused(self):
        for address in ('0.0.0.0', '::'):
            e = self.assertRefused('address', address, nbd.start_server,
                                   P + 'exp-img-1', CACHE, address, 10809,
                                   ['0.0.0.0/0'])
            self.assertIn('wildcard', str(e))
        self.assertEqual([], self.kernel.spawns)

    def test_wildcard_with_tls_and_one_address_without_pass(self):
        cert, key, ca = (self.state_file(n, 10)
                         for n in ('host.pem', 'host.key', 'ca.pem'))
        nbd.start_server(P + 'exp-img-1', CACHE, '0.0.0.0', 10809,
                         ['0.0.0.0/0'], cert_file=cert, key_file=key,
                         ca_file=ca)
        nbd.start_server(P + 'exp-img-2', CACHE, '192.0.2.1', 10810,
                         ['192.0.2.0/24'])
        self.assertEqual(2, len(self.kernel.spawns))

    def test_other_server_names_refused(self):
        self.assertRefused('name', 'sshd', nbd.start_server, 'sshd', CACHE,
                           '127.0.0.1', 10809, ['127.0.0.1'])
        self.assertRefused('name', 'sshd', nbd.stop_server, 'sshd')

    def test_connect_with_the_shadow_file_as_key_refused(self):
        cert, ca = self.state_file('host.pem', 10), self.state_file(
            'ca.pem', 10)
        e = self.assertRefused('key_file', SHADOW, nbd.connect, '192.0.2.1',
                               10809, 'exp', cert_file=cert,
                               key_file=SHADOW, ca_file=ca)
        self.assertIn('export_tls', str(e))

    def test_key_through_a_symlink_out_refused(self):
        cert, ca = self.state_file('host.pem', 10), self.state_file(
            'ca.pem', 10)
        link = os.path.join(self.state, 'host.key')
        os.symlink(SHADOW, link)
        self.assertRefused('key_file', link, nbd.connect, '192.0.2.1',
                           10809, 'exp', cert_file=cert, key_file=link,
                           ca_file=ca)

    def test_configured_tls_files_pass(self):
        files = []
        for name in ('host.pem', 'host.key', 'ca.pem'):
            path = os.path.join(self.outside, name)
            with open(path, 'w') as f:
                f.write('x')
            files.append(path)
        utils.set_confinement(utils.Confinement(
            state_path=self.state, tls_files=tuple(files)))
        nbd.connect('192.0.2.1', 10809, 'exp', cert_file=files[0],
                    key_file=files[1], ca_file=files[2])
        self.assertEqual(1, len(self.changes()))

    def test_disconnect_another_services_connection_refused(self):
        self.kernel.nbd['/dev/nbd3'] = ('192.0.2.9', 10809, 'backup')
        self.assertRefused('device', '/dev/nbd3', nbd.disconnect,
                           '/dev/nbd3')
        self.assertIsNotNone(self.kernel.nbd['/dev/nbd3'])
        # Ours is detached.
        dev = nbd.connect('192.0.2.1', 10809, 'exp')
        self.assertTrue(nbd.disconnect(dev))

    def test_parents_multipath_over_the_root_disk_refused(self):
        self.kernel.nbd['/dev/nbd0'] = ('192.0.2.1', 10809, 'exp')
        self.assertRefused('fallback', ROOT_DISK,
                           mp.create_parents_multipath, P + 'mp-img.1',
                           ['/dev/nbd0'], ROOT_DISK)
        self.assertRefused('name', 'mpatha', mp.create_parents_multipath,
                           'mpatha', ['/dev/nbd0'], ORIGIN)


class TestLoadConfinement(testtools.TestCase):

    def test_from_the_configuration_files(self):
        tmp = self.useFixture(fixtures.TempDir()).path
        os.symlink(tmp, tmp + '/link')
        conf = os.path.join(tmp, 'fastboot.conf')
        with open(conf, 'w') as f:
            f.write('[fastboot]\nstate_path = %s/link/state\n'
                    '[fastboot_dm]\ncache_device = /dev/sdx,/dev/sdy\n'
                    'export_tls_cert_file = %s/h.pem\n'
                    'export_tls_key_file = %s/h.key\n'
                    'export_tls_ca_file = %s/ca.pem\n' % ((tmp,) * 4))
        c = utils.load_confinement([conf], [])
        self.assertEqual(utils.Confinement(
            state_path=tmp + '/state', cache_devices=('/dev/sdx', '/dev/sdy'),
            tls_files=(tmp + '/h.pem', tmp + '/h.key', tmp + '/ca.pem')), c)

    def test_defaults_without_files(self):
        c = utils.load_confinement([], [])
        self.assertEqual(utils.Confinement(state_path='/var/lib/fastboot'),
                         c)

    def test_loaded_once_on_first_use(self):
        loaded = []

        def load():
            loaded.append(1)
            return utils.Confinement(state_path='/srv/fb')

        self.addCleanup(utils.set_confinement, utils._confinement)
        utils.set_confinement(None)
        self.useFixture(fixtures.MockPatchObject(utils, 'load_confinement',
                                                 load))
        self.assertEqual('/srv/fb', utils.confinement().state_path)
        self.assertEqual('/srv/fb', utils.confinement().state_path)
        self.assertEqual([1], loaded)

    def test_set_confinement_is_no_entrypoint(self):
        import fastboot_nova.privsep
        ctx = fastboot_nova.privsep.sys_admin_pctxt
        self.assertFalse(ctx.is_entrypoint(utils.set_confinement))
        self.assertFalse(ctx.is_entrypoint(utils.load_confinement))
        self.assertTrue(ctx.is_entrypoint(loop.attach))


class TestRealDeviceFacts(testtools.TestCase):

    def test_the_root_file_system_is_mounted(self):
        st = os.stat('/')
        self.assertIn('%d:%d' % (os.major(st.st_dev), os.minor(st.st_dev)),
                      utils._mounted_devnums())


class TestRootwrapFilter(testtools.TestCase):
    """The shipped filter line, through oslo.rootwrap's own matcher."""

    def setUp(self):
        super().setUp()
        loaded = rootwrap_wrapper.load_filters(
            [os.path.dirname(os.path.abspath(FILTERS))])
        # oslo.rootwrap adds its own CommandFilter for privsep-helper
        # (see test_rootwrap_allows_any_privsep_helper); ours is the one
        # RegExpFilter.
        self.filters = [f for f in loaded
                        if isinstance(f, rootwrap_filters.RegExpFilter)]
        self.assertEqual(1, len(self.filters))
        self.loaded = loaded

    def allowed(self, config_file, context='fastboot_nova.privsep.'
                'sys_admin_pctxt', sock='/tmp/tmpab_12cd/privsep.sock'):
        argv = ['privsep-helper', '--config-file', config_file,
                '--privsep_context', context, '--privsep_sock_path', sock]
        return any(f.match(argv) for f in self.filters)

    def test_the_real_grant(self):
        self.assertTrue(self.allowed('/etc/nova/nova.conf'))
        self.assertTrue(self.allowed('/etc/fastboot/fastboot.conf'))

    def test_dotdot_config_refused(self):
        for path in ('/etc/x/../../tmp/evil.conf', '/etc/../tmp/x',
                     '/etc/./x', '/etc/nova/.hidden', '/tmp/evil.conf',
                     '/etc/nova/nova.conf\n', '/etc'):
            self.assertFalse(self.allowed(path), path)

    def test_other_contexts_and_sockets_refused(self):
        self.assertFalse(self.allowed('/etc/nova/nova.conf',
                                      context='os_brick.privileged.default'))
        for sock in ('/tmp/../etc/x/privsep.sock', '/run/x/privsep.sock',
                     '/tmp/tmpab/other.sock'):
            self.assertFalse(self.allowed('/etc/nova/nova.conf', sock=sock),
                             sock)

    def test_rootwrap_allows_any_privsep_helper(self):
        # The real grant of a rootwrap line (README, "Privileges"):
        # oslo.rootwrap's own privsep-helper filter takes any context, so
        # rootwrap cannot narrow it. When this starts failing, rootwrap
        # got narrower and the README can say so.
        argv = ['privsep-helper', '--privsep_context',
                'os_brick.privileged.default', '--privsep_sock_path', '/x']
        self.assertFalse(any(f.match(argv) for f in self.filters))
        self.assertTrue(any(f.match(argv) for f in self.loaded))


class TestSysfsFacts(testtools.TestCase):
    """utils.sysfs_facts over a fake /sys, mountinfo and swaps."""

    def setUp(self):
        super().setUp()
        self.root = self.useFixture(fixtures.TempDir()).path
        sys_dir = os.path.join(self.root, 'sys')
        for attr, value in (('SYS', sys_dir),
                            ('MOUNTINFO', self.root + '/mountinfo'),
                            ('SWAPS', self.root + '/swaps')):
            self.useFixture(fixtures.MockPatchObject(utils, attr, value))
        with open(self.root + '/swaps', 'w') as f:
            f.write('Filename Type Size Used Priority\n')
        self.mounts = []
        # sda (8:0) with sda1 (8:1, mounted) and sda2 (8:2); sdb (8:16)
        # held by LVM's dm-0; sdc (8:32) held by our dm-1; sdd unused.
        self.disk('sda', '8:0', parts={'sda1': '8:1', 'sda2': '8:2'})
        self.disk('sdb', '8:16', holders=['dm-0'])
        self.disk('sdc', '8:32', holders=['dm-1'])
        self.disk('sdd', '8:48')
        self.disk('dm-0', '253:0', dm=('vg0-lv0', 'LVM-xyz'))
        self.disk('dm-1', '253:1', dm=(P + 'origin-img', ''))
        self.mount('8:1')

    def disk(self, name, devnum, parts=None, holders=(), dm=None):
        sys_dir = utils.SYS
        base = os.path.join(sys_dir, 'devices', 'virtual', name)
        os.makedirs(os.path.join(base, 'holders'))
        self.write(os.path.join(base, 'dev'), devnum)
        for holder in holders:
            open(os.path.join(base, 'holders', holder), 'w').close()
        if dm:
            os.makedirs(os.path.join(base, 'dm'))
            self.write(os.path.join(base, 'dm', 'name'), dm[0])
            self.write(os.path.join(base, 'dm', 'uuid'), dm[1])
        links = [(devnum, base), (name, base)]
        for part, pnum in (parts or {}).items():
            pdir = os.path.join(base, part)
            os.makedirs(os.path.join(pdir, 'holders'))
            self.write(os.path.join(pdir, 'dev'), pnum)
            self.write(os.path.join(pdir, 'partition'), '1')
            links.append((pnum, pdir))
        for key, target in links:
            where = os.path.join(sys_dir, 'dev', 'block') if ':' in key \
                else os.path.join(sys_dir, 'block')
            os.makedirs(where, exist_ok=True)
            os.symlink(target, os.path.join(where, key))

    @staticmethod
    def write(path, text):
        with open(path, 'w') as f:
            f.write(text + '\n')

    def mount(self, devnum):
        self.mounts.append('36 25 %s / /mnt rw - ext4 /dev/x rw' % devnum)
        with open(utils.MOUNTINFO, 'w') as f:
            f.write('\n'.join(self.mounts) + '\n')

    def test_a_disk_with_a_mounted_partition(self):
        self.assertTrue(utils.sysfs_facts('8:0').mounted)
        # A free partition of that disk is in use too.
        self.assertTrue(utils.sysfs_facts('8:2').mounted)

    def test_holders_by_device_mapper_name(self):
        self.assertEqual(('vg0-lv0',), utils.sysfs_facts('8:16').holders)
        self.assertEqual((P + 'origin-img',),
                         utils.sysfs_facts('8:32').holders)

    def test_an_unused_disk(self):
        self.assertEqual(utils.DeviceInfo(), utils.sysfs_facts('8:48'))

    def test_device_mapper_identity(self):
        info = utils.sysfs_facts('253:0')
        self.assertEqual(('vg0-lv0', 'LVM-xyz'), (info.dm_name, info.dm_uuid))

    def test_the_decision(self):
        devices = {'/dev/sda': '8:0', '/dev/sdb': '8:16', '/dev/sdc': '8:32',
                   '/dev/sdd': '8:48'}
        self.useFixture(fixtures.MockPatchObject(
            utils, '_device_info',
            lambda path: utils.sysfs_facts(devices[path])))
        self.useFixture(fixtures.MockPatchObject(
            utils, '_is_block_device', lambda path: path in devices))
        self.useFixture(fixtures.MockPatchObject(
            utils, '_confinement', utils.Confinement(state_path='/x')))
        for dev in ('/dev/sda', '/dev/sdb'):
            self.assertRaises(utils.Refused, utils.check_host_device, dev)
        for dev in ('/dev/sdc', '/dev/sdd'):
            self.assertEqual(dev, utils.check_host_device(dev))
