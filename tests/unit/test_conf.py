"""Tests of the option registration and the oslo.config entry point."""

import importlib.metadata
import os

import fixtures
from oslo_config import cfg
from oslo_config import generator
from oslotest import base

from fastboot_nova.conf import fastboot
from fastboot_nova.conf import opts

EXPECTED_OPTS = {'use_cachegroup', 'use_cache_snapshot', 'keep_idle_caches',
                 'backend',
                 'state_path', 'cache_cluster_size', 'cache_size_limit',
                 'export_address', 'export_auth', 'export_psk_file',
                 'export_psk_identity', 'export_port_min', 'export_port_max',
                 'parent_reconnect_delay', 'coordinator_url',
                 'coordinator_secret', 'host_name', 'failure_domain',
                 'heartbeat_interval', 'qemu_storage_daemon', 'qemu_img',
                 'daemon_start_timeout'}


class TestListOpts(base.BaseTestCase):

    def test_fastboot_group(self):
        result = opts.list_opts()
        groups = [group.name for group, _ in result]
        self.assertEqual('fastboot', groups[0])
        self.assertIn('fastboot_dm', groups)
        self.assertEqual(len(groups), len(set(groups)))
        names = {opt.name for opt in result[0][1]}
        self.assertEqual(EXPECTED_OPTS, names)

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
