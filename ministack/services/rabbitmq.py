"""RabbitMQ on 127.0.0.1, its Erlang distribution and epmd on loopback.

``/usr/sbin/rabbitmq-server`` switches to the rabbitmq user through
systemd-era wrappers; ``/usr/lib/rabbitmq/bin/rabbitmq-server`` runs as
root with RABBITMQ_* variables. epmd is started here, in the foreground on
our own port, so that Erlang does not daemonise one that ``down`` would
not know about.
"""

from ministack import proc

NAME = 'rabbitmq'
NAMES = ('epmd', NAME)


def _env(stack):
    layout = stack.layout
    data = layout.data(NAME)
    return {
        'HOME': str(data),
        'ERL_EPMD_PORT': str(layout.port('epmd')),
        'ERL_EPMD_ADDRESS': '127.0.0.1',
        'RABBITMQ_NODENAME': 'ms@localhost',
        'RABBITMQ_NODE_IP_ADDRESS': '127.0.0.1',
        'RABBITMQ_NODE_PORT': str(layout.port(NAME)),
        'RABBITMQ_DIST_PORT': str(layout.port('rabbitmq_dist')),
        'RABBITMQ_MNESIA_BASE': str(data / 'mnesia'),
        'RABBITMQ_LOG_BASE': str(data / 'log'),
        'RABBITMQ_LOGS': '-',
        'RABBITMQ_PID_FILE': str(data / 'rabbit.pid'),
        'RABBITMQ_ENABLED_PLUGINS_FILE': str(data / 'enabled_plugins'),
        'RABBITMQ_CONFIG_FILE': str(data / 'rabbitmq'),
        'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
            '-kernel inet_dist_use_interface {127,0,0,1}',
    }


def url(stack):
    return 'rabbit://%s:%s@127.0.0.1:%d/' % (
        stack.rabbit_user, stack.password, stack.layout.port(NAME))


def up(stack):
    layout = stack.layout
    data = layout.data(NAME)
    data.mkdir(parents=True, exist_ok=True)
    (data / 'enabled_plugins').write_text('[].\n')
    (data / 'rabbitmq.conf').write_text(
        'default_user = %s\ndefault_pass = %s\nloopback_users = none\n'
        % (stack.rabbit_user, stack.password))
    (data / 'rabbitmq.conf').chmod(0o600)
    env = _env(stack)
    proc.start(layout, 'epmd', ['epmd', '-port', layout.port('epmd'),
                                '-address', '127.0.0.1'], env=env)
    proc.wait(layout, 'epmd', proc.port_open(layout.port('epmd')))
    proc.start(layout, NAME, ['/usr/lib/rabbitmq/bin/rabbitmq-server'],
               env=env)


def wait(stack):
    proc.wait(stack.layout, NAME, proc.port_open(stack.layout.port(NAME)),
              timeout=90)


def down(stack):
    proc.stop(stack.layout, NAME)
    proc.stop(stack.layout, 'epmd')
