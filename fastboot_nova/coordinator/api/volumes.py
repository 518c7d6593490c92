"""``/v1/volumes``: the trees, and each host's parents in them."""

from fastboot_nova.coordinator.api import hosts
from fastboot_nova.coordinator.api import util
from fastboot_nova.coordinator import policy

PARENTS_QUERY = {
    'type': 'object',
    'properties': {'host': util.NAME},
    'required': ['host'],
    'additionalProperties': False,
}


@util.validated()
def list_volumes(req, state, body, query):
    ctx = util.context(req)
    state.authorizer.authorize(ctx, policy.HOSTS_LIST)
    return util.json_response({'volumes': state.db.volume_list(ctx)})


@util.validated(query=PARENTS_QUERY, path=util.NAME)
def parents(req, state, body, query, volume):
    hosts.load_host(req, state, query['host'])
    return util.json_response(
        state.service.parents(util.context(req), volume, query['host']))


@util.validated(path=util.NAME)
def tree(req, state, body, query, volume):
    ctx = util.context(req)
    state.authorizer.authorize(ctx, policy.VOLUMES_READ)
    return util.json_response(state.service.tree(ctx, volume))
