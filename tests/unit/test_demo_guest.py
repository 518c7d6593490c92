"""Unit tests of the test-guest builder and runner logic (no QEMU)."""

import gzip
import json
import lzma
import os
import stat
import struct
import sys
from unittest import mock

import fixtures
from oslotest import base

from fastboot_nova.demo import guest
from fastboot_nova.demo import kernel
from fastboot_nova.demo import vm

SHA = 'ab' * 32

MODULES_DEP = """\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/lib/crc16.ko:
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/hw_random/virtio-rng.ko.xz: kernel/drivers/virtio/virtio.ko
"""  # noqa: E501


def _fake_guest(**kw):
    values = dict(directory='/g', kernel='/g/vmlinux',
                  initramfs='/g/initramfs.cpio.gz', image='/g/origin.raw',
                  image_size=256 << 20, payload_sha256=SHA,
                  boot_method='pvh', kernel_package='linux-image-x',
                  kernel_version='1')
    values.update(kw)
    return guest.Guest(**values)


class ModulesTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.deps = kernel.parse_modules_dep(MODULES_DEP)

    def test_module_name(self):
        self.assertEqual('ext4', kernel.module_name('kernel/fs/ext4/ext4.ko'))
        self.assertEqual('virtio_rng', kernel.module_name(
            'kernel/drivers/char/hw_random/virtio-rng.ko.xz'))

    def test_parse(self):
        path, needs = self.deps['ext4']
        self.assertEqual('kernel/fs/ext4/ext4.ko', path)
        self.assertEqual(['crc16', 'mbcache', 'jbd2'], needs)
        self.assertEqual([], self.deps['crc16'][1])
        self.assertIn('virtio_rng', self.deps)

    def test_order_dependencies_first_each_once(self):
        order = kernel.module_load_order(self.deps, guest.WANTED_MODULES)
        names = [kernel.module_name(p) for p in order]
        self.assertEqual(len(names), len(set(names)))
        for name in names:
            for dep in self.deps[name][1]:
                self.assertLess(names.index(dep), names.index(name))
        self.assertEqual(
            {'virtio_ring', 'virtio', 'virtio_pci_legacy_dev', 'virtio_pci',
             'virtio_blk', 'crc32c_generic', 'crc16', 'mbcache', 'jbd2',
             'ext4'}, set(names))
        self.assertEqual('ext4', names[-1])

    def test_dash_in_wanted_name(self):
        order = kernel.module_load_order(self.deps, ['virtio-rng'])
        self.assertEqual(['virtio_ring', 'virtio', 'virtio_rng'],
                         [kernel.module_name(p) for p in order])

    def test_builtin_is_skipped(self):
        deps = dict(self.deps)
        del deps['virtio_blk']
        builtin = kernel.parse_modules_builtin(
            'kernel/drivers/block/virtio_blk.ko\n')
        order = kernel.module_load_order(deps, ['virtio_blk'], builtin)
        self.assertEqual([], order)

    def test_missing_module(self):
        self.assertRaises(guest.GuestBuildError, kernel.module_load_order,
                          self.deps, ['nosuch'])

    def test_cycle(self):
        deps = kernel.parse_modules_dep('a.ko: b.ko\nb.ko: a.ko\n')
        e = self.assertRaises(guest.GuestBuildError,
                              kernel.module_load_order, deps, ['a'])
        self.assertIn('a -> b -> a', str(e))


class VmlinuxTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.dest = os.path.join(self.tmp, 'vmlinux')

    def _bzimage(self, payload):
        # A stray magic first (not a valid stream), then the real stream,
        # then trailing data, as in a real bzImage.
        blob = (b'\x00' * 100 + kernel.XZ_MAGIC + b'garbage' * 10 +
                lzma.compress(payload, format=lzma.FORMAT_XZ) +
                b'\xff' * 1000)
        path = os.path.join(self.tmp, 'vmlinuz')
        with open(path, 'wb') as fh:
            fh.write(blob)
        return path

    def test_extract(self):
        # Larger than one chunk, to go round the streaming loop.
        payload = kernel.ELF_MAGIC + os.urandom((1 << 20) * 2 + 12345)
        self.assertTrue(kernel.extract_vmlinux(self._bzimage(payload),
                                              self.dest))
        with open(self.dest, 'rb') as fh:
            self.assertEqual(payload, fh.read())

    def test_not_elf(self):
        self.assertFalse(kernel.extract_vmlinux(
            self._bzimage(b'MZ' + b'x' * 5000), self.dest))
        self.assertFalse(os.path.exists(self.dest))

    def test_no_xz(self):
        path = os.path.join(self.tmp, 'vmlinuz')
        with open(path, 'wb') as fh:
            fh.write(b'\x00' * 4096)
        self.assertFalse(kernel.extract_vmlinux(path, self.dest))

    def _elf(self, note_name, note_type):
        desc = b'\x00' * 4
        name = note_name + b'\x00'
        note = struct.pack('<III', len(name), len(desc), note_type)
        note += name + b'\x00' * (-len(name) % 4) + desc
        ehdr = bytearray(64)
        ehdr[:4] = kernel.ELF_MAGIC
        ehdr[4] = 2  # ELFCLASS64
        struct.pack_into('<Q', ehdr, 0x20, 64)  # e_phoff
        struct.pack_into('<HH', ehdr, 0x36, 56, 1)  # e_phentsize, e_phnum
        phdr = struct.pack('<IIQQQQQQ', 4, 0, 120, 0, 0, len(note),
                           len(note), 4)
        path = os.path.join(self.tmp, 'elf')
        with open(path, 'wb') as fh:
            fh.write(bytes(ehdr) + phdr + note)
        return path

    def test_pvh_note(self):
        self.assertTrue(kernel.has_pvh_note(self._elf(b'Xen', 18)))
        self.assertFalse(kernel.has_pvh_note(self._elf(b'Xen', 17)))
        self.assertFalse(kernel.has_pvh_note(self._elf(b'GNU', 18)))


class InitramfsTest(base.BaseTestCase):

    def test_entry_alignment(self):
        entry = kernel.cpio_newc_entry('init', stat.S_IFREG | 0o755, b'abc')
        self.assertTrue(entry.startswith(b'070701'))
        self.assertEqual(0, len(entry) % 4)
        # 110-byte header + 'init\0' padded to 116, data padded to 4.
        self.assertEqual(116 + 4, len(entry))

    def _parse(self, blob):
        entries = {}
        pos = 0
        while True:
            hdr = blob[pos:pos + 110]
            self.assertEqual(b'070701', hdr[:6])
            fields = [int(hdr[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
            mode, size, rmaj, rmin, namesize = (
                fields[1], fields[6], fields[9], fields[10], fields[11])
            pos += 110
            name = blob[pos:pos + namesize - 1].decode()
            pos += namesize
            pos += -pos % 4
            data = blob[pos:pos + size]
            pos += size
            pos += -pos % 4
            if name == 'TRAILER!!!':
                return entries
            entries[name] = (mode, data, (rmaj, rmin))

    def test_write_initramfs(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'i')
        kernel.write_initramfs(path, [
            ('dev', stat.S_IFDIR | 0o755, b''),
            ('dev/console', stat.S_IFCHR | 0o600, (5, 1)),
            ('bin/sh', stat.S_IFLNK | 0o777, 'busybox'),
            ('init', stat.S_IFREG | 0o755, 'hello\n')])
        with gzip.open(path) as fh:
            entries = self._parse(fh.read())
        self.assertEqual((5, 1), entries['dev/console'][2])
        self.assertTrue(stat.S_ISCHR(entries['dev/console'][0]))
        self.assertEqual(b'busybox', entries['bin/sh'][1])
        self.assertEqual(b'hello\n', entries['init'][1])

    def test_init_script_tags(self):
        script = guest.init_script()
        self.assertNotIn('@', script)
        self.assertIn('echo "FASTBOOT-CHECKSUM ${sum%% *}"', script)
        self.assertIn('/mnt/%s' % guest.PAYLOAD_PATH, script)


class AptTest(base.BaseTestCase):

    def test_kernel_depends_pinned(self):
        out = ('Package: linux-image-amd64\nVersion: 6.1.1-1\n'
               'Depends: linux-image-6.1.0-9-amd64 (= 6.1.1-1)\n')
        self.assertEqual(('linux-image-6.1.0-9-amd64', '6.1.1-1'),
                         kernel.parse_kernel_depends(out))

    def test_kernel_depends_unpinned_alternatives(self):
        out = 'Depends: initramfs-tools | linux-image-6.1.0-9-amd64, kmod\n'
        self.assertEqual(('linux-image-6.1.0-9-amd64', None),
                         kernel.parse_kernel_depends(out))
        self.assertEqual((None, None), kernel.parse_kernel_depends(''))

    def test_version(self):
        self.assertEqual('1:2.3', kernel.parse_apt_version(
            'Package: x\nVersion: 1:2.3\n'))


class CacheTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.cache = self.useFixture(fixtures.TempDir()).path
        self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.guest.resolve_kernel_package',
            return_value=('linux-image-x', '1:2+b1')))
        self.build = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.guest._build', side_effect=self._fake_build))

    @staticmethod
    def _fake_build(out, pkg, version, size_mib, verify, progress):
        for name in ('vmlinux', 'initramfs.cpio.gz'):
            with open(os.path.join(out, name), 'wb') as fh:
                fh.write(b'x')
        with open(os.path.join(out, 'origin.raw'), 'wb') as fh:
            fh.truncate(size_mib << 20)
        with open(os.path.join(out, guest.MANIFEST), 'w') as fh:
            json.dump({'guest_version': guest.GUEST_VERSION,
                       'kernel_package': pkg, 'kernel_version': version,
                       'boot_method': 'pvh', 'kernel': 'vmlinux',
                       'initramfs': 'initramfs.cpio.gz',
                       'image': 'origin.raw', 'image_size': size_mib << 20,
                       'payload_sha256': SHA, 'payload_size': 4 << 20}, fh)

    def test_build_once_then_reuse(self):
        g1 = guest.build_guest(self.cache, image_size_mib=32)
        g2 = guest.build_guest(self.cache, image_size_mib=32)
        self.assertEqual(g1, g2)
        self.assertEqual(1, self.build.mock.call_count)
        self.assertEqual('pvh', g1.boot_method)
        self.assertTrue(os.path.isabs(g1.kernel))
        self.assertIn('linux-image-x_1_2+b1', g1.directory)
        # No temporary build directory is left behind.
        self.assertEqual([], [n for n in os.listdir(self.cache)
                              if n.startswith('.build-')])

    def test_size_is_part_of_the_key(self):
        g1 = guest.build_guest(self.cache, image_size_mib=32)
        g2 = guest.build_guest(self.cache, image_size_mib=64)
        self.assertNotEqual(g1.directory, g2.directory)
        self.assertEqual(2, self.build.mock.call_count)

    def test_invalid_build_is_replaced(self):
        g1 = guest.build_guest(self.cache, image_size_mib=32)
        os.unlink(g1.initramfs)
        self.assertIsNone(guest.load_guest(g1.directory))
        g2 = guest.build_guest(self.cache, image_size_mib=32)
        self.assertEqual(g1, g2)
        self.assertEqual(2, self.build.mock.call_count)

    def test_damaged_manifest(self):
        g1 = guest.build_guest(self.cache, image_size_mib=32)
        for text in ('{', '[]', '{"guest_version": "%s"}' %
                     guest.GUEST_VERSION):
            with open(os.path.join(g1.directory, guest.MANIFEST), 'w') as fh:
                fh.write(text)
            self.assertIsNone(guest.load_guest(g1.directory))

    def test_interrupted_build_is_removed(self):
        key = guest._cache_key('linux-image-x', '1:2+b1', 32)
        stale = os.path.join(self.cache, '.build-%s-abc' % key)
        os.makedirs(stale)
        guest.build_guest(self.cache, image_size_mib=32)
        self.assertFalse(os.path.exists(stale))

    def test_failed_build_leaves_nothing(self):
        self.build.mock.side_effect = guest.GuestBuildError(reason='boom')
        self.assertRaises(guest.GuestBuildError, guest.build_guest,
                          self.cache, image_size_mib=32)
        self.assertEqual([], [n for n in os.listdir(self.cache)
                              if not n.endswith('.lock')])

    def test_too_small(self):
        self.assertRaises(guest.GuestBuildError, guest.build_guest,
                          self.cache, image_size_mib=8)


class RunTest(base.BaseTestCase):

    def test_failed_command(self):
        e = self.assertRaises(guest.GuestBuildError, kernel._run,
                              [sys.executable, '-c',
                               'import sys; sys.exit("bad thing")'])
        self.assertIn('bad thing', str(e))

    def test_missing_command(self):
        e = self.assertRaises(guest.GuestBuildError, kernel._run,
                              ['/nonexistent/tool'])
        self.assertIn('not installed', str(e))


class ConsoleTest(base.BaseTestCase):

    def test_checksum(self):
        self.assertEqual((vm.CHECKSUM_TAG, SHA), vm.parse_console_line(
            'FASTBOOT-CHECKSUM %s\r\n' % SHA.upper()))

    def test_checksum_after_noise(self):
        self.assertEqual((vm.CHECKSUM_TAG, SHA), vm.parse_console_line(
            '[    1.23] x FASTBOOT-CHECKSUM %s' % SHA))

    def test_bad_checksum(self):
        self.assertIsNone(vm.parse_console_line('FASTBOOT-CHECKSUM abc'))
        self.assertIsNone(vm.parse_console_line('FASTBOOT-CHECKSUM'))
        self.assertIsNone(vm.parse_console_line(
            'FASTBOOT-CHECKSUM ' + 'g' * 64))

    def test_other_tags(self):
        self.assertEqual((vm.DONE_TAG, 'vm1'),
                         vm.parse_console_line('FASTBOOT-DONE vm1'))
        self.assertEqual((vm.ERROR_TAG, 'no /dev/vda'),
                         vm.parse_console_line('FASTBOOT-ERROR no /dev/vda'))
        self.assertEqual((vm.PROBE_TAG, ''),
                         vm.parse_console_line('FASTBOOT-PROBE-OK'))
        self.assertIsNone(vm.parse_console_line('Linux version 6.1'))

    def test_tags_match_the_guest(self):
        for name in ('CHECKSUM_TAG', 'DONE_TAG', 'ERROR_TAG', 'PROBE_TAG'):
            self.assertEqual(getattr(guest, name), getattr(vm, name))


class AccelTest(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.MockPatchObject(vm, '_accel_cache', {}))
        self.useFixture(fixtures.EnvironmentVariable(vm.ACCEL_ENV))
        self.guest = _fake_guest()

    def test_kvm_when_probe_works(self):
        probe = mock.Mock(return_value=True)
        self.assertEqual('kvm', vm.choose_accel(self.guest, probe=probe))
        probe.assert_called_once_with(self.guest)

    def test_tcg_when_probe_fails_and_cached(self):
        probe = mock.Mock(return_value=False)
        self.assertEqual('tcg', vm.choose_accel(self.guest, probe=probe))
        self.assertEqual('tcg', vm.choose_accel(self.guest, probe=probe))
        self.assertEqual(1, probe.call_count)
        self.assertEqual('tcg', vm.choose_accel(self.guest, probe=probe,
                                                refresh=True))
        self.assertEqual(2, probe.call_count)

    def test_env_override(self):
        self.useFixture(fixtures.EnvironmentVariable(vm.ACCEL_ENV, 'tcg'))
        probe = mock.Mock(return_value=True)
        self.assertEqual('tcg', vm.choose_accel(self.guest, probe=probe))
        probe.assert_not_called()

    def test_probe_without_device(self):
        self.useFixture(fixtures.MockPatchObject(
            vm, '_kvm_device_usable', return_value=False))
        with mock.patch('subprocess.run') as run:
            self.assertFalse(vm.probe_kvm(self.guest))
        run.assert_not_called()

    def test_probe_checks_the_guest_reaches_init(self):
        self.useFixture(fixtures.MockPatchObject(
            vm, '_kvm_device_usable', return_value=True))
        for rc, out, works in [
                (0, b'FASTBOOT-PROBE-OK\n', True),
                (0, b'', False),
                (-6, b'failed to set MSR 0x10a\n', False)]:
            with mock.patch('subprocess.run') as run:
                run.return_value = mock.Mock(returncode=rc, stdout=out)
                self.assertEqual(works, vm.probe_kvm(self.guest))
            argv = run.call_args[0][0]
            self.assertEqual('kvm', argv[argv.index('-accel') + 1])
            self.assertIn('fastboot.probe=1',
                          argv[argv.index('-append') + 1])


class ArgvTest(base.BaseTestCase):

    def test_pvh_tcg(self):
        argv = vm.qemu_argv(_fake_guest(), 'vm1', '/d/a,b.qcow2', 'tcg')
        self.assertEqual(vm.QBOOT_ROM, argv[argv.index('-bios') + 1])
        self.assertNotIn('-cpu', argv)
        self.assertIn('-no-reboot', argv)
        self.assertEqual('file=/d/a,,b.qcow2,format=qcow2,if=virtio',
                         argv[argv.index('-drive') + 1])
        self.assertTrue(argv[argv.index('-append') + 1].endswith(
            'fastboot.vm=vm1'))
        self.assertEqual('256', argv[argv.index('-m') + 1])

    def test_bios_kvm(self):
        argv = vm.qemu_argv(_fake_guest(boot_method='bios'), 'vm1', None,
                            'kvm')
        self.assertNotIn('-bios', argv)
        self.assertNotIn('-drive', argv)
        self.assertEqual('host', argv[argv.index('-cpu') + 1])


class QemuVmTest(base.BaseTestCase):
    """QemuVm driven by a Python script standing in for QEMU."""

    def setUp(self):
        super().setUp()
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.log = os.path.join(self.tmp, 'console.log')

    def _run(self, script, timeout=30):
        self.useFixture(fixtures.MockPatchObject(
            vm, 'qemu_argv', return_value=[sys.executable, '-c', script]))
        return vm.boot(_fake_guest(), 'vm1', '/disk', self.log,
                       timeout=timeout, accel='tcg')

    def test_good_boot(self):
        result = self._run(
            'import time; print("booting"); time.sleep(0.2); '
            'print("FASTBOOT-CHECKSUM %s"); print("FASTBOOT-DONE vm1")' % SHA)
        self.assertTrue(result.ok, result.error)
        self.assertTrue(result.checksum_ok)
        self.assertEqual(SHA, result.checksum)
        self.assertGreaterEqual(result.boot_seconds, 0.2)
        self.assertLessEqual(result.boot_seconds, result.wall_seconds)
        with open(self.log) as fh:
            self.assertIn('booting', fh.read())

    def test_wrong_checksum(self):
        result = self._run('print("FASTBOOT-CHECKSUM %s"); '
                           'print("FASTBOOT-DONE vm1")' % ('cd' * 32))
        self.assertFalse(result.checksum_ok)
        self.assertIn('expected', result.error)

    def test_guest_error(self):
        result = self._run('print("FASTBOOT-ERROR mount /dev/vda")')
        self.assertFalse(result.ok)
        self.assertIn('mount /dev/vda', result.error)

    def test_timeout_kills(self):
        result = self._run('import time; print("hang", flush=True); '
                           'time.sleep(60)', timeout=1)
        self.assertFalse(result.ok)
        self.assertTrue(result.timed_out)
        self.assertLess(result.wall_seconds, 10)
        self.assertIsNotNone(result.returncode)

    def test_context_manager_kills(self):
        self.useFixture(fixtures.MockPatchObject(
            vm, 'qemu_argv', return_value=[sys.executable, '-c',
                                           'import time; time.sleep(60)']))
        with vm.QemuVm(_fake_guest(), 'vm1', '/d', self.log,
                       accel='tcg') as qvm:
            proc = qvm.proc
            self.assertIsNone(proc.poll())
        self.assertIsNotNone(proc.poll())

    def test_boot_many_keeps_order(self):
        self.useFixture(fixtures.MockPatchObject(
            vm, 'qemu_argv', side_effect=lambda g, name, *a, **k: [
                sys.executable, '-c',
                'print("FASTBOOT-CHECKSUM %s"); print("FASTBOOT-DONE %s")'
                % (SHA, name)]))
        specs = [('vm%d' % i, '/d%d' % i,
                  os.path.join(self.tmp, 'vm%d.log' % i)) for i in range(3)]
        results = vm.boot_many(_fake_guest(), specs, accel='tcg')
        self.assertEqual(['vm0', 'vm1', 'vm2'], [r.name for r in results])
        self.assertTrue(all(r.ok for r in results))

    def test_boot_many_runs_each_vm_under_its_prefix(self):
        # The prefix is how a VM boots inside a host's network namespace;
        # here it is "env NAME=value" so the child shows it ran under it.
        self.useFixture(fixtures.MockPatchObject(
            vm, 'qemu_argv', side_effect=lambda g, name, *a, **k: [
                sys.executable, '-c',
                'import os; print("FASTBOOT-CHECKSUM %s"); '
                'print("FASTBOOT-DONE", os.environ.get("FB_HOST"))' % SHA]))
        specs = [('vm%d' % i, '/d%d' % i,
                  os.path.join(self.tmp, 'vm%d.log' % i),
                  ['env', 'FB_HOST=h%d' % i]) for i in range(2)]
        results = vm.boot_many(_fake_guest(), specs, accel='tcg')
        self.assertTrue(all(r.ok for r in results))
        for i in range(2):
            with open(specs[i][2]) as fh:
                self.assertIn('FASTBOOT-DONE h%d' % i, fh.read())
