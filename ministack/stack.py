"""The state every service module needs: layout, credentials, helpers."""

import json
import os
import secrets

from ministack import layout as layout_mod

SERVICE_USERS = ('nova', 'placement', 'glance', 'neutron', 'cinder',
                 'fastboot')


class Stack:
    """One ministack: its layout and the secrets made at its first ``up``.

    The password (one for the database, RabbitMQ and every Keystone user,
    all on loopback) is random per run directory and kept in
    ``secrets.json`` (mode 0600), never printed except in the openrc.
    """

    db_user = 'ms'
    rabbit_user = 'ms'
    region = 'RegionOne'

    def __init__(self, layout=None):
        self.layout = layout or layout_mod.Layout.from_env()
        self._secrets = None

    @property
    def password(self):
        return self.secrets['password']

    @property
    def secrets(self):
        if self._secrets is None:
            path = self.layout.run_dir / 'secrets.json'
            if path.exists():
                self._secrets = json.loads(path.read_text())
            else:
                self._secrets = {'password': secrets.token_hex(16)}
                self.layout.run_dir.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                             0o600)
                with os.fdopen(fd, 'w') as f:
                    json.dump(self._secrets, f)
        return self._secrets

    def keystone_url(self):
        return self.layout.url('keystone', '/v3')

    def auth_section(self, user, project='service'):
        """keystoneauth password options for service user ``user``."""
        return {
            'auth_type': 'password',
            'auth_url': self.keystone_url(),
            'username': user,
            'password': self.password,
            'user_domain_name': 'Default',
            'project_name': project,
            'project_domain_name': 'Default',
            'region_name': self.region,
        }

    def authtoken_section(self, user):
        section = self.auth_section(user)
        section.update({'www_authenticate_uri': self.keystone_url(),
                        'service_token_roles_required': True})
        return section

    def openrc(self, user='demo'):
        project = 'admin' if user == 'admin' else 'demo'
        return {
            'OS_AUTH_URL': self.keystone_url(),
            'OS_USERNAME': user,
            'OS_PASSWORD': self.password,
            'OS_PROJECT_NAME': project,
            'OS_USER_DOMAIN_NAME': 'Default',
            'OS_PROJECT_DOMAIN_NAME': 'Default',
            'OS_REGION_NAME': self.region,
            'OS_IDENTITY_API_VERSION': '3',
            'OS_INTERFACE': 'public',
        }

    def venv_env(self):
        """Environment for the services: the venv first on PATH."""
        return {'PATH': '%s:%s' % (self.layout.venv / 'bin',
                                   os.environ.get('PATH', '/usr/bin:/bin')),
                'VIRTUAL_ENV': str(self.layout.venv)}
