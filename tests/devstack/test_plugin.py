"""The devstack plugin's phases against devstack's real functions.

See base.py for how the tree is built and what is recorded instead of
run.
"""

import os
import stat

from tests.devstack import base

DRIVER = 'fastboot.driver.FastBootDriver'
PIPELINES = ('composite:openstack_compute_api_v21',
             'composite:openstack_compute_api_v21_legacy_v2_compatible')


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def unit_exec(test, service, snapshot='started'):
    unit = os.path.join(test.etc, 'systemd', 'system',
                        'devstack@%s.service' % service)
    return test.ini(test.snapshot(snapshot, unit)).get('Service',
                                                       'ExecStart')


class TestControllerLifecycle(base.DevstackTestCase):
    """One all-in-one node through stack.sh, unstack.sh and clean.sh.

    One harness run (sourcing devstack costs seconds); snapshot steps
    keep the configuration as it was between the phases.
    """

    def test_stack_unstack_clean(self):
        self.write_local_conf(FASTBOOT_SAMPLE_ORIGIN='True')
        self.run_steps('pre-install', 'install', 'nova-conf',
                       'snapshot:before', 'post-config',
                       'snapshot:configured', 'start-nova-compute', 'extra',
                       'test-config', 'snapshot:started', 'unstack', 'clean')

        self.last_commands = self.step_commands('install')
        self.assertRecorded('setup_develop',
                            os.path.join(self.dest, 'fastboot'),
                            'coordinator')
        # devstack's libvirt hypervisor plugin wrote its own driver.
        before = self.ini(self.snapshot('before', self.nova_conf))
        self.assertEqual('libvirt.LibvirtDriver',
                         before.get('DEFAULT', 'compute_driver'))

        self.last_commands = self.step_commands('post-config')
        self._check_post_config()

        self.last_commands = (self.step_commands('start-nova-compute') +
                              self.step_commands('extra') +
                              self.step_commands('test-config'))
        self._check_started()

        self.last_commands = self.step_commands('unstack')
        for service in ('fastboot-coordinator', 'fastboot-runner',
                        'fastboot-listener'):
            self.assertRecorded('systemctl', 'stop',
                                'devstack@%s.service' % service)
        self.assertRecorded('fastboot', '--config-file', self.cpu_conf,
                            'shutdown')

        # clean: what post-config added is gone, and only that. (iniset
        # puts a blank line before each section it adds; one may stay.)
        self.last_commands = self.step_commands('clean')
        for path in (self.nova_conf, self.paste):
            self.assertEqual(lines(self.text(self.snapshot('before', path))),
                             lines(self.text(path)), path)
        self.assertEqual(
            sorted(os.listdir(self.snapshot('before', self.enabled))),
            sorted(os.listdir(self.enabled)))
        self.assertFalse(os.path.exists(self.settings_file))
        cpu = self.ini(self.cpu_conf)
        self.assertEqual('libvirt.LibvirtDriver',
                         cpu.get('DEFAULT', 'compute_driver'))
        for group in ('fastboot', 'fastboot_qemu', 'fastboot_coordinator'):
            self.assertFalse(cpu.has_section(group), group)
        self.assertTrue(cpu.has_option('libvirt', 'virt_type'))
        self.assertFalse(os.path.exists(self.fb_conf_dir))
        self.assertFalse(os.path.exists(os.path.join(self.data, 'fastboot')))
        self.assertFalse(os.path.exists(
            os.path.join(self.data, 'fastboot-coordinator')))
        self.assertRecorded('pip_uninstall', 'fastboot')

    def _check_post_config(self):
        snap = self.snapshot
        nova = self.ini(snap('configured', self.nova_conf))
        self.assertEqual(DRIVER, nova.get('DEFAULT', 'compute_driver'))
        self.assertEqual('qemu', nova.get('libvirt', 'virt_type'))
        fb = dict(nova.items('fastboot'))
        self.assertEqual({
            'backend': 'qemu',
            'state_path': os.path.join(self.data, 'fastboot'),
            'use_cachegroup': 'True', 'use_cache_snapshot': 'True',
            'keep_idle_caches': 'False',
            'export_address': '192.0.2.10', 'export_auth': 'tls',
            'coordinator_url': 'http://192.0.2.10:8790/v1'}, fb)
        self.assertEqual(self.psk, nova.get('fastboot_qemu',
                                            'export_psk_file'))
        self.assertEqual('fastboot', nova.get('fastboot_coordinator',
                                              'username'))
        self.assertEqual('both', nova.get('notifications',
                                          'notification_format'))
        # The key file: identity:64 hex digits, 0600.
        psk = snap('configured', self.psk)
        mode = stat.S_IMODE(os.stat(psk).st_mode)
        self.assertEqual(0o600, mode)
        identity, key = self.text(psk).strip().split(':')
        self.assertEqual('fastboot', identity)
        self.assertRegex(key, r'^[0-9a-f]{64}$')

        # nova-api's pipelines: the filter right after keystonecontext.
        paste = self.ini(snap('configured', self.paste))
        self.assertEqual('fastboot_nova.api.validation:filter_factory',
                         paste.get('filter:fastboot', 'paste.filter_factory'))
        for section in PIPELINES:
            words = paste.get(section, 'keystone').split()
            i = words.index('keystonecontext')
            self.assertEqual('fastboot', words[i + 1], section)
            self.assertEqual(1, words.count('fastboot'))

        # The coordinator's configuration, accounts and database.
        conf = self.ini(snap('configured', self.fb_conf))
        self.assertEqual(
            'mysql+pymysql://root:secretdb@127.0.0.1/fastboot?charset=utf8'
            '&plugin=dbcounter', conf.get('database', 'connection'))
        self.assertEqual('keystone', conf.get('coordinator',
                                              'auth_strategy'))
        self.assertEqual('8790', conf.get('coordinator', 'bind_port'))
        self.assertEqual('fastboot', conf.get('keystone_authtoken',
                                              'username'))
        self.assertEqual('fastboot', conf.get('batches_auth', 'username'))
        # A trust-scoped token cannot also be project-scoped.
        self.assertFalse(conf.has_option('batches_auth', 'project_name'))
        self.assertEqual('fastboot-shared', conf.get('batches',
                                                     'volume_type'))
        self.assertTrue(conf.get('DEFAULT', 'transport_url').startswith(
            'rabbit://'))
        drop = self.index('mysql', '-uroot', '-psecretdb', '-h127.0.0.1',
                          '-e', 'DROP DATABASE IF EXISTS fastboot;')
        create = self.index('mysql', '-uroot', '-psecretdb', '-h127.0.0.1',
                            '-e', 'CREATE DATABASE fastboot CHARACTER SET '
                            'utf8;')
        sync = self.index('fastboot-coordinator-manage', '--config-file',
                          self.fb_conf, 'db', 'sync')
        self.assertLess(drop, create)
        self.assertLess(create, sync)
        self.assertRecorded('openstack', '--os-cloud',
                            'devstack-system-admin', 'user', 'create',
                            'fastboot')
        self.assertRecorded('openstack', '--os-cloud',
                            'devstack-system-admin', 'service', 'create',
                            'fastboot', '--name', 'fastboot')
        self.assertRecorded('openstack', '--os-cloud',
                            'devstack-system-admin', 'endpoint', 'create',
                            'fastboot', 'public', 'http://192.0.2.10:8790')

        # Horizon: the panel's enabled files and the static files again.
        source = os.path.join(base.REPO, 'fastboot_dashboard', 'enabled')
        names = sorted(n for n in (os.listdir(source)
                                   if os.path.isdir(source) else [])
                       if n.startswith('_') and n.endswith('.py'))
        for name in names:
            self.assertTrue(os.path.isfile(
                snap('configured', os.path.join(self.enabled, name))), name)
        # ...and its settings (the policy file) in local_settings.d.
        self.assertTrue(os.path.isfile(snap('configured', self.settings_file)))
        if names:
            horizon = os.path.join(self.dest, 'horizon')
            self.assertRecorded('python@' + horizon, 'manage.py',
                                'collectstatic', '--noinput')
            self.assertRecorded('python@' + horizon, 'manage.py',
                                'compress', '--force')
        # Nothing left outside the tree, nothing installed, no tuning.
        self.assertNotRecorded('fastboot-tune')

    def _check_started(self):
        # devstack's start_nova_compute made nova-cpu.conf from nova.conf.
        cpu = self.ini(self.snapshot('started', self.cpu_conf))
        self.assertEqual(DRIVER, cpu.get('DEFAULT', 'compute_driver'))
        self.assertEqual('qemu', cpu.get('fastboot', 'backend'))
        self.assertFalse(cpu.has_option('database', 'connection'))
        self.assertIn('--config-file %s' % self.cpu_conf,
                      unit_exec(self, 'n-cpu'))
        for service, command in (
                ('fastboot-coordinator', 'fastboot-coordinator'),
                ('fastboot-runner', 'fastboot-runner'),
                ('fastboot-listener', 'fastboot-notification-listener')):
            self.assertEqual(
                '%s/%s --config-file %s' % (self.bin, command, self.fb_conf),
                unit_exec(self, service))
            self.assertRecorded('systemctl', 'start',
                                'devstack@%s.service' % service)
        self.assertRecorded('openstack', '--os-cloud', 'devstack-admin',
                            'volume', 'type', 'create', '--property',
                            'multiattach=<is> True', 'fastboot-shared')
        # test-config: the sample origin volume and its fastboot image.
        self.assertRecorded('openstack', '--os-cloud', 'devstack-admin',
                            'volume', 'create', '--image')
        image = self.find('openstack', '--os-cloud', 'devstack-admin',
                          'image', 'create')
        self.assertEqual(1, len(image))
        self.assertIn('trait:CUSTOM_FASTBOOT_CACHE_SNAPSHOT=required',
                      image[0])
        self.assertTrue(any(a.startswith('fastboot_origin_volume=')
                            for a in image[0]))


class TestTuningAndBackends(base.DevstackTestCase):

    def test_tuning_after_the_driver(self):
        key = 'ab' * 20
        self.write_local_conf(FASTBOOT_TUNE_SERVERS='200',
                              FASTBOOT_TUNE_COMPUTES='2',
                              FASTBOOT_BACKEND='dm',
                              FASTBOOT_PSK_KEY=key)
        rc, out = self.run_steps('pre-install', 'nova-conf', 'post-config')
        # dm backend: its packages, from devstack/files/debs/fastboot-dm.
        install = self.find('install_package',
                            commands=self.commands())
        self.assertEqual([['install_package', 'dmsetup', 'mount',
                           'nbd-server', 'nbd-client', 'open-iscsi']],
                         install)
        nova = self.ini(self.nova_conf)
        self.assertEqual(DRIVER, nova.get('DEFAULT', 'compute_driver'))
        self.assertEqual('dm', nova.get('fastboot', 'backend'))
        # No certificates given: no export (the engine would refuse it),
        # and no PSK file, which only the qemu backend reads.
        self.assertFalse(nova.has_option('fastboot', 'export_address'))
        self.assertIn('FASTBOOT_BACKEND=dm without '
                      'FASTBOOT_DM_TLS_CERT_FILE: no host-to-host exports',
                      out)
        self.assertFalse(os.path.exists(self.psk))
        # The real fastboot-tune wrote the profile for 200 servers on 2
        # computes: 100 builds per compute, capped at 50.
        self.assertRecorded('fastboot-tune', 'apply', '--servers', '200',
                            '--computes', '2', '--config-file',
                            'nova=' + self.nova_conf)
        self.assertEqual('50', nova.get('DEFAULT', 'max_concurrent_builds'))
        self.assertEqual('60', nova.get('DEFAULT', 'default_thread_pool_size'))
        backups = [n for n in os.listdir(os.path.dirname(self.nova_conf))
                   if n.startswith('nova.conf.fastboot-tune-')]
        self.assertEqual(1, len(backups))
        self.assertNotIn(key, out)

    def test_fake_driver_keeps_its_driver(self):
        self.write_local_conf(VIRT_DRIVER='fake')
        self.run_steps('nova-conf', 'post-config')
        nova = self.ini(self.nova_conf)
        self.assertEqual('fake.FakeDriverWithoutFakeNodes',
                         nova.get('DEFAULT', 'compute_driver'))
        self.assertEqual('True', nova.get('fastboot', 'use_cachegroup'))


class TestComputeNode(base.DevstackTestCase):
    """A compute-only node of a multinode cloud."""

    LOCALRC = {'ENABLED_SERVICES': 'n-cpu,placement-client',
               'RABBIT_HOST': '192.0.2.1',
               'SERVICE_HOST': '192.0.2.1',
               'FASTBOOT_PSK_KEY': 'cd' * 16}

    def compute_only(self):
        with open(os.path.join(self.top, '.localrc.auto'), 'a') as f:
            f.write('disable_service fastboot-coordinator fastboot-runner '
                    'fastboot-listener fastboot-api-filter\n')

    def test_compute_only(self):
        self.write_local_conf()
        self.compute_only()
        self.run_steps('nova-conf', 'post-config', 'start-nova-compute',
                       'extra')
        cpu = self.ini(self.cpu_conf)
        self.assertEqual(DRIVER, cpu.get('DEFAULT', 'compute_driver'))
        self.assertEqual('http://192.0.2.1:8790/v1',
                         cpu.get('fastboot', 'coordinator_url'))
        self.assertEqual('192.0.2.10', cpu.get('fastboot',
                                               'export_address'))
        self.assertEqual('fastboot:%s\n' % ('cd' * 16), self.text(self.psk))
        self.assertFalse(os.path.exists(self.fb_conf))
        commands = self.commands()
        self.assertEqual([], self.find('mysql', commands=commands))
        self.assertEqual([], self.find('openstack', commands=commands))
        self.assertEqual([], self.find('fastboot-coordinator-manage',
                                       commands=commands))
        self.assertFalse(os.path.exists(os.path.join(
            self.etc, 'systemd', 'system',
            'devstack@fastboot-coordinator.service')))
        # No paste filter without nova-api.
        self.assertNotIn('fastboot', self.text(self.paste))

    def test_extra_refuses_a_compute_without_fastboot(self):
        # Something after post-config (here local.conf, which devstack
        # merges into nova-cpu.conf when it starts nova-compute) puts
        # another driver back: the stack fails instead of booting as
        # without fastboot.
        self.write_local_conf(
            meta='[[post-config|$NOVA_CPU_CONF]]\n[DEFAULT]\n'
                 'compute_driver = libvirt.LibvirtDriver\n')
        self.compute_only()
        rc, out = self.run_steps('nova-conf', 'post-config',
                                 'start-nova-compute', 'extra', check=False)
        self.assertNotEqual(0, rc)
        self.assertIn('nova-cpu.conf has compute_driver = '
                      'libvirt.LibvirtDriver, not ' + DRIVER, out)


class TestBadSettings(base.DevstackTestCase):
    """Refused in pre-install, before anything is written."""

    def _refused(self, message, **settings):
        self.write_local_conf(**settings)
        rc, out = self.run_steps('pre-install', 'post-config', check=False)
        self.assertNotEqual(0, rc)
        self.assertIn(message, out)
        self.assertFalse(os.path.exists(self.fb_conf_dir))
        return out

    def test_backend(self):
        self._refused("FASTBOOT_BACKEND must be qemu or dm, not 'lvm'",
                      FASTBOOT_BACKEND='lvm')

    def test_psk_key_not_printed(self):
        out = self._refused('FASTBOOT_PSK_KEY must be at least 32 '
                            'hexadecimal digits',
                            FASTBOOT_PSK_KEY='not-a-key-secret-zz')
        self.assertNotIn('not-a-key-secret-zz', out.split(
            'FASTBOOT_PSK_KEY must')[-1])

    def test_coordinator_without_database(self):
        self._refused('fastboot-coordinator needs a database',
                      ENABLED_SERVICES='n-cpu,placement-client')

    def test_tune_servers(self):
        self._refused('FASTBOOT_TUNE_SERVERS must be a positive integer',
                      FASTBOOT_TUNE_SERVERS='500; rm -rf /')


class TestDashboard(base.DevstackTestCase):
    """The panel's enabled files, whatever they are named."""

    LOCALRC = {'ENABLED_SERVICES': 'key,mysql,horizon'}
    PANEL_FILES = ('_9100_fastboot.py', '_9110_fastboot_batches.py')

    def setUp(self):
        super().setUp()
        # $DEST/fastboot: this repository's devstack/ and a
        # fastboot_dashboard whose enabled/ holds two files (and two
        # that do not match _*.py).
        fastboot = os.path.join(self.dest, 'fastboot')
        os.unlink(fastboot)
        enabled = os.path.join(fastboot, 'fastboot_dashboard', 'enabled')
        os.makedirs(enabled)
        os.symlink(os.path.join(base.REPO, 'devstack'),
                   os.path.join(fastboot, 'devstack'))
        for name in self.PANEL_FILES + ('__init__.py', 'README.txt'):
            with open(os.path.join(enabled, name), 'w') as f:
                f.write("PANEL = 'fastboot'\n")

    def test_enabled_files_installed_and_removed(self):
        self.write_local_conf()
        self.run_steps('snapshot:before', 'post-config',
                       'snapshot:configured', 'clean')
        before = set(os.listdir(self.snapshot('before', self.enabled)))
        configured = set(os.listdir(self.snapshot('configured',
                                                  self.enabled)))
        self.assertEqual(set(self.PANEL_FILES), configured - before)
        self.assertEqual(before, set(os.listdir(self.enabled)))
        # Horizon's own __init__.py is neither replaced nor removed.
        self.assertEqual('', self.text(os.path.join(self.enabled,
                                                    '__init__.py')))
        self.last_commands = self.step_commands('post-config')
        horizon = os.path.join(self.dest, 'horizon')
        collect = self.index('python@' + horizon, 'manage.py',
                             'collectstatic', '--noinput')
        compress = self.index('python@' + horizon, 'manage.py', 'compress',
                              '--force')
        self.assertLess(collect, compress)
