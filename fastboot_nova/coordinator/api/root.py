"""``/`` and ``/v1``: version discovery."""

from fastboot_nova.coordinator.api import util

VERSION = {'id': 'v1', 'status': 'CURRENT'}


@util.validated()
def versions(req, state, body, query):
    return util.json_response({'versions': [
        dict(VERSION, links=[{'rel': 'self',
                              'href': req.host_url + '/v1'}])]})


@util.validated()
def v1(req, state, body, query):
    return util.json_response({'version': dict(VERSION)})
