"""CloudFactory reads [batches_auth] auth_url as the API does: first,
before anything else loaded the auth plugin (ministack's first POST
/v1/batches answered 500: no such option auth_url in [batches_auth])."""

import os
import tempfile

from oslo_config import cfg
import testtools

from fastboot_nova.conf import batches as batches_conf
from fastboot_nova.coordinator.batches import clients


def _conf(test):
    """[batches_auth] as ministack and the devstack plugin write it."""
    fd, path = tempfile.mkstemp(suffix='.conf')
    test.addCleanup(os.unlink, path)
    with os.fdopen(fd, 'w') as f:
        f.write('[batches_auth]\nauth_type = password\n'
                'auth_url = http://keystone.example.com/v3\n'
                'username = fastboot\npassword = p\n'
                'user_domain_name = Default\nproject_name = service\n'
                'project_domain_name = Default\n')
    conf = cfg.ConfigOpts()
    batches_conf.register_opts(conf)
    conf(['--config-file', path])
    return conf


class TestAuthUrl(testtools.TestCase):

    def test_auth_url_before_anything_loaded_the_plugin(self):
        self.assertEqual('http://keystone.example.com/v3',
                         clients.CloudFactory(_conf(self))._auth_url())


class TestTrustAuth(testtools.TestCase):
    """The runner's trust-scoped auth carries no project scope.

    The service user's ``project_name`` in [batches_auth] plus the trust
    made Keystone's client refuse the auth ("Authentication cannot be
    scoped to multiple targets"): every batch on ministack failed there.
    """

    def test_trust_auth_drops_the_service_project(self):
        factory = clients.CloudFactory(_conf(self))
        auth = factory.trust_auth('trust-1')

        # keystoneauth's generic plugins keep their arguments as _name.
        def arg(name):
            return getattr(auth, '_' + name, getattr(auth, name, None))
        self.assertEqual('trust-1', arg('trust_id'))
        for name in ('project_id', 'project_name', 'project_domain_id',
                     'project_domain_name', 'domain_id', 'domain_name'):
            self.assertIsNone(arg(name), name)
        # The service user still authenticates as itself.
        self.assertEqual('fastboot', arg('username'))
