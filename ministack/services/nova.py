"""Nova: api (gunicorn), conductor, scheduler and one compute per host.

Each nova-compute has its own ``host`` name, state directories and
libvirtd (``ministack.services.libvirt``), and runs fastboot's driver with
``virt_type = qemu`` (TCG here), in Nova 34's default native-thread mode.
"""

from ministack import ini
from ministack import layout as layout_mod
from ministack import proc
from ministack.services import ceph
from ministack.services import coordinator
from ministack.services import libvirt
from ministack.services import mariadb
from ministack.services import rabbitmq
from ministack.services import wsgi

NAME = 'nova'
NAMES = (('nova-api', 'nova-conductor', 'nova-scheduler')
         + tuple('nova-compute-' + h for h in layout_mod.COMPUTES))


def _etc(stack):
    return stack.layout.etc / NAME


def _common(stack):
    layout = stack.layout
    data = layout.data(NAME)
    return {
        'DEFAULT': {'debug': False, 'transport_url': rabbitmq.url(stack),
                    'my_ip': '127.0.0.1', 'state_path': data,
                    'use_rootwrap_daemon': False},
        'api': {'auth_strategy': 'keystone'},
        'api_database': {'connection': mariadb.url(stack, 'nova_api')},
        'database': {'connection': mariadb.url(stack, 'nova')},
        'keystone_authtoken': stack.authtoken_section('nova'),
        'service_user': dict(stack.auth_section('nova'),
                             send_service_user_token=True),
        'placement': stack.auth_section('placement'),
        'neutron': stack.auth_section('neutron'),
        'cinder': dict(stack.auth_section('cinder'),
                       os_region_name=stack.region),
        'glance': {'region_name': stack.region},
        'scheduler': {'workers': 1, 'discover_hosts_in_cells_interval': -1},
        'conductor': {'workers': 1},
        'wsgi': {'api_paste_config': layout.venv / 'etc/nova/api-paste.ini'},
        'oslo_concurrency': {'lock_path': data / 'lock'},
        # Versioned notifications on RabbitMQ: the batch timeline's Nova
        # phases (fastboot-notification-listener).
        'notifications': {'notification_format': 'versioned'},
        'oslo_messaging_notifications': {'driver': 'messagingv2'},
        'vnc': {'enabled': False},
        'spice': {'enabled': False},
        'os_vif_linux_bridge': {},
        'cache': {'enabled': False},
    }


PRIVSEP_SECTIONS = ('nova_sys_admin', 'privsep_osbrick', 'fastboot_sys_admin',
                    'vif_plug_ovs_privileged',
                    'vif_plug_linux_bridge_privileged')


def _compute(stack, host):
    sections = _compute_base(stack, host)
    index = layout_mod.COMPUTES.index(host)
    for section, options in coordinator.compute_options(stack,
                                                        index).items():
        sections.setdefault(section, {}).update(options)
    return sections


def _compute_base(stack, host):
    base = stack.layout.data('compute-' + host)
    # nova-compute runs as root here: privsep helpers start directly from
    # the venv (the default, "sudo nova-rootwrap ...", finds neither
    # nova-rootwrap on sudo's PATH nor /etc/nova/rootwrap.conf).
    helper = '%s --config-file %s --config-file %s' % (
        stack.layout.bin('privsep-helper'), _etc(stack) / 'nova.conf',
        _etc(stack) / ('%s.conf' % host))
    privsep = {section: {'helper_command': helper}
               for section in PRIVSEP_SECTIONS}
    return dict(privsep, **{
        'DEFAULT': {'host': host,
                    'compute_driver': 'fastboot.driver.FastBootDriver',
                    'state_path': base,
                    'instances_path': base / 'instances',
                    'reserved_host_memory_mb': 0,
                    'heal_instance_info_cache_interval': -1},
        'libvirt': {'virt_type': 'qemu',
                    'connection_uri': libvirt.connection_uri(stack, host),
                    'cpu_mode': 'none',
                    # Stock volumes (Cinder's RBD): the libvirt secret
                    # ministack.services.libvirt defines on each host.
                    'rbd_user': ceph.CINDER_USER,
                    'rbd_secret_uuid': libvirt.rbd_secret_uuid(stack)},
        'fastboot': {'state_path': base / 'fb',
                     'use_cachegroup': True, 'use_cache_snapshot': True},
        # RBD origins (Cinder on ministack's Ceph) read through librbd.
        'fastboot_qemu': {'rbd_ceph_conf': ceph.conf_path(stack.layout),
                          # QEMU (libvirt's) opens the VM disks.
                          'client_group': 'libvirt-qemu'},
    })


def configure(stack):
    etc = _etc(stack)
    etc.mkdir(parents=True, exist_ok=True)
    ini.write(etc / 'nova.conf', _common(stack))
    for host in layout_mod.COMPUTES:
        ini.write(etc / ('%s.conf' % host), _compute(stack, host))
        for sub in ('instances', 'fb'):
            (stack.layout.data('compute-' + host) / sub).mkdir(
                parents=True, exist_ok=True)


def _manage(stack, *args, name='nova-manage'):
    proc.run(stack.layout, name,
             [stack.layout.bin('nova-manage'), '--config-file',
              _etc(stack) / 'nova.conf', *args], env=stack.venv_env())


def db_sync(stack):
    data = stack.layout.data(NAME)
    data.mkdir(parents=True, exist_ok=True)
    if (data / 'cells-ready').exists():
        return
    _manage(stack, 'api_db', 'sync')
    _manage(stack, 'cell_v2', 'map_cell0', '--database_connection',
            mariadb.url(stack, 'nova_cell0'))
    _manage(stack, 'cell_v2', 'create_cell', '--name', 'cell1', '--verbose')
    _manage(stack, 'db', 'sync')
    (data / 'cells-ready').touch()


def up_control(stack):
    configure(stack)
    db_sync(stack)
    layout = stack.layout
    conf = _etc(stack) / 'nova.conf'
    wsgi.serve(stack, 'nova-api', 'nova.wsgi.osapi_compute:application',
               layout.port(NAME),
               # The first file is the paste deployment, the rest nova's.
               env={'OS_NOVA_CONFIG_FILES': '%s;%s' % (
                   layout.venv / 'etc/nova/api-paste.ini', conf)})


def up_placement_clients(stack):
    """Conductor and scheduler: they need placement answering at start.

    Nova 34's conductor builds its placement client in its constructor and
    exits on "placement ... does not have any supported versions" when the
    catalog names placement before placement answers.
    """
    layout = stack.layout
    conf = _etc(stack) / 'nova.conf'
    for svc in ('conductor', 'scheduler'):
        proc.start(layout, 'nova-' + svc,
                   [layout.bin('nova-' + svc), '--config-file', conf],
                   env=stack.venv_env())


def up_computes(stack):
    layout = stack.layout
    conf = _etc(stack) / 'nova.conf'
    for host in layout_mod.COMPUTES:
        proc.start(layout, 'nova-compute-' + host,
                   [layout.bin('nova-compute'), '--config-file', conf,
                    '--config-file', _etc(stack) / ('%s.conf' % host)],
                   env=stack.venv_env())


def wait(stack):
    wsgi.wait(stack, 'nova-api', stack.layout.url(NAME, '/'))
    for name in NAMES[1:]:
        if not proc.running(stack.layout, name):
            raise proc.ServiceFailed(name, 'the process exited',
                                     proc.log_tail(stack.layout, name))


def discover_hosts(stack):
    _manage(stack, 'cell_v2', 'discover_hosts', '--verbose')


def down(stack):
    for name in reversed(NAMES):
        proc.stop(stack.layout, name)
    # FastBootDriver's storage daemons daemonize (they outlive a
    # nova-compute restart on purpose): stop them through the engine.
    for host in layout_mod.COMPUTES:
        state = stack.layout.data('compute-' + host) / 'fb'
        if (state / 'daemon.pid').exists() and \
                stack.layout.bin('fastboot').exists():
            try:
                proc.run(stack.layout, 'fastboot-shutdown',
                         [stack.layout.bin('fastboot'), '--state-path',
                          state, 'shutdown'], env=stack.venv_env(),
                         timeout=120)
            except proc.ServiceFailed as e:
                print('ministack: fastboot shutdown on %s failed (%s); '
                      'stopping its daemons by pid file' % (host, e))
    # Whatever the engine did not stop (a state it could not load): by
    # pid file.
    for host in layout_mod.COMPUTES:
        fb = stack.layout.data('compute-' + host) / 'fb'
        for pidfile in sorted(fb.glob('**/daemon.pid')):
            proc.stop_daemon(pidfile)
