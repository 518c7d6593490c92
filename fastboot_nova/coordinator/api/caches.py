"""``/v1/hosts/{host}/caches/{volume}``: a host reports or drops a cache."""

from fastboot_nova.coordinator.api import hosts
from fastboot_nova.coordinator.api import util

REPORT = {
    'type': 'object',
    'properties': {
        'export_url': {'type': 'string', 'minLength': 1, 'maxLength': 1024,
                       'pattern': r'^[a-z][a-z0-9+.-]*://\S+$'},
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
