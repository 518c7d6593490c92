"""The fastboot batch API (``/v1/batches`` on the coordinator).

The endpoint is the ``fastboot`` service of the user's Keystone catalog
(the devstack plugin and ``openstack fastboot`` use the same service
type); every call carries the user's own token, so the coordinator
applies its project scoping and policy to the dashboard user exactly as
to the CLI. Errors become :class:`FastbootError`, a recoverable Horizon
error whose message is the API's own, so views show it and go on.
"""

import logging
import uuid

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from horizon import exceptions
from openstack_dashboard.api import base
import requests

LOG = logging.getLogger(__name__)

SERVICE_TYPE = 'fastboot'
IDEMPOTENCY_HEADER = 'Idempotency-Key'
#: Server states a batch's servers end in.
ACTIVE = 'ACTIVE'
ERROR = 'ERROR'


class FastbootError(exceptions.NotAvailable):
    """The batch API refused a call, or could not be reached.

    A subclass of a Horizon recoverable exception: ``exceptions.handle``
    shows ``message`` to the user instead of a server error page.
    ``status`` is the HTTP status, or None when there was no answer.
    """

    def __init__(self, message, status=None):
        super().__init__(message)
        self.message = message
        self.status = status


class Batch(base.APIDictWrapper):
    """One batch as ``GET /v1/batches[/{id}]`` returns it."""

    _attrs = ['id', 'name', 'state', 'count', 'flavor', 'source',
              'server_states', 'servers', 'fault', 'created_at',
              'updated_at', 'origin_volume_id', 'image_id', 'project_id']

    @property
    def active(self):
        return (self._apidict.get('server_states') or {}).get(ACTIVE, 0)

    @property
    def errors(self):
        return (self._apidict.get('server_states') or {}).get(ERROR, 0)

    @property
    def snapshot_id(self):
        source = self._apidict.get('source') or {}
        return source.get('id') if source.get('type') == 'snapshot' else None


class BatchServer(base.APIDictWrapper):
    """One server of a batch (``batch.servers[i]``)."""

    _attrs = ['index', 'id', 'state', 'attempts', 'host', 'fault', 'name']


def endpoint(request):
    """The fastboot endpoint of the user's catalog (ServiceCatalogException
    when the service is not registered).
    """
    return base.url_for(request, SERVICE_TYPE).rstrip('/')


def _verify():
    if getattr(settings, 'OPENSTACK_SSL_NO_VERIFY', False):
        return False
    return getattr(settings, 'OPENSTACK_SSL_CACERT', None) or True


def _call(request, method, path, body=None, headers=None):
    url = endpoint(request) + path
    all_headers = {'X-Auth-Token': request.user.token.id,
                   'Accept': 'application/json'}
    all_headers.update(headers or {})
    timeout = getattr(settings, 'FASTBOOT_API_TIMEOUT', 30)
    try:
        resp = requests.request(method, url, json=body,
                                headers=all_headers, timeout=timeout,
                                verify=_verify())
    except requests.RequestException as e:
        LOG.warning('fastboot API %s %s failed: %s', method, path, e)
        raise FastbootError(
            _('The fast boot service is not reachable; try again later.'))
    if resp.status_code >= 400:
        raise FastbootError(_message(resp), status=resp.status_code)
    if not resp.content:
        return None
    try:
        return resp.json()
    except ValueError:
        raise FastbootError(
            _('The fast boot service answered with something that is not '
              'JSON (HTTP %d).') % resp.status_code,
            status=resp.status_code)


def _message(resp):
    try:
        return str(resp.json()['error']['message'])
    except (ValueError, KeyError, TypeError):
        # Not the coordinator's error document (a proxy's page, say):
        # never show a whole HTML page to the user.
        return _('The fast boot service failed (HTTP %d).') % resp.status_code


def batch_list(request):
    data = _call(request, 'GET', '/v1/batches')
    return [Batch(b) for b in data['batches']]


def batch_get(request, batch_id):
    data = _call(request, 'GET', '/v1/batches/%s' % _uuid(batch_id))
    return Batch(data['batch'])


def batch_servers(batch, names=None):
    """The servers of a batch, in index order.

    The batch API knows servers by id; ``names`` (id -> Nova's name, from
    one server list call) fills in the names it has.
    """
    names = names or {}
    servers = []
    for server in sorted(batch.servers or [], key=lambda s: s['index']):
        row = dict(server)
        row['name'] = names.get(server.get('id'))
        servers.append(BatchServer(row))
    return servers


def batch_create(request, snapshot_id, count, flavor, name, networks='none',
                 key_name=None, idempotency_key=None):
    """POST a batch; returns at the API's 202 with the new batch.

    ``idempotency_key`` should be the form's own key so that a
    double-submitted form makes one batch, not two.
    """
    body = {'source': {'volume_snapshot_id': snapshot_id},
            'count': int(count), 'flavor': flavor, 'name': name,
            'networks': networks}
    if key_name:
        body['key_name'] = key_name
    key = idempotency_key or str(uuid.uuid4())
    data = _call(request, 'POST', '/v1/batches', body,
                 {IDEMPOTENCY_HEADER: key})
    return Batch(data['batch'])


def batch_delete(request, batch_id, purge=False):
    path = '/v1/batches/%s' % _uuid(batch_id)
    _call(request, 'DELETE', path + ('?purge=true' if purge else ''))


def batch_timeline(request, batch_id):
    data = _call(request, 'GET', '/v1/batches/%s/timeline' % _uuid(batch_id))
    return data['timeline']


def _uuid(value):
    """Batch ids come from URLs: only a UUID goes into a request path."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise FastbootError(_('Invalid batch id.'), status=400)
