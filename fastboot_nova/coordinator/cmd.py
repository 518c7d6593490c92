"""``fastboot-coordinator``: a thin launcher of the API under uWSGI.

The coordinator is served the way OpenStack serves its APIs (keystone and
placement under uWSGI): a master process, ``[coordinator] workers``
worker processes of ``threads`` threads, each loading its own application
(its own database pool and tooz membership: ``lazy-apps``), behind uWSGI's
event-driven HTTP router. The router holds the client connections: a
request reaches a worker only once its headers are complete, connections
that send nothing for ``header_timeout`` / ``client_timeout`` seconds are
closed, and a request running over ``request_timeout`` costs a worker
restart, never the service. So idle or half-sent connections cannot
exhaust it (the wsgiref server this replaces held a thread for each).

This command checks the configuration first (a clear error and exit 1,
as before), then replaces itself with ``uwsgi``. In production, run
uWSGI yourself with ``etc/fastboot/coordinator-uwsgi.ini`` as a start.
"""

import logging
import os
import shutil
import sys

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import deploy
from fastboot_nova.coordinator import exception
from fastboot_nova.coordinator import wsgi

LOG = logging.getLogger(__name__)

MODULE = 'fastboot_nova.coordinator.wsgi:init_application()'


def uwsgi_path():
    """uwsgi beside this Python (a virtualenv), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), 'uwsgi')
    if os.access(here, os.X_OK):
        return here
    return shutil.which('uwsgi')


def _address(host, port):
    return '[%s]:%d' % (host, port) if ':' in host else '%s:%d' % (host,
                                                                    port)


def uwsgi_argv(conf, binary='uwsgi'):
    """The uWSGI command line for ``conf`` (a list: no shell)."""
    opts = conf.coordinator
    return [
        binary, '--strict', '--master', '--need-app', '--die-on-term',
        '--no-orphans', '--lazy-apps', '--enable-threads',
        '--http', _address(opts.bind_host, opts.bind_port),
        # HTTP/1.1 keep-alive, as clients (requests' pools) assume: without
        # it the router closes after each answer and a client's next
        # request on the pooled connection is reset.
        '--http-keepalive', '--http-auto-chunked',
        # Imported once in the master, before the workers fork; each
        # worker then only builds its application.
        '--shared-import', 'fastboot_nova.coordinator.deploy',
        '--module', MODULE,
        '--processes', str(opts.workers),
        '--threads', str(opts.threads),
        '--listen', str(opts.listen_backlog),
        '--http-headers-timeout', str(opts.header_timeout),
        # The router has one timeout for the client and for the worker's
        # answer: below request_timeout it would drop, without a
        # response, a request the worker may still finish (one waiting
        # on a busy volume's lock, up to lock_timeout).
        '--http-timeout', str(max(opts.client_timeout, opts.request_timeout)),
        '--harakiri', str(opts.request_timeout),
        '--limit-post', str(conf.oslo_middleware.max_request_body_size),
        # Requests are logged by the application (no headers, no
        # secrets); uWSGI's own lines would repeat them.
        '--disable-logging',
    ] + (['--virtualenv', sys.prefix] if sys.prefix != sys.base_prefix
         else [])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    conf = config.parse_args(argv)
    try:
        # Everything a worker would refuse, refused here with a message:
        # configuration, database schema, tooz backend.
        deploy.make_app(conf, membership=False).stop()
    except exception.CoordinatorError as e:
        LOG.error('%s', e.msg)
        print('fastboot-coordinator: %s' % e.msg, file=sys.stderr)
        return 1
    binary = uwsgi_path()
    if binary is None:
        print('fastboot-coordinator: uWSGI is not installed: pip install '
              'uwsgi (or fastboot[coordinator])', file=sys.stderr)
        return 1
    env = dict(os.environ)
    env[wsgi.CONFIG_ENV] = os.pathsep.join(conf.config_file or [])
    if conf.config_dir:
        env[wsgi.CONFIG_DIR_ENV] = conf.config_dir
    LOG.info('Serving on http://%s with %d uWSGI workers',
             _address(conf.coordinator.bind_host, conf.coordinator.bind_port),
             conf.coordinator.workers)
    os.execve(binary, uwsgi_argv(conf, binary), env)


if __name__ == '__main__':
    sys.exit(main())
