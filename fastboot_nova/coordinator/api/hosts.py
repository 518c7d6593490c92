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

RESET_TOKEN = {
    'type': ['object', 'null'],
    # keystone: the user the host belongs to from now on.
    'properties': {'owner': {'type': 'string', 'minLength': 1,
                             'maxLength': 255,
                             'pattern': r'\A[A-Za-z0-9._@-]+\Z'}},
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
    location_header = {'Location': req.host_url + '/v1/hosts/' +
                       body['name']}
    again = _register_again(state, ctx, body)
    if again is not None:
        return util.json_response({'host': host_view(state, again)},
                                  headers=location_header)
    token = token_hash = None
    if state.authorizer.strategy == 'shared_secret':
        if auth.is_token(ctx.host_token):
            # The host's own token, kept before it asked: a lost reply
            # costs nothing, the retry proves the same token.
            token_hash = auth.hash_token(ctx.host_token)
        else:
            token = auth.new_host_token()
            token_hash = auth.hash_token(token)
    try:
        host = state.db.host_create(ctx, body['name'], body['address'],
                                    body.get('failure_domain'),
                                    owner=ctx.user_id, token_hash=token_hash)
    except exception.HostExists:
        # Registered meanwhile, by a retry of the same host maybe.
        again = _register_again(state, ctx, body)
        if again is None:
            raise
        return util.json_response({'host': host_view(state, again)},
                                  headers=location_header)
    view = host_view(state, host)
    if token:
        # Shown once; only its hash is stored.
        view['token'] = token
    return util.json_response({'host': view}, status=201,
                              headers=location_header)


def _register_again(state, ctx, body):
    """The updated row if ``body['name']`` exists and ``ctx`` owns it.

    None if there is no such host; HostExists if another caller has it.
    """
    try:
        host = state.db.host_get(ctx, body['name'])
    except exception.HostNotFound:
        return None
    if not state.authorizer.owns(ctx, host):
        raise exception.HostExists(host=body['name'])
    return state.db.host_update(ctx, body['name'], body['address'],
                                body.get('failure_domain'))


@util.validated(body=RESET_TOKEN, path=PATH)
def reset_token(req, state, body, query, host):
    """An operator gives the name back: a new token, maybe a new owner."""
    ctx = util.context(req)
    state.authorizer.authorize_reset(ctx)
    owner = (body or {}).get('owner', False)
    token = auth.reissue(state.db, ctx, host, owner=owner)
    row = state.db.host_get(ctx, host)
    view = host_view(state, row)
    view['token'] = token
    return util.json_response({'host': view})


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
