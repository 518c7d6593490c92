"""``fastboot-coordinator``: the API on a small threaded WSGI server.

No eventlet: wsgiref's server with one thread per request, which is plenty
for hosts that heartbeat every few seconds. Run it under uwsgi, gunicorn or
mod_wsgi (:mod:`.wsgi`) for more.
"""

import logging
import signal
import socketserver
import sys
from wsgiref import simple_server

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import deploy
from fastboot_nova.coordinator import exception

LOG = logging.getLogger(__name__)


class _Server(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Handler(simple_server.WSGIRequestHandler):

    def log_message(self, format, *args):
        # Request lines only (no headers, so no secrets), through oslo.log.
        LOG.debug('%s %s', self.address_string(), format % args)


def make_server(app, host, port):
    server = simple_server.make_server(host, port, app,
                                       server_class=_Server,
                                       handler_class=_Handler)
    return server


def main(argv=None):
    conf = config.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        app = deploy.make_app(conf)
    except exception.CoordinatorError as e:
        LOG.error('%s', e.msg)
        print('fastboot-coordinator: %s' % e.msg, file=sys.stderr)
        return 1
    server = make_server(app, conf.coordinator.bind_host,
                         conf.coordinator.bind_port)
    LOG.info('Listening on http://%s:%d', *server.server_address[:2])

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.stop()
    return 0


if __name__ == '__main__':
    sys.exit(main())
