"""An explicit route table: path template -> {method: handler}."""

import re

import webob.dec

from fastboot_nova.coordinator.api import batches
from fastboot_nova.coordinator.api import caches
from fastboot_nova.coordinator.api import hosts
from fastboot_nova.coordinator.api import root
from fastboot_nova.coordinator.api import volumes
from fastboot_nova.coordinator import exception

ROUTES = {
    '/': {'GET': root.versions},
    '/v1': {'GET': root.v1},
    '/v1/hosts': {'GET': hosts.list_hosts, 'POST': hosts.register},
    '/v1/hosts/{host}': {'GET': hosts.show, 'DELETE': hosts.deregister},
    '/v1/hosts/{host}/heartbeat': {'PUT': hosts.heartbeat},
    '/v1/hosts/{host}/token': {'POST': hosts.reset_token},
    '/v1/hosts/{host}/caches/{volume}': {'PUT': caches.report,
                                         'DELETE': caches.remove},
    '/v1/volumes': {'GET': volumes.list_volumes},
    '/v1/volumes/{volume}/parents': {'GET': volumes.parents},
    '/v1/volumes/{volume}/tree': {'GET': volumes.tree},
    '/v1/batches': {'GET': batches.list_batches, 'POST': batches.create},
    '/v1/batches/{batch}': {'GET': batches.show, 'DELETE': batches.delete},
    '/v1/batches/{batch}/timeline': {'GET': batches.show_timeline},
}


def _compile(template):
    pattern = re.sub(r'\{(\w+)\}', r'(?P<\1>[^/]+)', template)
    return re.compile('%s/?' % pattern if template != '/' else '/?')


class Router:

    def __init__(self, state, routes=None):
        self.state = state
        self._table = [(_compile(t), methods)
                       for t, methods in (routes or ROUTES).items()]

    @webob.dec.wsgify
    def __call__(self, req):
        for regex, methods in self._table:
            # fullmatch: ``$`` would let a final newline through.
            match = regex.fullmatch(req.path_info)
            if not match:
                continue
            handler = methods.get(req.method)
            if handler is None:
                allowed = ', '.join(sorted(methods))
                raise exception.MethodNotAllowed(method=req.method,
                                                 allowed=allowed)
            return handler(req, self.state, **match.groupdict())
        raise exception.NotFound(reason='No resource at %s.' % req.path_info)
