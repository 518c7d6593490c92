"""CloudFactory reads [batches_auth] auth_url as the API does: first,
before anything else loaded the auth plugin (ministack's first POST
/v1/batches answered 500: no such option auth_url in [batches_auth])."""

import os
import tempfile

from oslo_config import cfg
import testtools

from fastboot_nova.conf import batches as batches_conf
from fastboot_nova.coordinator.batches import clients


class TestAuthUrl(testtools.TestCase):

    def test_auth_url_before_anything_loaded_the_plugin(self):
        fd, path = tempfile.mkstemp(suffix='.conf')
        self.addCleanup(os.unlink, path)
        with os.fdopen(fd, 'w') as f:
            f.write('[batches_auth]\nauth_type = password\n'
                    'auth_url = http://keystone.example.com/v3\n'
                    'username = fastboot\npassword = p\n'
                    'user_domain_name = Default\nproject_name = service\n'
                    'project_domain_name = Default\n')
        conf = cfg.ConfigOpts()
        batches_conf.register_opts(conf)
        conf(['--config-file', path])
        self.assertEqual('http://keystone.example.com/v3',
                         clients.CloudFactory(conf)._auth_url())
