"""``/v1/hosts/{host}/caches/{volume}``: a host reports or drops a cache.

The ``export_url`` a host reports is handed to other hosts as the place to
read the volume from: only the inter-host form ``nbd://HOST:PORT/EXPORT``
of an export of that volume is accepted (see
:func:`fastboot_nova.storage.location.parse_parent`). A local socket URL
would have other hosts read whatever that socket serves on their side.
"""

from fastboot_nova.coordinator.api import hosts
from fastboot_nova.coordinator.api import util
from fastboot_nova.coordinator import exception
from fastboot_nova import exception as fb_exception
from fastboot_nova.storage import location as location_mod

REPORT = {
    'type': 'object',
    'properties': {
        'export_url': {'type': 'string', 'minLength': 1, 'maxLength': 1024,
                       # The form is checked in report(), with a reason.
                       'pattern': r'\A\S+\Z'},
        'warm': {'type': 'boolean'},
        # What the host reads from right now (after a fail-over, say);
        # null: the origin. Omitted: unchanged.
        'parent': {'anyOf': [util.NAME, {'type': 'null'}]},
    },
    'required': ['export_url'],
    'additionalProperties': False,
}


def _ref(name, rows):
    if name is None:
        return {'origin': True}
    return {'host': name, 'export_url': rows[name].export_url}


@util.validated(body=REPORT, path=util.NAME)
def report(req, state, body, query, host, volume):
    hosts.load_host(req, state, host)
    try:
        location_mod.parse_parent(body['export_url'], image=volume)
    except fb_exception.InvalidLocation as e:
        raise exception.BadRequest(reason='Invalid body: export_url: %s'
                                   % e.kwargs['reason'])
    rows, tree = state.service.report_cache(
        util.context(req), host, volume, body['export_url'],
        body.get('warm', False), parent=body.get('parent', False))
    by_host = {r.host: r for r in rows}
    mine = by_host[host]
    assignment = tree.assignments.get(host)
    view = {'host': host,
            'volume': volume,
            'export_url': mine.export_url,
            'warm': mine.warm,
            'parent': (_ref(assignment.primary, by_host)
                       if assignment else None)}
    return util.json_response({'cache': view})


@util.validated(path=util.NAME)
def remove(req, state, body, query, host, volume):
    hosts.load_host(req, state, host)
    state.service.remove_cache(util.context(req), host, volume)
    return util.no_content()
