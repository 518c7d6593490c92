"""``apply``: round trip, comments kept, backups, atomic and careful."""

import os
import stat

import fixtures
from oslotest import base

from fastboot_nova import tuning
from fastboot_nova.tuning import writer

NOVA = """\
# Nova, as devstack left it.
[DEFAULT]
debug = True
# keep this comment
transport_url = rabbit://stackrabbit:secret@127.0.0.1:5672/
max_concurrent_builds = 2
default_thread_pool_size = 500

[database]
connection = mysql+pymysql://root:secret@127.0.0.1/nova_cell1
max_overflow = 50
    and a continuation line

[glance]
api_servers = http://127.0.0.1/image
"""


class ApplyTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.profile = tuning.generate(tuning.Inputs(servers=500,
                                                     computes=2))

    def write(self, name, text, mode=0o640):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def files(self, *paths):
        return [tuning.ConfigFile.from_arg(p) for p in paths]

    def read(self, path):
        with open(path) as f:
            return f.read()

    def backups(self):
        return sorted(n for n in os.listdir(self.dir) if n.endswith('.bak'))


class TestRoundTrip(ApplyTestCase):

    def test_apply_then_check_passes(self):
        nova = self.write('nova.conf', NOVA)
        cnf = self.write('my.cnf', '[mysqld]\nmax-connections = 100\n')
        rabbit = self.write('rabbitmq.conf', 'heartbeat = 30\n')
        cinder = self.write('cinder.conf', '[DEFAULT]\n')
        placement = self.write('placement.conf',
                               '[placement_database]\nmax_overflow = 50\n')
        files = self.files(nova, cnf, rabbit, cinder, placement)
        self.assertNotEqual([], tuning.check(self.profile, files))
        changes = tuning.apply(self.profile, files)
        self.assertEqual([], tuning.check(self.profile, files))
        self.assertEqual({nova, cnf, rabbit, cinder, placement},
                         {c.path for c in changes})

    def test_comments_and_other_options_kept(self):
        nova = self.write('nova.conf', NOVA)
        tuning.apply(self.profile, self.files(nova))
        text = self.read(nova)
        lines = text.splitlines()
        # Every original line not replaced is still there, in order.
        replaced = ('max_concurrent_builds', 'max_overflow',
                    '    and a continuation')
        kept = [line for line in NOVA.splitlines()
                if not line.startswith(replaced)]
        positions = [lines.index(line) for line in kept if line]
        self.assertEqual(sorted(positions), positions)
        self.assertIn('max_concurrent_builds = 50', lines)
        self.assertIn('max_overflow = 20', lines)
        self.assertNotIn('    and a continuation line', lines)
        # A larger value a human chose passes and is left alone.
        self.assertIn('default_thread_pool_size = 500', lines)
        # A new option lands in its section, with why.
        i = lines.index('cell_worker_thread_pool_size = 128')
        self.assertTrue(lines.index('[DEFAULT]') < i <
                        lines.index('[database]'))
        self.assertTrue(lines[i - 1].startswith('# fastboot-tune: '))
        # Values that already pass are not written (max_pool_size 5 of
        # oslo.db is within the budget's 10).
        self.assertNotIn('max_pool_size = 10', lines)
        # A missing section is appended.
        self.assertIn('[quota]', lines)
        self.assertIn('[scheduler]', lines)

    def test_second_apply_changes_nothing(self):
        nova = self.write('nova.conf', NOVA)
        tuning.apply(self.profile, self.files(nova))
        first = self.read(nova)
        self.assertEqual([], tuning.apply(self.profile, self.files(nova)))
        self.assertEqual(first, self.read(nova))
        self.assertEqual(1, len(self.backups()))

    def test_mycnf_sets_where_mariadb_reads(self):
        cnf = self.write('my.cnf', '[client]\nport = 3306\n\n'
                                   '[mysqld]\nskip-name-resolve\n'
                                   '!includedir /etc/mysql/conf.d/\n\n'
                                   '[mariadbd]\nmax-connections = 100\n')
        tuning.apply(self.profile, self.files(cnf))
        self.assertEqual(
            '[client]\nport = 3306\n\n'
            '[mysqld]\nskip-name-resolve\n'
            '!includedir /etc/mysql/conf.d/\n'
            '# fastboot-tune: one descriptor per connection plus two per '
            'cached table; mariadbd asks for this at start (10 + '
            'max_connections + 2 x table_open_cache 2000)\n'
            'open_files_limit = 4780\n'
            '# fastboot-tune: every service connects from a few hosts; a '
            'burst of aborted connections must not block a whole host '
            '(10000)\n'
            'max_connect_errors = 10000\n\n'
            '[mariadbd]\nmax-connections = 770\n', self.read(cnf))

    def test_file_without_final_newline(self):
        rabbit = self.write('rabbitmq.conf', 'heartbeat = 30')
        tuning.apply(self.profile, self.files(rabbit))
        self.assertEqual('heartbeat = 120\n', self.read(rabbit))
        ini = self.write('nova-cpu.conf', '[DEFAULT]\ndebug = true')
        tuning.apply(self.profile, self.files(ini))
        self.assertTrue(self.read(ini).startswith(
            '[DEFAULT]\ndebug = true\n# fastboot-tune: '))


class TestSafety(ApplyTestCase):

    def test_backup_is_the_original(self):
        nova = self.write('nova.conf', NOVA, mode=0o640)
        changes = tuning.apply(self.profile, self.files(nova))
        backup = changes[0].backup
        self.assertEqual([os.path.basename(backup)], self.backups())
        self.assertTrue(backup.startswith(nova + '.fastboot-tune-'))
        self.assertEqual(NOVA, self.read(backup))
        self.assertEqual(0o640, stat.S_IMODE(os.stat(backup).st_mode))

    def test_backups_never_overwritten(self):
        nova = self.write('nova.conf', '[DEFAULT]\n')
        tuning.apply(self.profile, self.files(nova))
        self.write('nova.conf', '[DEFAULT]\n# second\n')
        tuning.apply(self.profile, self.files(nova))
        backups = self.backups()
        self.assertEqual(2, len(backups))
        texts = {self.read(os.path.join(self.dir, b)) for b in backups}
        self.assertEqual({'[DEFAULT]\n', '[DEFAULT]\n# second\n'}, texts)

    def test_no_backup(self):
        nova = self.write('nova.conf', '[DEFAULT]\n')
        tuning.apply(self.profile, self.files(nova), backup=False)
        self.assertEqual([], self.backups())

    def test_mode_kept_and_no_temporary_left(self):
        nova = self.write('nova.conf', NOVA, mode=0o600)
        tuning.apply(self.profile, self.files(nova), backup=False)
        self.assertEqual(0o600, stat.S_IMODE(os.stat(nova).st_mode))
        self.assertEqual(['nova.conf'], os.listdir(self.dir))

    def test_owner_kept(self):
        if os.getuid() != 0:
            self.skipTest('changing a file owner needs root')
        nova = self.write('nova.conf', NOVA)
        os.chown(nova, 65534, 65534)
        tuning.apply(self.profile, self.files(nova))
        st = os.stat(nova)
        self.assertEqual((65534, 65534), (st.st_uid, st.st_gid))

    def test_symlink_followed(self):
        real = self.write('real-nova.conf', NOVA)
        link = os.path.join(self.dir, 'nova.conf')
        os.symlink(real, link)
        tuning.apply(self.profile, self.files(link), backup=False)
        self.assertTrue(os.path.islink(link))
        self.assertIn('max_concurrent_builds = 50', self.read(real))

    def test_unparsable_untouched(self):
        bad = 'debug = true\n[DEFAULT]\nmax_concurrent_builds = 2\n'
        nova = self.write('nova.conf', bad)
        before = os.stat(nova)
        e = self.assertRaises(tuning.ConfigFileError, tuning.apply,
                              self.profile, self.files(nova))
        self.assertIn('cannot be parsed', str(e))
        self.assertEqual(bad, self.read(nova))
        self.assertEqual(before.st_mtime_ns, os.stat(nova).st_mtime_ns)
        self.assertEqual([], self.backups())

    def test_one_bad_file_leaves_all_untouched(self):
        nova = self.write('nova.conf', NOVA)
        cnf = self.write('my.cnf', 'max_connections = 10\n')
        self.assertRaises(tuning.ConfigFileError, tuning.apply,
                          self.profile, self.files(nova, cnf))
        self.assertEqual(NOVA, self.read(nova))
        self.assertEqual([], self.backups())

    def test_missing_file(self):
        e = self.assertRaises(
            tuning.ConfigFileError, tuning.apply, self.profile,
            self.files(os.path.join(self.dir, 'cinder.conf')))
        self.assertIn('cinder.conf: no such file', str(e))

    def test_dry_run_writes_nothing(self):
        nova = self.write('nova.conf', NOVA)
        changes = tuning.apply(self.profile, self.files(nova),
                               dry_run=True)
        self.assertIn(('max_concurrent_builds', '2', 50),
                      [(c.setting.name, c.old, c.new) for c in changes])
        self.assertEqual(NOVA, self.read(nova))
        self.assertEqual([], self.backups())

    def test_replace_failure_leaves_original(self):
        nova = self.write('nova.conf', NOVA)
        self.useFixture(fixtures.MockPatch(
            'os.replace', side_effect=OSError(28, 'No space left')))
        self.assertRaises(OSError, writer.replace, nova, b'new')
        self.assertEqual(NOVA, self.read(nova))
        self.assertEqual(['nova.conf'], os.listdir(self.dir))
