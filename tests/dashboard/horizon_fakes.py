"""What the live Horizon of the browser test fakes, and why.

The browser test runs a real Horizon server process and a real
coordinator + runner (tests/functional/coordinator/fake_openstack.py,
which fakes Keystone's token check and the cloud behind the batch API
with the file-backed cloud of tests/unit/coordinator/fake_cloud.py).
Horizon must see the SAME cloud and present a token that the faked
auth_token accepts (``user:project:roles``), so here:

* login goes through Horizon's real login form and openstack_auth's
  session handling, but the Keystone call is replaced by
  :class:`FakeKeystoneBackend`: one user (``FASTBOOT_BROWSER_USER`` /
  ``_PASSWORD``), whose token and catalog (fastboot endpoint = the
  coordinator process) are built as Keystone would return them;
* the few Cinder/Nova calls the panel makes through Horizon's api
  modules (snapshot list/get, flavors, key pairs, servers, the
  instances quota) read the shared cloud file.

The batch API itself, its database and the runner are real processes.
"""

import os
import types

from cinderclient import exceptions as cinder_exceptions
from keystoneauth1 import access
from openstack_auth import backend
from openstack_auth import user as auth_user
from openstack_auth import utils as auth_utils
from openstack_dashboard import api
from openstack_dashboard.usage import quotas

from tests.unit.coordinator import fake_cloud

PROJECT = os.environ.get('FASTBOOT_BROWSER_PROJECT',
                         'a1b2c3d4e5f60718293a4b5c6d7e8f90')
USER_ID = 'user-a'
ROLES = os.environ.get('FASTBOOT_BROWSER_ROLES', 'member')


def _store():
    return fake_cloud.Store(os.environ['FASTBOOT_FAKE_CLOUD'])


def _endpoint(url):
    return [{'id': '%s-%s' % (url, iface), 'interface': iface,
             'region': 'RegionOne', 'region_id': 'RegionOne', 'url': url}
            for iface in ('public', 'internal', 'admin')]


def token_body():
    keystone = os.environ['FASTBOOT_BROWSER_KEYSTONE_URL']
    catalog = [
        {'id': 'fastboot', 'type': 'fastboot', 'name': 'fastboot',
         'endpoints': _endpoint(os.environ['FASTBOOT_BROWSER_API_URL'])},
        {'id': 'keystone', 'type': 'identity', 'name': 'keystone',
         'endpoints': _endpoint(keystone)},
        # Present so Horizon's Compute and Volume panels are enabled;
        # the panel's calls to them are faked below.
        {'id': 'nova', 'type': 'compute', 'name': 'nova',
         'endpoints': _endpoint('http://127.0.0.1:9/compute')},
        {'id': 'cinder', 'type': 'volumev3', 'name': 'cinderv3',
         'endpoints': _endpoint('http://127.0.0.1:9/volume')},
    ]
    domain = {'id': 'default', 'name': 'Default'}
    return {'token': {
        'methods': ['password'],
        'expires_at': '2099-01-01T00:00:00.000000Z',
        'issued_at': '2026-01-01T00:00:00.000000Z',
        'user': {'id': USER_ID, 'name': os.environ.get(
            'FASTBOOT_BROWSER_USER', 'demo'), 'domain': domain},
        'project': {'id': PROJECT, 'name': 'demo', 'domain': domain},
        'roles': [{'id': 'r-%s' % r, 'name': r} for r in ROLES.split('+')],
        'catalog': catalog,
    }}


class FakeKeystoneBackend(backend.KeystoneBackend):
    """openstack_auth's backend with the Keystone round trip replaced."""

    def authenticate(self, request, auth_url=None, username=None,
                     password=None, **kwargs):
        if username != os.environ.get('FASTBOOT_BROWSER_USER', 'demo') or \
                password != os.environ.get('FASTBOOT_BROWSER_PASSWORD',
                                           'secret'):
            return None
        auth_ref = access.AccessInfoV3(
            token_body(), auth_token='%s:%s:%s' % (USER_ID, PROJECT, ROLES))
        token = auth_user.Token(auth_ref)
        user = auth_user.create_user_from_token(
            request, token, os.environ['FASTBOOT_BROWSER_KEYSTONE_URL'],
            'RegionOne')
        request.session['unscoped_token'] = None
        request.user = user
        auth_user.set_session_from_user(request, user)
        return user


def _project_list(*args, **kwargs):
    project = types.SimpleNamespace(id=PROJECT, name='demo', enabled=True,
                                    domain_id='default')
    return [project]


class _Obj(types.SimpleNamespace):
    def to_dict(self):
        return dict(self.__dict__)


def _snapshot(sid, item):
    return _Obj(id=sid, name='snap-%s' % sid[:8], size=item['size'],
                status=item['status'], volume_id=None)


def volume_snapshot_list(request, search_opts=None):
    status = (search_opts or {}).get('status')
    return [_snapshot(sid, item)
            for sid, item in sorted(_store().read()['snapshots'].items())
            if item['project'] == PROJECT and
            (status is None or item['status'] == status)]


def volume_snapshot_get(request, snapshot_id):
    item = _store().read()['snapshots'].get(snapshot_id)
    if item is None or item['project'] != PROJECT:
        raise cinder_exceptions.NotFound(404)
    return _snapshot(snapshot_id, item)


def flavor_list(request, *args, **kwargs):
    return [_Obj(id=f['id'], name=name, disk=f['disk'])
            for name, f in sorted(_store().read()['flavors'].items())]


def keypair_list(request):
    return []


def server_list(request, search_opts=None, **kwargs):
    servers = [_Obj(id=sid, name=s['name'])
               for sid, s in _store().read()['servers'].items()
               if s['project'] == PROJECT]
    return servers, False


def tenant_quota_usages(request, tenant_id=None, targets=None):
    data = _store().read()
    limit = data['quota'].get(PROJECT)
    if limit is None:
        return {'instances': {'available': float('inf')}}
    used = sum(1 for s in data['servers'].values()
               if s['project'] == PROJECT)
    return {'instances': {'available': max(0, limit - used)}}


def install():
    # The Identity panels ask Keystone for its version to build the menu.
    api.keystone.get_identity_api_version = lambda request: (3, 14)
    auth_utils.get_project_list = _project_list
    api.cinder.volume_snapshot_list = volume_snapshot_list
    api.cinder.volume_snapshot_get = volume_snapshot_get
    api.nova.flavor_list = flavor_list
    api.nova.keypair_list = keypair_list
    api.nova.server_list = server_list
    quotas.tenant_quota_usages = tenant_quota_usages
