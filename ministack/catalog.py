"""Make the users, projects and endpoints of a ministack in one process.

Run by ``ministack up`` with the venv's Python (it needs keystoneauth1):
``python -m ministack.catalog SPEC.json``. Idempotent: whatever exists is
kept. The spec (written by ``ministack.services.catalog``) carries the
admin credentials, the password of the new users and the endpoints.
"""

import json
import sys

from keystoneauth1.identity import v3
from keystoneauth1 import session as ks_session


class Keystone:
    """The few Identity API calls the catalog needs, on one session."""

    def __init__(self, spec):
        auth = v3.Password(
            auth_url=spec['auth_url'], username='admin',
            password=spec['password'], project_name='admin',
            user_domain_id='default', project_domain_id='default')
        self.session = ks_session.Session(auth=auth)
        self.url = spec['auth_url']

    def _get(self, path, key, **params):
        r = self.session.get(self.url + path, params=params)
        r.raise_for_status()
        return r.json()[key]

    def _post(self, path, key, body):
        r = self.session.post(self.url + path, json={key: body})
        r.raise_for_status()
        return r.json()[key]

    def ensure(self, kind, body, **match):
        """The id of the ``kind`` (e.g. ``projects``) matching, made if new."""
        found = self._get('/' + kind, kind, **match)
        if found:
            return found[0]['id']
        return self._post('/' + kind, kind[:-1], body)['id']

    def grant(self, project_id, user_id, role_id):
        self.session.put(self.url + '/projects/%s/users/%s/roles/%s'
                         % (project_id, user_id, role_id)).raise_for_status()


def apply(spec):
    ks = Keystone(spec)
    pw = spec['password']
    roles = {name: ks.ensure('roles', {'name': name}, name=name)
             for name in ('admin', 'member', 'reader', 'service')}
    service_project = ks.ensure(
        'projects', {'name': 'service', 'domain_id': 'default'},
        name='service', domain_id='default')
    demo_project = ks.ensure(
        'projects', {'name': 'demo', 'domain_id': 'default'},
        name='demo', domain_id='default')
    for name in spec['service_users']:
        user = ks.ensure('users', {'name': name, 'password': pw,
                                   'domain_id': 'default'},
                         name=name, domain_id='default')
        ks.grant(service_project, user, roles['admin'])
        ks.grant(service_project, user, roles['service'])
    demo = ks.ensure('users', {'name': 'demo', 'password': pw,
                               'domain_id': 'default'},
                     name='demo', domain_id='default')
    ks.grant(demo_project, demo, roles['member'])
    ks.grant(demo_project, demo, roles['reader'])
    for svc in spec['services']:
        service = ks.ensure('services', {'name': svc['name'],
                                         'type': svc['type']},
                            type=svc['type'])
        for interface in ('public', 'internal', 'admin'):
            ks.ensure('endpoints', {
                'service_id': service, 'interface': interface,
                'url': svc['url'], 'region_id': spec['region']},
                service_id=service, interface=interface)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as f:
        apply(json.load(f))


if __name__ == '__main__':
    main()
