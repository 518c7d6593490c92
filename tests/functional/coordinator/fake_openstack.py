"""Run fastboot-coordinator or fastboot-runner with OpenStack faked.

``python -m tests.functional.coordinator.fake_openstack coordinator|runner
--config-file F``: the real console script's ``main``, with two
replacements, for the process tests and the OSC plugin tests while no
real cloud runs here (the ministack tests replace this):

* keystonemiddleware's auth_token: a token ``user:project:roles`` (roles
  ``+``-separated) is taken as valid, anything else is 401;
* the cloud: the file-backed fake of tests/unit/coordinator/fake_cloud.py
  at ``$FASTBOOT_FAKE_CLOUD``, shared by every process of a test.

The coordinator's own launcher replaces itself with uWSGI, whose workers
would not see these replacements: the coordinator is served here in this
process, by a threaded wsgiref server, after the launcher's own checks.
"""

import os
import socketserver
import sys
from unittest import mock
from wsgiref import simple_server

import webob
import webob.dec

from tests.unit.coordinator import fake_cloud


class TokenAuth:

    def __init__(self, app, conf):
        self.app = app

    @webob.dec.wsgify
    def __call__(self, req):
        if req.path_info in ('', '/'):
            return self.app  # version discovery, as the harness probes it
        token = req.headers.get('X-Auth-Token', '')
        parts = token.split(':')
        if len(parts) != 3 or not all(parts):
            return webob.Response(status=401, body=b'Invalid token',
                                  content_type='text/plain')
        user, project, roles = parts
        req.headers['X-Identity-Status'] = 'Confirmed'
        req.headers['X-User-Id'] = user
        req.headers['X-Project-Id'] = project
        req.headers['X-Roles'] = roles.replace('+', ',')
        return self.app


def factory(conf):
    return fake_cloud.FakeCloudFactory(os.environ['FASTBOOT_FAKE_CLOUD'])


class _ThreadingServer(socketserver.ThreadingMixIn,
                       simple_server.WSGIServer):
    daemon_threads = True


def serve_coordinator(argv):
    from fastboot_nova.coordinator import config
    from fastboot_nova.coordinator import deploy
    conf = config.parse_args(argv)
    app = deploy.make_app(conf)
    httpd = simple_server.make_server(
        conf.coordinator.bind_host, conf.coordinator.bind_port, app,
        server_class=_ThreadingServer)
    httpd.serve_forever()


def main():
    which, argv = sys.argv[1], sys.argv[2:]
    with mock.patch('keystonemiddleware.auth_token.AuthProtocol',
                    TokenAuth), \
            mock.patch('fastboot_nova.coordinator.batches.clients.'
                       'CloudFactory', factory):
        if which == 'coordinator':
            return serve_coordinator(argv)
        from fastboot_nova.coordinator.batches import cmd as runner_cmd
        return runner_cmd.main(argv)


if __name__ == '__main__':
    sys.exit(main())
