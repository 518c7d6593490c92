"""Serve a WSGI application with gunicorn from the ministack venv.

gunicorn installs in seconds (uWSGI compiles for about a minute) and runs
each API as one real HTTP server process with a few threads, which is all
a one-machine cloud needs.
"""

from ministack import layout as layout_mod
from ministack import proc


#: Seconds an idle HTTP/1.1 connection stays open (gunicorn's default: 2).
KEEP_ALIVE = 75
#: Longest request line (gunicorn's default: 4094, 414 above). nova-api
#: asks Neutron for the ports of up to 150 servers in one query string
#: (nova.network.security_group_api.MAX_SEARCH_IDS, ~7.1 KB, sized for
#: neutronclient's 8192): with more than ~85 servers a server list got
#: HTTP 500 NeutronClientException. 8190 is gunicorn's largest.
LIMIT_REQUEST_LINE = 8190


def serve(stack, name, app, port, env=None, threads=4):
    layout = stack.layout
    full_env = stack.venv_env()
    full_env.update(env or {})
    full_env['MINISTACK_WSGI_APP'] = app
    full_env['PYTHONPATH'] = str(layout_mod.REPO)
    proc.start(layout, name, [
        layout.bin('gunicorn'), '--bind', '127.0.0.1:%d' % port,
        '--workers', '1', '--threads', str(threads), '--timeout', '300',
        '--graceful-timeout', '5', '--no-control-socket',
        # gunicorn closes an idle keep-alive connection after 2 s, the
        # interval at which the openstack CLI polls (server delete
        # --wait): a request sent as it closed failed with "Connection
        # reset by peer". Clients' pools keep theirs longer than this.
        '--keep-alive', str(KEEP_ALIVE),
        '--limit-request-line', str(LIMIT_REQUEST_LINE),
        '--error-logfile', '-', '--name', 'ms-' + name,
        'ministack.wsgiapp:application'], env=full_env)


def wait(stack, name, url, timeout=90):
    proc.wait(stack.layout, name, proc.http_ok(url), timeout=timeout)
