"""The fastboot control plane as production runs it.

* Redis (Debian's ``redis-server``, by hand on 127.0.0.1 with a password)
  as the tooz backend: locks around tree changes, replica membership,
  the runners' batch claims;
* two replicas of ``fastboot-coordinator`` (each execs uWSGI, master plus
  workers) on the shared MariaDB database ``fastboot``, Keystone-
  authenticated (keystonemiddleware ``[keystone_authtoken]``, service user
  ``fastboot``); the first replica is the catalog's ``fastboot`` endpoint,
  the computes get both URLs and fail over between them;
* ``fastboot-runner`` and ``fastboot-notification-listener`` on RabbitMQ.

The computes' side (``coordinator_url``, export address, PSK file) is
written by :mod:`ministack.services.nova` from :func:`compute_options`.
"""

import secrets

from ministack import ini
from ministack import proc
from ministack.services import cinder
from ministack.services import mariadb
from ministack.services import rabbitmq

NAME = 'fastboot'
REPLICAS = ('coordinator', 'coordinator2')
NAMES = (('redis',) + tuple('fastboot-' + r for r in REPLICAS)
         + ('fastboot-runner', 'fastboot-notification-listener'))
#: Host-to-host NBD export ports of each compute: inside the ministack's
#: range, one block per compute (``MINISTACK_PORT_BASE`` + offset).
EXPORT_PORTS = 10
EXPORT_OFFSET = 900


def _etc(stack):
    return stack.layout.etc / NAME


def redis_url(stack):
    return 'redis://:%s@127.0.0.1:%d' % (stack.password,
                                          stack.layout.port('redis'))


def replica_urls(stack, path='/v1'):
    return [stack.layout.url(r, path) for r in REPLICAS]


def psk_file(stack):
    return _etc(stack) / 'exports.psk'


def compute_options(stack, index):
    """nova.conf options of compute number ``index`` (0-based)."""
    low = stack.layout.port_base + EXPORT_OFFSET + index * EXPORT_PORTS
    return {
        'fastboot': {
            'coordinator_url': ','.join(replica_urls(stack)),
            'export_address': '127.0.0.1',
            'export_auth': 'tls',
            'export_port_min': low,
            'export_port_max': low + EXPORT_PORTS - 1,
        },
        'fastboot_qemu': {'export_psk_file': psk_file(stack),
                          'export_psk_identity': 'fastboot'},
        'fastboot_coordinator': stack.auth_section('nova'),
    }


def _common(stack):
    data = stack.layout.data(NAME)
    return {
        'DEFAULT': {'debug': False, 'transport_url': rabbitmq.url(stack)},
        'coordinator': {'state_path': data,
                        'bind_host': '127.0.0.1',
                        'auth_strategy': 'keystone',
                        'backend_url': redis_url(stack),
                        # Two replicas already; one uWSGI worker each
                        # (master + worker, ~200 MiB a replica, not 400).
                        'workers': 1, 'threads': 4},
        'database': {'connection': mariadb.url(stack, NAME)},
        'keystone_authtoken': stack.authtoken_section('fastboot'),
        'batches_auth': stack.auth_section('fastboot'),
        # The runner's origin volumes: the multiattach type Cinder has
        # here (the option's default, fastboot-shared, is devstack's).
        'batches': {'volume_type': cinder.MULTIATTACH_TYPE},
        'oslo_messaging_notifications': {'driver': 'messagingv2'},
    }


def configure(stack):
    etc = _etc(stack)
    etc.mkdir(parents=True, exist_ok=True)
    stack.layout.data(NAME).mkdir(parents=True, exist_ok=True)
    ini.write(etc / 'fastboot.conf', _common(stack))
    for replica in REPLICAS:
        ini.write(etc / ('%s.conf' % replica), {
            'coordinator': {'bind_port': stack.layout.port(replica)}})
    if not psk_file(stack).exists():
        psk_file(stack).write_text('fastboot:%s\n' % secrets.token_hex(32))
        psk_file(stack).chmod(0o600)


def _redis_up(stack):
    layout = stack.layout
    data = layout.data('redis')
    data.mkdir(parents=True, exist_ok=True)
    conf = _etc(stack) / 'redis.conf'
    # Password in a 0600 file, not on the command line (ps shows it).
    conf.write_text(
        'bind 127.0.0.1\nport %d\nprotected-mode yes\ndaemonize no\n'
        'dir %s\nsave ""\nappendonly no\nlogfile ""\nrequirepass %s\n'
        % (layout.port('redis'), data, stack.password))
    conf.chmod(0o600)
    proc.start(layout, 'redis', ['redis-server', conf])
    proc.wait(layout, 'redis', proc.port_open(layout.port('redis')),
              timeout=30)


def _argv(stack, binary, *extra):
    return [stack.layout.bin(binary), '--config-file',
            _etc(stack) / 'fastboot.conf', *extra]


def up(stack):
    """Redis, the schema and both replicas.

    They need Keystone only for requests, so this runs while the catalog
    is made.
    """
    layout = stack.layout
    configure(stack)
    _redis_up(stack)
    proc.run(layout, 'fastboot-manage',
             _argv(stack, 'fastboot-coordinator-manage', 'db', 'sync'),
             env=stack.venv_env())
    for replica in REPLICAS:
        start_replica(stack, replica)


def start_replica(stack, replica):
    """Start one replica (the launcher execs uWSGI in the same pid)."""
    proc.start(stack.layout, 'fastboot-' + replica, _argv(
        stack, 'fastboot-coordinator', '--config-file',
        _etc(stack) / ('%s.conf' % replica)), env=stack.venv_env())


def up_workers(stack):
    """The runner and the listener: after RabbitMQ answers."""
    for name in ('fastboot-runner', 'fastboot-notification-listener'):
        proc.start(stack.layout, name, _argv(stack, name),
                   env=stack.venv_env())


def wait(stack):
    for replica in REPLICAS:
        proc.wait(stack.layout, 'fastboot-' + replica,
                  proc.http_ok(stack.layout.url(replica, '/')), timeout=120)
    for name in NAMES[-2:]:
        if not proc.running(stack.layout, name):
            raise proc.ServiceFailed(name, 'the process exited',
                                     proc.log_tail(stack.layout, name))


def down(stack):
    for name in reversed(NAMES):
        proc.stop(stack.layout, name)
