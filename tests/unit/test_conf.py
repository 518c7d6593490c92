"""Tests of the option registration and the oslo.config entry point."""

import importlib.metadata
import os

import fixtures
from oslo_config import cfg
from oslo_config import generator
from oslotest import base

from fastboot_nova.conf import dm
from fastboot_nova.conf import fastboot
from fastboot_nova.conf import opts

EXPECTED_OPTS = {'use_cachegroup', 'use_cache_snapshot', 'keep_idle_caches',
                 'backend',
                 'state_path', 'export_address', 'export_auth',
                 'export_port_min', 'export_port_max', 'coordinator_url',
                 'coordinator_timeout',
                 'coordinator_secret', 'host_name', 'failure_domain',
                 'heartbeat_interval'}
EXPECTED_QEMU_OPTS = {'cache_cluster_size', 'cache_size_limit',
                      'export_psk_file', 'export_psk_identity',
                      'parent_reconnect_delay', 'qemu_storage_daemon',
                      'qemu_img', 'daemon_start_timeout',
                      'rbd_ceph_conf', 'client_group',
                      'direct_complete_cache', 'export_tls_priority'}


class TestListOpts(base.BaseTestCase):

    def test_fastboot_group(self):
        result = opts.list_opts()
        groups = [group.name for group, _ in result]
        self.assertEqual('fastboot', groups[0])
        self.assertIn('fastboot_dm', groups)
        self.assertEqual(len(groups), len(set(groups)))
        names = {opt.name for opt in result[0][1]}
        self.assertEqual(EXPECTED_OPTS, names)
        self.assertEqual('fastboot_qemu', groups[1])
        self.assertEqual(EXPECTED_QEMU_OPTS,
                         {opt.name for opt in result[1][1]})

    def test_register_and_defaults(self):
        conf = cfg.ConfigOpts()
        fastboot.register_opts(conf)
        conf([], project='fastboot', default_config_files=[],
             default_config_dirs=[])
        self.assertEqual('qemu', conf.fastboot.backend)
        self.assertEqual('/var/lib/fastboot', conf.fastboot.state_path)
        self.assertFalse(conf.fastboot.use_cachegroup)
        self.assertFalse(conf.fastboot.use_cache_snapshot)
        self.assertFalse(conf.fastboot.keep_idle_caches)


class TestEntryPoint(base.BaseTestCase):

    def test_entry_point_loads(self):
        eps = importlib.metadata.entry_points(group='oslo.config.opts')
        ep = [e for e in eps if e.name == 'fastboot']
        self.assertEqual(1, len(ep))
        self.assertIs(opts.list_opts, ep[0].load())

    def test_genconfig(self):
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'fastboot.conf.sample')
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(['--namespace', 'fastboot', '--output-file', out])
        generator.generate(conf)
        with open(out) as f:
            sample = f.read()
        self.assertIn('[fastboot]', sample)
        for name in EXPECTED_OPTS:
            self.assertIn('#%s = ' % name, sample)
        self.assertIn('[fastboot_sys_admin]', sample)
        self.assertIn('#helper_command = ', sample)
        # Registered by the runner and the listener at run time; the
        # sample lists them too.
        batches = sample.split('[batches]\n', 1)[1].split('\n[', 1)[0]
        self.assertIn('#notification_exchange = nova', batches)
        self.assertIn('#notification_topics = ', batches)
        auth = sample.split('[batches_auth]\n', 1)[1].split('\n[', 1)[0]
        self.assertIn('#auth_url = ', auth)
        self.assertIn('#auth_type = ', auth)

    def test_generator_file_has_every_section(self):
        """The repository's generator file gives a complete sample."""
        top = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        out = os.path.join(self.useFixture(fixtures.TempDir()).path,
                           'fastboot.conf.sample')
        conf = cfg.ConfigOpts()
        generator.register_cli_opts(conf)
        conf(['--config-file', os.path.join(
            top, 'etc', 'fastboot', 'fastboot-config-generator.conf'),
            '--output-file', out])
        generator.generate(conf)
        with open(out) as f:
            sample = f.read()
        for section in ('fastboot', 'fastboot_qemu', 'fastboot_dm',
                        'coordinator', 'fastboot_sys_admin', 'database',
                        'keystone_authtoken', 'oslo_policy',
                        'oslo_messaging_rabbit'):
            self.assertIn('\n[%s]\n' % section, sample)


class TestDeprecatedGroups(base.BaseTestCase):
    """Options that moved keep working under their old group (item 14)."""

    def load(self, text):
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'fastboot.conf')
        with open(path, 'w') as f:
            f.write(text)
        conf = cfg.ConfigOpts()
        fastboot.register_opts(conf)
        dm.register_opts(conf)
        conf([], project='fastboot', default_config_files=[path],
             default_config_dirs=[])
        return conf

    def test_qemu_options_under_fastboot(self):
        conf = self.load('[fastboot]\nqemu_img = /opt/qemu-img\n'
                         'cache_cluster_size = 4096\n'
                         'export_psk_file = /etc/fastboot/k.psk\n')
        self.assertEqual('/opt/qemu-img', conf.fastboot_qemu.qemu_img)
        self.assertEqual(4096, conf.fastboot_qemu.cache_cluster_size)
        self.assertEqual('/etc/fastboot/k.psk',
                         conf.fastboot_qemu.export_psk_file)

    def test_new_group_wins(self):
        conf = self.load('[fastboot]\nqemu_img = /old\n'
                         '[fastboot_qemu]\nqemu_img = /new\n')
        self.assertEqual('/new', conf.fastboot_qemu.qemu_img)

    def test_dm_export_auth_is_the_common_option(self):
        conf = self.load('[fastboot_dm]\nexport_auth = none\n')
        self.assertEqual('none', conf.fastboot.export_auth)
        self.assertEqual('tls', self.load('').fastboot.export_auth)

    def test_psk_stays_a_valid_value(self):
        conf = self.load('[fastboot]\nexport_auth = psk\n')
        self.assertEqual('psk', conf.fastboot.export_auth)

    def test_set_overrides_finds_the_group(self):
        conf = self.load('')
        fastboot.set_overrides(conf, qemu_img='/q', state_path='/s',
                               cache_device=['/dev/x'])
        self.assertEqual('/q', conf.fastboot_qemu.qemu_img)
        self.assertEqual('/s', conf.fastboot.state_path)
        self.assertEqual(['/dev/x'], conf.fastboot_dm.cache_device)
