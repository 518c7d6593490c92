"""The devstack plugin installs the enabled and settings files where
Horizon reads them, and removes them again (bash, no devstack needed)."""

import os
import subprocess
import tempfile

from django.test import SimpleTestCase

import fastboot_dashboard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(
    fastboot_dashboard.__file__)))


class DevstackTests(SimpleTestCase):

    def run_lib(self, horizon_dir, function):
        script = ('set -e; source "$1/devstack/lib/fastboot"; '
                  'is_service_enabled() { return 0; }; %s' % function)
        env = dict(os.environ, HORIZON_DIR=horizon_dir, FASTBOOT_DIR=ROOT)
        subprocess.run(['bash', '-c', script, 'bash', ROOT], env=env,
                       check=True, capture_output=True, timeout=60)

    def test_install_and_cleanup(self):
        with tempfile.TemporaryDirectory() as horizon:
            local = os.path.join(horizon, 'openstack_dashboard', 'local')
            self.run_lib(horizon, 'install_fastboot_dashboard')
            installed = sorted(
                os.path.join(d, f) for d in ('enabled', 'local_settings.d')
                for f in os.listdir(os.path.join(local, d)))
            self.assertEqual(
                ['enabled/_1480_project_fastboot_panel_group.py',
                 'enabled/_1481_project_fastboot_batches_panel.py',
                 'local_settings.d/_1480_fastboot_settings.py'], installed)
            self.run_lib(horizon, 'cleanup_fastboot_dashboard')
            self.assertEqual([], os.listdir(os.path.join(local, 'enabled')))
