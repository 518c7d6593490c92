"""Tests of the ``fastboot`` CLI against a fake engine."""

import io
import json
import os
from unittest import mock

import fixtures
from oslotest import base
from stevedore import _cache as stevedore_cache

from fastboot_nova.cmd import cli
from fastboot_nova import exception
from tests.unit import fakes


class CliTestCase(base.BaseTestCase):

    def setUp(self):
        super().setUp()
        self.useFixture(fixtures.EnvironmentVariable(cli.STATE_PATH_ENV))
        # No host or user configuration file may leak into a test.
        self.useFixture(fixtures.EnvironmentVariable(
            'HOME', self.useFixture(fixtures.TempDir()).path))
        # stevedore caches entry points under ~/.cache, keyed on file
        # mtimes packed as 32-bit floats: a reinstall within about two
        # minutes can read stale commands. Give each test a fresh cache.
        self.useFixture(fixtures.MockPatch(
            'stevedore._cache._c', stevedore_cache.Cache(
                cache_dir=self.useFixture(fixtures.TempDir()).path)))
        self.engine = fakes.FakeEngine()
        self.get_engine = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.storage.get_engine',
            return_value=self.engine)).mock
        self.tmp = self.useFixture(fixtures.TempDir()).path
        self.origin = os.path.join(self.tmp, 'origin.raw')
        with open(self.origin, 'wb') as f:
            f.write(b'\0' * 4096)

    def run_cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def run_json(self, *argv):
        code, out, err = self.run_cli(*(argv + ('-f', 'json')))
        self.assertEqual(0, code, err)
        return json.loads(out)

    def assertErrorLine(self, err, expected):
        lines = err.strip().splitlines()
        self.assertEqual(1, len(lines), err)
        self.assertTrue(lines[0].startswith('fastboot: error: '), err)
        self.assertIn(expected, lines[0])
        self.assertNotIn('Traceback', err)


class TestHelpAndUsage(CliTestCase):

    def test_help_lists_commands(self):
        code, out, err = self.run_cli('--help')
        self.assertEqual(0, code, err)
        for name in ('create', 'destroy', 'snapshot', 'clone', 'migrate',
                     'prefetch', 'list', 'image list', 'image remove',
                     'reconcile', 'demo'):
            self.assertIn(name, out)
        self.assertIn('--state-path', out)

    def test_command_help(self):
        code, out, err = self.run_cli('list', '--help')
        self.assertEqual(0, code, err)
        self.assertIn('fastboot list', out)
        self.get_engine.assert_not_called()

    def test_no_command_is_a_usage_error(self):
        code, out, err = self.run_cli()
        self.assertEqual(2, code)
        self.assertIn('fastboot: error: a command is required', err)

    def test_unknown_command(self):
        code, out, err = self.run_cli('frobnicate')
        self.assertEqual(2, code)
        self.assertErrorLine(err, 'Unknown command')

    def test_missing_argument(self):
        code, out, err = self.run_cli('create', 'vm1')
        self.assertEqual(2, code)
        self.assertIn('fastboot create: error:', err)
        self.get_engine.assert_not_called()

    def test_unknown_global_option(self):
        code, out, err = self.run_cli('--no-such-option', 'list')
        self.assertEqual(2, code)


class TestVmCommands(CliTestCase):

    def test_create(self):
        data = self.run_json('create', 'vm1', 'img', self.origin)
        self.assertEqual('vm1', data['name'])
        self.assertEqual('img', data['image'])
        self.assertEqual('/fake/state/vms/vm1.qcow2', data['path'])
        self.assertEqual([('create', 'vm1', 'img', self.origin)],
                         self.engine.calls)

    def test_create_table(self):
        code, out, err = self.run_cli('create', 'vm1', 'img', self.origin)
        self.assertEqual(0, code, err)
        self.assertIn('vm1', out)
        self.assertEqual('', err)

    def test_bad_names_are_usage_errors(self):
        for bad in ('a/b', '..', 'x..y', 'with space', 'a;b', '$(reboot)',
                    '-dash', ''):
            code, out, err = self.run_cli('create', '--', bad, 'img',
                                          self.origin)
            self.assertEqual(2, code, bad)
            self.assertIn('Invalid VM name', err, bad)
            self.assertNotIn('Traceback', err)
        self.get_engine.assert_not_called()

    def test_huge_name_is_not_echoed_whole(self):
        huge = 'a' * 100000
        for argv in (('create', huge, 'img', self.origin),
                     ('destroy', huge), ('image', 'remove', huge)):
            code, out, err = self.run_cli(*argv)
            self.assertEqual(2, code, err[:200])
            self.assertIn('(100000 characters)', err)
            self.assertLess(len(err), 2000)
        self.get_engine.assert_not_called()

    def test_huge_location_is_not_echoed_whole(self):
        code, out, err = self.run_cli('create', 'vm1', 'img',
                                      '/' + 'a' * 100000)
        self.assertEqual(2, code)
        self.assertIn('(100001 characters)', err)
        self.assertLess(len(err), 2000)

    def test_huge_error_line_is_cut(self):
        self.engine.list = mock.Mock(side_effect=exception.FastbootException(
            'x' * 100000))
        code, out, err = self.run_cli('list')
        self.assertEqual(1, code)
        self.assertIn('(100000 characters)', err)
        self.assertLess(len(err), 2000)

    def test_bad_image_name(self):
        code, out, err = self.run_cli('create', 'vm1', 'im/g', self.origin)
        self.assertEqual(2, code)
        self.assertIn('Invalid image name', err)

    def test_missing_origin_is_a_usage_error(self):
        code, out, err = self.run_cli('create', 'vm1', 'img',
                                      os.path.join(self.tmp, 'nope'))
        self.assertEqual(2, code)
        self.assertIn('Invalid origin location', err)
        self.get_engine.assert_not_called()

    def test_nbd_origin(self):
        data = self.run_json('create', 'vm1', 'img', 'nbd://origin/img')
        self.assertEqual('vm1', data['name'])

    def test_list_json(self):
        self.run_cli('create', 'vm2', 'img', self.origin)
        self.run_cli('create', 'vm1', 'img', self.origin)
        data = self.run_json('list')
        self.assertEqual(
            [{'name': 'vm1', 'image': 'img',
              'path': '/fake/state/vms/vm1.qcow2', 'written_bytes': 0},
             {'name': 'vm2', 'image': 'img',
              'path': '/fake/state/vms/vm2.qcow2', 'written_bytes': 0}],
            data)

    def test_list_empty_json(self):
        self.assertEqual([], self.run_json('list'))

    def test_destroy(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        code, out, err = self.run_cli('destroy', 'vm1')
        self.assertEqual(0, code, err)
        self.assertEqual({}, self.engine.vms)

    def test_destroy_unknown_vm(self):
        code, out, err = self.run_cli('destroy', 'ghost')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'VM ghost does not exist.')
        self.assertEqual('', out)

    def test_snapshot(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        data = self.run_json('snapshot', 'vm1', 'snap', self.tmp)
        self.assertEqual(os.path.join(self.tmp, 'snap.qcow2'), data['path'])

    def test_snapshot_needs_directory(self):
        code, out, err = self.run_cli('snapshot', 'vm1', 'snap',
                                      os.path.join(self.tmp, 'nope'))
        self.assertEqual(2, code)
        self.assertIn('not an existing directory', err)

    def test_clone(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        data = self.run_json('clone', 'vm1', 'vm2')
        self.assertEqual('vm2', data['name'])
        self.assertEqual(['vm1', 'vm2'], sorted(self.engine.vms))

    def test_clone_onto_existing(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        self.run_cli('create', 'vm2', 'img', self.origin)
        code, out, err = self.run_cli('clone', 'vm1', 'vm2')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'VM vm2 already exists.')

    def test_migrate(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        data = self.run_json('migrate', 'vm1', self.tmp)
        self.assertEqual(self.tmp, data['state_path'])
        self.assertEqual({}, self.engine.vms)


class TestImageCommands(CliTestCase):

    def test_image_list_json(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        data = self.run_json('image', 'list')
        self.assertEqual(1, len(data))
        self.assertEqual('img', data[0]['name'])
        self.assertEqual(['vm1'], data[0]['vms'])
        self.assertEqual(self.origin, data[0]['location'])

    def test_image_list_table_joins_vms(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        self.run_cli('create', 'vm2', 'img', self.origin)
        code, out, err = self.run_cli('image', 'list')
        self.assertEqual(0, code, err)
        self.assertIn('vm1, vm2', out)

    def test_image_remove_in_use(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        code, out, err = self.run_cli('image', 'remove', 'img')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'still used by VMs: vm1')

    def test_image_remove(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        self.run_cli('destroy', 'vm1')
        code, out, err = self.run_cli('image', 'remove', 'img')
        self.assertEqual(0, code, err)
        self.assertEqual({}, self.engine.images)

    def test_prefetch_reports_progress_on_stderr(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        code, out, err = self.run_cli('prefetch', 'img', '-f', 'json')
        self.assertEqual(0, code, err)
        self.assertEqual(1 << 20, json.loads(out)['cached_bytes'])
        self.assertIn('prefetch img: 0.0 / 1.0 MiB (0%)', err)
        self.assertIn('prefetch img: 1.0 / 1.0 MiB (100%)', err)

    def test_image_add(self):
        data = self.run_json('image', 'add', 'img', self.origin)
        self.assertEqual(('img', self.origin, []),
                         (data['name'], data['location'], data['vms']))
        self.assertIn(('add_image', 'img', self.origin), self.engine.calls)

    def test_image_add_bad_name(self):
        code, out, err = self.run_cli('image', 'add', 'a;b', self.origin)
        self.assertEqual(2, code)
        self.assertEqual([], self.engine.calls)

    def test_image_reparent(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        data = self.run_json('image', 'reparent', 'img',
                             'nbd://10.0.0.2:10809/img')
        self.assertEqual('img', data['name'])
        self.assertIn(('reparent', 'img', 'nbd://10.0.0.2:10809/img'),
                      self.engine.calls)

    def test_image_reparent_with_alternates(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        code, out, err = self.run_cli(
            'image', 'reparent', 'img', 'nbd://10.0.0.2/img',
            '--alternate', 'nbd://10.0.0.3/img', '--alternate', self.origin)
        self.assertEqual(0, code, err)
        self.assertIn(('reparent', 'img', 'nbd://10.0.0.2/img',
                       ('nbd://10.0.0.3/img', self.origin)),
                      self.engine.calls)

    def test_image_list_shows_the_parents_read_from(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        self.assertEqual([], self.run_json('image', 'list')[0]['parents'])
        self.run_cli('image', 'reparent', 'img', 'nbd://10.0.0.2/img',
                     '--alternate', 'nbd://10.0.0.3/img')
        # The origin, always read last, is not listed.
        self.assertEqual(['nbd://10.0.0.2/img', 'nbd://10.0.0.3/img'],
                         self.run_json('image', 'list')[0]['parents'])

    def test_image_reparent_bad_location(self):
        self.run_cli('create', 'vm1', 'img', self.origin)
        code, out, err = self.run_cli('image', 'reparent', 'img',
                                      'http://x/img')
        self.assertEqual(2, code)
        self.assertIn('only local paths, nbd://', err)
        self.assertNotIn(('reparent', 'img', 'http://x/img'),
                         self.engine.calls)

    def test_prefetch_unknown_image(self):
        code, out, err = self.run_cli('prefetch', 'nope')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'Image nope is not in')


class TestHostCommands(CliTestCase):

    def test_reconcile(self):
        data = self.run_json('reconcile')
        self.assertEqual(['lost'], data['orphan_disks'])
        self.assertFalse(data['clean'])
        self.assertFalse(data['daemon_restarted'])

    def test_shutdown(self):
        code, out, err = self.run_cli('shutdown')
        self.assertEqual(0, code, err)
        self.assertFalse(self.engine.running)


class TestPoolCommands(CliTestCase):

    def setUp(self):
        super().setUp()
        self.engine.pool = None

        def grow_pool(size_mib):
            self.engine.calls.append(('grow_pool', size_mib))
            self.engine.pool = {'data_bytes': size_mib << 20,
                                'low_space': False}
            return self.engine.pool
        self.engine.pool_status = lambda: self.engine.pool
        self.engine.grow_pool = grow_pool
        self.engine.capabilities = dict(self.engine.capabilities,
                                        thin_pool=True)

    def test_show_before_the_first_vm(self):
        self.assertEqual({'pool': 'none yet: made with the first VM'},
                         self.run_json('pool', 'show'))

    def test_grow(self):
        data = self.run_json('pool', 'grow', '2048')
        self.assertEqual({'data_bytes': 2048 << 20, 'low_space': False},
                         data)
        self.assertEqual(('grow_pool', 2048), self.engine.calls[-1])
        self.assertEqual(data, self.run_json('pool', 'show'))

    def test_grow_bad_size(self):
        for bad in ('0', '-1', 'ten', '1e3', str(1 << 40)):
            code, out, err = self.run_cli('pool', 'grow', bad)
            self.assertEqual(2, code, err)
            self.assertIn('SIZE_MIB', err)
        self.assertNotIn('grow_pool', [c[0] for c in self.engine.calls])

    def test_qemu_backend_has_no_pool(self):
        self.engine.capabilities = dict(self.engine.capabilities,
                                        thin_pool=False)
        code, out, err = self.run_cli('pool', 'show')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'The qemu backend has no thin-pool')


class TestCapabilities(CliTestCase):
    """The CLI asks the engine's declared capabilities (item 14)."""

    def test_verbs_the_backend_lacks_fail_before_running(self):
        self.engine.capabilities = dict(self.engine.capabilities,
                                        snapshot=False, migrate=False,
                                        prefetch=False)
        self.engine.create('vm1', 'img', self.origin)
        self.engine.calls.clear()
        for argv, verb in ((('snapshot', 'vm1', 's', self.tmp), 'snapshot'),
                           (('migrate', 'vm1', self.tmp), 'migrate'),
                           (('prefetch', 'img'), 'prefetch')):
            code, out, err = self.run_cli(*argv)
            self.assertEqual(1, code, err)
            self.assertErrorLine(err, 'the qemu backend cannot %s' % verb)
        self.assertEqual([], self.engine.calls)

    def test_connection_info_needs_attached_origins(self):
        path = os.path.join(self.tmp, 'ci.json')
        with open(path, 'w') as f:
            json.dump({'driver_volume_type': 'iscsi', 'data': {
                'target_portal': '10.0.0.1:3260',
                'target_iqn': 'iqn.2010-10.org.openstack:v',
                'target_lun': 1}}, f)
        code, out, err = self.run_cli('image', 'add', 'img',
                                      '--connection-info', path)
        self.assertEqual(1, code, err)
        self.assertErrorLine(err, 'other volume types need [fastboot] '
                                  'backend = dm')
        self.assertEqual([], self.engine.calls)

    def test_rbd_connection_info_is_an_rbd_location(self):
        conf = os.path.join(self.tmp, 'ceph.conf')
        with open(conf, 'w') as f:
            f.write('[global]\n')
        path = os.path.join(self.tmp, 'ci.json')
        with open(path, 'w') as f:
            json.dump({'driver_volume_type': 'rbd', 'data': {
                'name': 'volumes/volume-1', 'hosts': ['127.0.0.1'],
                'ports': ['6789'], 'auth_enabled': True,
                'auth_username': 'cinder', 'secret_type': 'ceph',
                'secret_uuid': None, 'keyring': None}}, f)
        cfg_file = os.path.join(self.tmp, 'fastboot.conf')
        with open(cfg_file, 'w') as f:
            f.write('[fastboot_qemu]\nrbd_ceph_conf = %s\n' % conf)
        code, out, err = self.run_cli('--config-file', cfg_file, 'image',
                                      'add', 'img', '--connection-info',
                                      path)
        self.assertEqual(0, code, err)
        self.assertEqual(
            [('add_image', 'img', 'rbd://volumes/volume-1?conf=%s'
              '&user=cinder&mon=127.0.0.1:6789' % conf)],
            self.engine.calls)

    def test_unknown_capability_is_a_bug_not_false(self):
        self.assertRaises(KeyError, self.engine.supports, 'teleport')

    def test_backends_declare_theirs(self):
        from fastboot_nova.storage.dm import engine as dm_engine
        from fastboot_nova.storage.qemu import engine as qemu_engine
        self.assertEqual(
            {'snapshot', 'migrate', 'prefetch'},
            {k for k, v in qemu_engine.QemuEngine.capabilities.items()
             if v})
        self.assertEqual(
            {'thin_pool', 'attached_origins'},
            {k for k, v in dm_engine.DmEngine.capabilities.items() if v})


class TestErrors(CliTestCase):

    def _fail_with(self, error):
        self.engine.list = mock.Mock(side_effect=error)

    def test_fastboot_exception(self):
        self._fail_with(exception.StateError(path='/s/state.json',
                                             reason='bad\njson'))
        code, out, err = self.run_cli('list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'State file /s/state.json is unusable: '
                                  'bad json')

    def test_os_error(self):
        self._fail_with(PermissionError(13, 'Permission denied', '/x'))
        code, out, err = self.run_cli('list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'Permission denied')

    def test_keyboard_interrupt(self):
        self._fail_with(KeyboardInterrupt())
        code, out, err = self.run_cli('list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'interrupted')

    def test_unexpected_error_has_no_traceback(self):
        self._fail_with(ZeroDivisionError('boom'))
        code, out, err = self.run_cli('list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'ZeroDivisionError: boom')

    def test_debug_shows_traceback(self):
        self._fail_with(exception.VmNotFound(vm='x'))
        code, out, err = self.run_cli('--debug', 'list')
        self.assertEqual(1, code)
        self.assertIn('Traceback', err)
        self.assertIn('fastboot: error: VM x does not exist.', err)

    def test_engine_creation_error(self):
        self.get_engine.side_effect = exception.BackendUnavailable(
            backend='dm', reason='not implemented in this release')
        code, out, err = self.run_cli('list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'Storage backend dm is unavailable')


class TestStatePathAndConfig(CliTestCase):

    def _state_path_used(self, *argv):
        code, out, err = self.run_cli(*(argv + ('list',)))
        self.assertEqual(0, code, err)
        return self.get_engine.call_args.kwargs['state_path']

    def test_default_is_the_configuration(self):
        self.assertIsNone(self._state_path_used())
        conf = self.get_engine.call_args.args[0]
        self.assertEqual('/var/lib/fastboot', conf.fastboot.state_path)

    def test_environment(self):
        self.useFixture(fixtures.EnvironmentVariable(cli.STATE_PATH_ENV,
                                                     '/from/env'))
        self.assertEqual('/from/env', self._state_path_used())

    def test_option_beats_environment(self):
        self.useFixture(fixtures.EnvironmentVariable(cli.STATE_PATH_ENV,
                                                     '/from/env'))
        self.assertEqual('/from/option',
                         self._state_path_used('--state-path',
                                               '/from/option'))

    def test_empty_environment_is_ignored(self):
        self.useFixture(fixtures.EnvironmentVariable(cli.STATE_PATH_ENV,
                                                     ''))
        self.assertIsNone(self._state_path_used())

    def test_config_file(self):
        path = os.path.join(self.tmp, 'fastboot.conf')
        with open(path, 'w') as f:
            f.write('[fastboot]\nstate_path = /from/config\n'
                    'cache_cluster_size = 4096\n')
        self.assertIsNone(self._state_path_used('--config-file', path))
        conf = self.get_engine.call_args.args[0]
        self.assertEqual('/from/config', conf.fastboot.state_path)
        # The option moved to [fastboot_qemu]; the old group still works.
        self.assertEqual(4096, conf.fastboot_qemu.cache_cluster_size)

    def test_missing_config_file(self):
        code, out, err = self.run_cli(
            '--config-file', os.path.join(self.tmp, 'nope.conf'), 'list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'nope.conf does not exist')

    def test_bad_config_value(self):
        path = os.path.join(self.tmp, 'fastboot.conf')
        with open(path, 'w') as f:
            f.write('[fastboot]\nbackend = floppy\n')
        self.get_engine.side_effect = lambda conf, **kw: conf.fastboot.backend
        code, out, err = self.run_cli('--config-file', path, 'list')
        self.assertEqual(1, code)
        self.assertErrorLine(err, 'floppy')


class TestDemo(CliTestCase):

    def setUp(self):
        super().setUp()
        self.run_demo = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.runner.run_demo', return_value={
            'ok': True,
            'vms': [{'name': 'vm0', 'boot_seconds': 2.5, 'ok': True,
                     'checksum_ok': True},
                    {'name': 'vm1', 'boot_seconds': 3.0, 'ok': True,
                     'checksum_ok': True}],
            'origin_bytes_read': 10 * 1024 * 1024,
            'image_bytes': 400 * 1024 * 1024,
        })).mock

    def test_demo(self):
        code, out, err = self.run_cli('demo', '--vms', '2', '--keep',
                                      '--cache-dir', self.tmp)
        self.assertEqual(0, code, err)
        self.assertIn('vm0', out)
        self.assertIn('origin bytes read: 10485760 of 419430400 image '
                      'bytes (2.5%)', out)
        kwargs = self.run_demo.call_args.kwargs
        self.assertEqual(2, kwargs['vms'])
        self.assertTrue(kwargs['keep'])
        self.assertEqual(self.tmp, kwargs['cache_dir'])
        self.assertIsNone(kwargs['state_path'])
        self.assertIsNone(kwargs['report'])
        kwargs['progress']('building guest')
        self.get_engine.assert_not_called()

    def test_demo_state_path(self):
        self.useFixture(fixtures.EnvironmentVariable(cli.STATE_PATH_ENV,
                                                     '/from/env'))
        self.run_cli('demo')
        self.assertEqual('/from/env',
                         self.run_demo.call_args.kwargs['state_path'])
        self.run_cli('demo', '--state-path', '/demo')
        self.assertEqual('/demo',
                         self.run_demo.call_args.kwargs['state_path'])

    def test_demo_defaults(self):
        self.run_cli('demo')
        kwargs = self.run_demo.call_args.kwargs
        self.assertEqual(8, kwargs['vms'])
        self.assertFalse(kwargs['keep'])
        self.assertTrue(kwargs['cache_dir'].endswith('.cache/fastboot'))

    def test_demo_failed_vm_exits_1(self):
        self.run_demo.return_value['vms'][1]['checksum_ok'] = False
        code, out, err = self.run_cli('demo', '-f', 'json')
        self.assertEqual(1, code)

    def test_vm_count_bounds(self):
        for bad in ('0', '65', 'many'):
            code, out, err = self.run_cli('demo', '--vms', bad)
            self.assertEqual(2, code, bad)
        self.run_demo.assert_not_called()

    def test_multihost_demo(self):
        multihost = self.useFixture(fixtures.MockPatch(
            'fastboot_nova.demo.multihost.run_multihost_demo',
            return_value={
                'vms': [{'name': 'h0-vm1', 'host': 'host0', 'ok': True,
                         'boot_seconds': 3.0, 'checksum_ok': True},
                        {'name': 'h1-vm1', 'host': 'host1', 'ok': False,
                         'boot_seconds': None, 'checksum_ok': False,
                         'on_killed_host': True}],
                'hosts': [{'name': 'host0', 'parent': None,
                           'ingress_bytes': 10},
                          {'name': 'host1', 'parent': 'host0',
                           'ingress_bytes': 12}],
                'origin_egress_bytes': 10, 'fanout': 2,
                'reparent_events': [{'host': 'host1', 'old_parent': 'host0',
                                     'new_parent': None,
                                     'reason': 'parent host0 unreachable'}],
                'origin_bytes_read': 5, 'image_bytes': 100})).mock
        code, out, err = self.run_cli('demo', '--hosts', '2', '--fanout',
                                      '2', '--kill-parent-at', '3',
                                      '--cache-dir', self.tmp)
        # The VM of the host killed on purpose does not fail the demo.
        self.assertEqual(0, code, err)
        kwargs = multihost.call_args.kwargs
        self.assertEqual((2, 2, 3.0), (kwargs['hosts'], kwargs['fanout'],
                                       kwargs['kill_parent_at']))
        self.assertIn('host1<-host0 12 B', out)
        self.assertIn('re-parent: host1 host0 -> origin', out)
        self.run_demo.assert_not_called()

    def test_kill_parent_needs_hosts(self):
        code, out, err = self.run_cli('demo', '--kill-parent-at', '3',
                                      '--cache-dir', self.tmp)
        self.assertEqual(1, code)
        self.assertErrorLine(err, '--kill-parent-at needs --hosts')
        self.run_demo.assert_not_called()
