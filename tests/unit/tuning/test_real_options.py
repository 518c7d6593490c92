"""Every option the profile writes exists in the real services.

Option names and groups come from the services' own option lists (the
``oslo.config.opts`` namespaces oslo-config-generator uses), not from a
copy: a renamed or moved option in Nova, Placement, Cinder, oslo.messaging
or oslo.db fails here. The defaults the profile assumes when a file leaves
an option unset are checked against the same definitions.

Nova and Placement are in the unit test environment. Cinder is not (it
pulls a large dependency set): its part runs in ``tox -e tune-options``,
which installs cinder 29 and sets FASTBOOT_REQUIRE_CINDER=1 so that a
missing cinder fails instead of skipping.
"""

import importlib
from importlib import metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import fixtures
from oslo_config import cfg
from oslotest import base

from fastboot_nova import tuning

LIBRARY_NAMESPACES = ('oslo.messaging', 'oslo.db')
#: Options left None by their service, with the value that then applies
#: and that the profile judges unset files by.
NONE_MEANS = {
    ('database', 'pool_timeout'): 30,
    ('api_database', 'pool_timeout'): 30,
    ('placement_database', 'pool_timeout'): 30,
    ('placement_database', 'max_pool_size'): 5,
    ('placement_database', 'max_overflow'): 10,
}
#: Cinder modules defining the cinder options the profile sets
#: (cinder.opts imports every volume driver, whose optional libraries
#: are not installed).
CINDER_MODULES = {'cinder.common.config': ('global_opts',),
                  'cinder.service': ('service_opts',),
                  'cinder.quota': ('quota_opts',)}


def _namespace_opts(*namespaces):
    eps = {e.name: e for e in metadata.entry_points(group='oslo.config.opts')}
    found = {}
    for namespace in namespaces:
        for group, opts in eps[namespace].load()():
            name = getattr(group, 'name', group) or 'DEFAULT'
            for opt in opts:
                found[(name, opt.name)] = opt
    return found


class RealOptionsMixin:

    def _assert_exist(self, kind, real):
        profile = tuning.generate(tuning.Inputs(servers=500, computes=4))
        checked = 0
        for s in profile.for_kind(kind):
            opt = real.get((s.section, s.name))
            self.assertIsNotNone(opt, '%s: %s is not a real option'
                                      % (kind, s.label()))
            expected = opt.default
            if expected is None:
                expected = NONE_MEANS.get((s.section, s.name))
            self.assertEqual(expected, s.default,
                             '%s: default of %s' % (kind, s.label()))
            checked += 1
        self.assertGreater(checked, 0)


class TestNova(RealOptionsMixin, base.BaseTestCase):

    def test_nova_options(self):
        real = _namespace_opts('nova.conf', *LIBRARY_NAMESPACES)
        self._assert_exist('nova', real)

    def test_nova_eventlet_options(self):
        real = _namespace_opts('nova.conf', *LIBRARY_NAMESPACES)
        profile = tuning.generate(tuning.Inputs(
            servers=500, computes=4, concurrency_backend='eventlet'))
        for s in profile.for_kind('nova'):
            self.assertIn((s.section, s.name), real)

    def test_backend_option_is_real(self):
        # The notes name it; Nova 34 reads it.
        real = _namespace_opts('nova.conf')
        opt = real[('DEFAULT', 'concurrency_backend')]
        self.assertIn('threading', opt.type.choices)

    def test_placement_options(self):
        self._assert_exist('placement', _namespace_opts('placement.conf'))


#: Run in a child process: cinder's modules register on the global
#: cfg.CONF options that nova's (imported by other tests) already hold.
CINDER_SCRIPT = """
import importlib, json, sys
modules = json.loads(sys.argv[1])
out = []
for module, names in modules.items():
    mod = importlib.import_module(module)
    for name in names:
        out += [[opt.name, opt.default] for opt in getattr(mod, name)]
print(json.dumps(out))
"""


class _Opt:
    def __init__(self, default):
        self.default = default


class TestCinder(RealOptionsMixin, base.BaseTestCase):

    def test_cinder_options(self):
        if importlib.util.find_spec('cinder') is None:
            if os.environ.get('FASTBOOT_REQUIRE_CINDER'):
                self.fail('cinder is not installed '
                          '(FASTBOOT_REQUIRE_CINDER is set)')
            self.skipTest('cinder is not installed here; tox -e '
                          'tune-options runs this test')
        result = subprocess.run(
            [sys.executable, '-c', CINDER_SCRIPT,
             json.dumps(CINDER_MODULES)],
            capture_output=True, text=True, check=False)
        self.assertEqual(0, result.returncode, result.stderr[-2000:])
        real = _namespace_opts(*LIBRARY_NAMESPACES)
        for name, default in json.loads(result.stdout.splitlines()[-1]):
            real[('DEFAULT', name)] = _Opt(default)
        self._assert_exist('cinder', real)


class TestReadBackByTheServices(base.BaseTestCase):
    """What apply writes is what the real parsers read."""

    def setUp(self):
        super().setUp()
        self.dir = self.useFixture(fixtures.TempDir()).path
        self.profile = tuning.generate(tuning.Inputs(servers=500,
                                                     computes=4))

    def _write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_nova_conf_through_oslo_config(self):
        path = self._write('nova.conf', (
            '# devstack wrote this\n[DEFAULT]\nmy_ip = 192.0.2.7\n'
            'max_concurrent_builds = 2\n\n[database]\n'
            'connection = sqlite://\nmax_overflow = 50\n'))
        tuning.apply(self.profile, [tuning.ConfigFile.from_arg(path)],
                     backup=False)
        conf = cfg.ConfigOpts()
        eps = {e.name: e for e in
               metadata.entry_points(group='oslo.config.opts')}
        # Only the groups the profile writes: nova's keystoneauth groups
        # hold options registered twice in the generator's lists.
        wanted = {s.section for s in self.profile.for_kind('nova')}
        for namespace in ('nova.conf', 'oslo.messaging'):
            for group, opts in eps[namespace].load()():
                name = getattr(group, 'name', group) or 'DEFAULT'
                if name in wanted:
                    conf.register_opts(
                        opts, group=None if name == 'DEFAULT' else group)
        conf(args=[], default_config_files=[path])
        self.addCleanup(conf.reset)
        for s in self.profile.for_kind('nova'):
            read = (conf[s.name] if s.section == 'DEFAULT'
                    else conf[s.section][s.name])
            self.assertIsNone(s.judge(read), s.label())
        self.assertEqual(50, conf.max_concurrent_builds)
        self.assertEqual(20, conf.database.max_overflow)
        self.assertEqual('192.0.2.7', conf.my_ip)

    def test_my_cnf_through_my_print_defaults(self):
        tool = shutil.which('my_print_defaults')
        if tool is None:
            self.skipTest('my_print_defaults (mariadb-client-core, bindep '
                          'profile mysql) is not installed')
        path = self._write('my.cnf', (
            '[client]\nport = 3306\n[mysqld]\nskip-name-resolve\n'
            'max-connections = 100\n'))
        tuning.apply(self.profile, [tuning.ConfigFile.from_arg(path)],
                     backup=False)
        out = subprocess.run(
            [tool, '--defaults-file=%s' % path, 'mysqld', 'server',
             'mariadb', 'mariadbd'],
            check=True, capture_output=True, text=True).stdout.split()
        self.assertIn('--max-connections=770', out)
        self.assertIn('--open_files_limit=4780', out)
        self.assertIn('--max_connect_errors=10000', out)
        self.assertIn('--skip-name-resolve', out)
