"""neutron's API server with ML2 and no agents.

Nova calls Neutron on server show/list (security groups of the ports) and
on delete (ports and networks of the server), even for ``--nic none``
servers; a real neutron API with ML2 answers those from its database.
No L2 agent runs: guests use ``--nic none``.
"""

from ministack import ini
from ministack import proc
from ministack.services import mariadb
from ministack.services import rabbitmq
from ministack.services import wsgi

NAME = 'neutron'
NAMES = (NAME,)


def up(stack):
    layout = stack.layout
    etc = layout.etc / NAME
    etc.mkdir(parents=True, exist_ok=True)
    data = layout.data(NAME)
    data.mkdir(parents=True, exist_ok=True)
    conf = ini.write(etc / 'neutron.conf', {
        'DEFAULT': {'debug': False, 'core_plugin': 'ml2',
                    # get_ports reads Port.port_forwardings, a relation
                    # only the port_forwarding plugin's model defines:
                    # without it every port query fails (AttributeError).
                    'service_plugins': 'router,port_forwarding',
                    'auth_strategy': 'keystone',
                    'transport_url': rabbitmq.url(stack),
                    'state_path': data,
                    'notify_nova_on_port_status_changes': False,
                    'notify_nova_on_port_data_changes': False,
                    'api_paste_config':
                        layout.venv / 'etc/neutron/api-paste.ini'},
        'database': {'connection': mariadb.url(stack, NAME)},
        'keystone_authtoken': stack.authtoken_section('neutron'),
        'nova': stack.auth_section('nova'),
        'oslo_concurrency': {'lock_path': data / 'lock'},
        'oslo_messaging_notifications': {'driver': 'noop'},
    })
    ml2 = ini.write(etc / 'ml2_conf.ini', {
        'ml2': {'type_drivers': 'flat', 'tenant_network_types': '',
                'mechanism_drivers': '', 'extension_drivers':
                    'port_security'},
        'ml2_type_flat': {'flat_networks': '*'},
    })
    proc.run(layout, NAME + '-manage',
             [layout.bin('neutron-db-manage'), '--config-file', conf,
              '--config-file', ml2, 'upgrade', 'heads'],
             env=stack.venv_env())
    wsgi.serve(stack, NAME, 'neutron.wsgi.api:application', layout.port(NAME),
               env={'OS_NEUTRON_CONFIG_FILES': '%s;%s' % (conf, ml2)})


def wait(stack):
    wsgi.wait(stack, NAME, stack.layout.url(NAME, '/'), timeout=120)


def down(stack):
    proc.stop(stack.layout, NAME)
