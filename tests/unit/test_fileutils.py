"""The one safe writer and the bounded reader (security review items 7, 8).

Each attack test plants what an attacker with write access to the
directory would plant, and checks the secret does not leave it.
"""

import os
import stat

import fixtures
from oslotest import base

from fastboot_nova import exception
from fastboot_nova import fileutils
from fastboot_nova.storage.qemu import psk
from fastboot_nova.storage import state

KEY = 'fastboot:' + 'ab' * 32 + '\n'


class TestWritePrivate(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.outside = os.path.join(self.useFixture(fixtures.TempDir()).path,
                                    'stolen')
        with open(self.outside, 'w') as f:
            f.write('untouched')

    def assertOutsideUntouched(self):
        with open(self.outside) as f:
            self.assertEqual('untouched', f.read())

    def plant(self, name):
        os.symlink(self.outside, os.path.join(self.dir, name))

    def test_planted_tmp_symlink_does_not_receive_the_secret(self):
        # The old writers opened "<path>.tmp" with O_TRUNC.
        self.plant('token.tmp')
        target = os.path.join(self.dir, 'token')
        fileutils.write_private(target, 'secret-token')
        self.assertOutsideUntouched()
        with open(target) as f:
            self.assertEqual('secret-token', f.read())

    def test_symlink_at_the_target_is_replaced_not_followed(self):
        self.plant('token')
        target = os.path.join(self.dir, 'token')
        fileutils.write_private(target, b'secret')
        self.assertOutsideUntouched()
        self.assertFalse(os.path.islink(target))

    def test_mode_0600_whatever_the_umask(self):
        old = os.umask(0)
        self.addCleanup(os.umask, old)
        target = os.path.join(self.dir, 'f')
        fileutils.write_private(target, 'x')
        self.assertEqual(0o600, stat.S_IMODE(os.stat(target).st_mode))

    def test_no_temporary_file_left_on_failure(self):
        target = os.path.join(self.dir, 'f')
        self.assertRaises(TypeError, fileutils.write_private, target, 42)
        self.assertEqual([], os.listdir(self.dir))

    def test_state_file_goes_through_it(self):
        self.plant('state.json.tmp')
        st = state.StateFile(self.dir)
        with st.update() as data:
            data['vms']['a'] = {'image': 'i'}
        self.assertOutsideUntouched()
        self.assertEqual({'image': 'i'}, st.read()['vms']['a'])
        self.assertEqual(0o600, stat.S_IMODE(os.stat(st.path).st_mode))

    def test_psk_copy_goes_through_it(self):
        keys = os.path.join(self.useFixture(fixtures.TempDir()).path, 'k')
        with open(keys, 'w') as f:
            f.write(KEY)
        os.chmod(keys, 0o600)
        tls = os.path.join(self.dir, 'tls')
        os.mkdir(tls, 0o700)
        os.symlink(self.outside, os.path.join(tls, psk.KEYS_FILE + '.tmp'))
        psk.ExportAuth(psk_file=keys, identity='fastboot').install(tls)
        self.assertOutsideUntouched()
        with open(os.path.join(tls, psk.KEYS_FILE)) as f:
            self.assertEqual(KEY, f.read())

    def test_psk_refuses_a_symlinked_directory(self):
        keys = os.path.join(self.useFixture(fixtures.TempDir()).path, 'k')
        with open(keys, 'w') as f:
            f.write(KEY)
        os.chmod(keys, 0o600)
        elsewhere = self.useFixture(fixtures.TempDir()).path
        tls = os.path.join(self.dir, 'tls')
        os.symlink(elsewhere, tls)
        auth = psk.ExportAuth(psk_file=keys, identity='fastboot')
        e = self.assertRaises(exception.ExportAuthError, auth.install, tls)
        self.assertIn('symbolic link', str(e))
        self.assertEqual([], os.listdir(elsewhere))

    def test_create_private_refuses_a_planted_symlink(self):
        self.plant('disk')
        self.assertRaises(FileExistsError, fileutils.create_private,
                          os.path.join(self.dir, 'disk'))
        self.assertOutsideUntouched()


class TestReadBounded(base.BaseTestCase):

    def test_dev_zero_is_refused_at_once(self):
        e = self.assertRaises(fileutils.NotRegularFile,
                              fileutils.read_bounded, '/dev/zero')
        self.assertIn('/dev/zero', str(e))

    def test_fifo_is_refused_without_waiting_for_a_writer(self):
        fifo = os.path.join(self.useFixture(fixtures.TempDir()).path, 'p')
        os.mkfifo(fifo)
        self.assertRaises(fileutils.NotRegularFile, fileutils.read_bounded,
                          fifo)

    def test_large_file_is_refused(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'big')
        with open(path, 'wb') as f:
            f.write(b'x' * 101)
        self.assertRaises(fileutils.FileTooLarge, fileutils.read_bounded,
                          path, 100)

    def test_small_file_is_read(self):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path, 'f')
        with open(path, 'wb') as f:
            f.write(b'{}')
        self.assertEqual(b'{}', fileutils.read_bounded(path, 2))
