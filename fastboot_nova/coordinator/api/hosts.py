"""``/v1/hosts``: registration, heartbeat, deregistration, listing."""

from fastboot_nova.coordinator.api import util
from fastboot_nova.coordinator import auth
from fastboot_nova.coordinator import exception
from fastboot_nova.coordinator import policy
from fastboot_nova.storage import location

REGISTER = {
    'type': 'object',
    'properties': {
        'name': util.NAME,
        # An IP address or a host name: checked in register(), with a
        # reason (location.check_address).
        'address': {'type': 'string', 'minLength': 1, 'maxLength': 253,
                    'pattern': r'\A[A-Za-z0-9.:-]+\Z'},
        'failure_domain': {
            'type': ['string', 'null'],
            'pattern': r'\A[A-Za-z0-9._:-]+(/[A-Za-z0-9._:-]+)*\Z',
            'maxLength': 255},
    },
    'required': ['name', 'address'],
    'additionalProperties': False,
}

HEARTBEAT = {
    'type': ['object', 'null'],
    'properties': {'state': {'enum': ['active', 'maintenance']}},
    'additionalProperties': False,
}

PATH = util.NAME


def host_view(state, host):
    return {'name': host.name,
            'address': host.address,
            'failure_domain': host.failure_domain,
            'state': host.state,
            'alive': state.service.is_alive(host.heartbeat_at, host.state),
            'heartbeat_at': host.heartbeat_at.isoformat() + 'Z'}


def load_host(req, state, name):
    """The host row, after checking the caller acts for it."""
    ctx = util.context(req)
    host = state.db.host_get(ctx, name)
    state.authorizer.authorize_host(ctx, host)
    return host


@util.validated(body=REGISTER)
def register(req, state, body, query):
    ctx = util.context(req)
    state.authorizer.authorize(ctx, policy.HOSTS_CREATE)
    try:
        location.check_address(body['address'])
    except ValueError as e:
        raise exception.BadRequest(reason='Invalid body: address: %s' % e)
    token = token_hash = None
    if state.authorizer.strategy == 'shared_secret':
        token = auth.new_host_token()
        token_hash = auth.hash_token(token)
    host = state.db.host_create(ctx, body['name'], body['address'],
                                body.get('failure_domain'),
                                owner=ctx.user_id, token_hash=token_hash)
    view = host_view(state, host)
    if token:
        # Shown once; only its hash is stored.
        view['token'] = token
    return util.json_response({'host': view}, status=201,
                              headers={'Location': req.host_url +
                                       '/v1/hosts/' + host.name})


@util.validated()
def list_hosts(req, state, body, query):
    ctx = util.context(req)
    state.authorizer.authorize(ctx, policy.HOSTS_LIST)
    return util.json_response(
        {'hosts': [host_view(state, h) for h in state.db.host_list(ctx)]})


@util.validated(path=PATH)
def show(req, state, body, query, host):
    ctx = util.context(req)
    state.authorizer.authorize(ctx, policy.HOSTS_LIST)
    return util.json_response(
        {'host': host_view(state, state.db.host_get(ctx, host))})


@util.validated(body=HEARTBEAT, path=PATH)
def heartbeat(req, state, body, query, host):
    load_host(req, state, host)
    row = state.db.host_heartbeat(util.context(req), host,
                                  state=(body or {}).get('state'))
    return util.json_response({'host': host_view(state, row)})


@util.validated(path=PATH)
def deregister(req, state, body, query, host):
    load_host(req, state, host)
    state.service.remove_host(util.context(req), host)
    return util.no_content()
