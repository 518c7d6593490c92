"""The storm's cloud: real OpenStack processes, from ministack's pieces.

Reuses ministack's service modules (MariaDB, RabbitMQ, Keystone, Glance,
Neutron, the Nova database set-up, its venv and process handling) and
adds what a storm needs and ministack does not have: K nova-compute
processes with distinct host names over nova's fake libvirt
(:mod:`gate.stormnova.fakecompute`), placement and Nova restarted with
one configuration profile or another (stock defaults, or the
``fastboot-tune`` profile applied into their files), and no Ceph, Cinder
or libvirtd (see the package docstring for why).

Layout: ``MINISTACK_DIR`` (default ``/var/tmp/ms-storm``),
``MINISTACK_CACHE`` (``/var/tmp/ms-cache-storm``), ``MINISTACK_PORT_BASE``
(36000): a storm never shares a run directory with a ministack.
"""

import json
import os
import shutil
import time

from ministack import ini
from ministack import install
from ministack import layout as layout_mod
from ministack import proc
from ministack.services import glance
from ministack.services import keystone
from ministack.services import mariadb
from ministack.services import neutron
from ministack.services import nova as ms_nova
from ministack.services import rabbitmq
from ministack.services import wsgi
from ministack import stack as stack_mod

DEFAULT_ENV = {'MINISTACK_DIR': '/var/tmp/ms-storm',
               'MINISTACK_CACHE': '/var/tmp/ms-cache-storm',
               'MINISTACK_PORT_BASE': '36000'}
#: Test packages nova's fake libvirt imports (not in ministack's venv).
EXTRA_PACKAGES = ('fixtures', 'testtools', 'wsgi-intercept', 'testresources',
                  'testscenarios', 'oslotest')
CATALOG = (
    ('nova', 'compute', 'nova', '/v2.1'),
    ('placement', 'placement', 'placement', ''),
    ('glance', 'image', 'glance', ''),
    ('neutron', 'network', 'neutron', ''),
)
#: MariaDB's compiled-in default, what "stock" means for the database.
MARIADB_DEFAULT_MAX_CONNECTIONS = 151


def make_stack(environ=None):
    env = dict(DEFAULT_ENV)
    env.update({k: v for k, v in (environ or os.environ).items()
                if k in DEFAULT_ENV})
    return stack_mod.Stack(layout_mod.Layout.from_env(env))


def host_names(count):
    return ['storm-c%d' % (i + 1) for i in range(count)]


def _venv_python(stack, name, module, *args, env=None):
    full_env = stack.venv_env()
    full_env['PYTHONPATH'] = str(layout_mod.REPO)
    full_env.update(env or {})
    proc.run(stack.layout, name,
             [stack.layout.bin('python'), '-m', module, *args],
             env=full_env)


def _step(label, started):
    print('storm: %-30s %6.1f s' % (label, time.monotonic() - started),
          flush=True)


def up_base(stack):
    """Everything that does not change between profiles."""
    started = time.monotonic()
    layout = stack.layout
    layout.make_dirs()
    install.ensure(layout)
    marker = layout.venv / '.storm-extra'
    if not marker.exists():
        proc.run(layout, 'install', [layout.bin('pip'), 'install', '--quiet',
                                     *EXTRA_PACKAGES])
        marker.touch()
    _step('venv', started)
    mariadb.up(stack)
    rabbitmq.up(stack)
    keystone.up(stack)
    _step('mariadb, keystone', started)
    spec = {
        'auth_url': stack.keystone_url(), 'password': stack.password,
        'region': stack.region,
        'service_users': ['nova', 'placement', 'glance', 'neutron'],
        'services': [{'name': n, 'type': t, 'url': layout.url(p, path)}
                     for n, t, p, path in CATALOG]}
    path = layout.etc / 'catalog.json'
    path.write_text(json.dumps(spec))
    path.chmod(0o600)
    # Tens of slow Keystone calls: while the others migrate and start.
    catalog = proc.spawn(layout, 'catalog', [
        layout.bin('python'), '-m', 'ministack.catalog', path],
        env=dict(stack.venv_env(), PYTHONPATH=str(layout_mod.REPO)))
    glance.up(stack)
    neutron.up(stack)
    # ministack's db_sync reads etc/nova/nova.conf.
    (layout.etc / 'nova').mkdir(parents=True, exist_ok=True)
    ini.write(layout.etc / 'nova' / 'nova.conf', _nova_common(stack))
    ms_nova.db_sync(stack)
    proc.finish(layout, 'catalog', catalog)
    _step('catalog', started)
    rabbitmq.wait(stack)
    glance.wait(stack)
    neutron.wait(stack)
    _venv_python(stack, 'probe', 'ministack.probe', 'warm-neutron',
                 env=stack.openrc('admin'))
    _step('rabbitmq, glance, neutron, nova db', started)


# -- the profile-dependent part: placement and Nova ---------------------------

def etc(stack):
    path = stack.layout.etc / 'storm'
    path.mkdir(parents=True, exist_ok=True)
    return path


def _nova_common(stack):
    sections = ms_nova._common(stack)  # noqa: SLF001 - ministack's base
    sections['DEFAULT'].update({
        # Room for hundreds of tiny servers on a few fake hypervisors.
        'cpu_allocation_ratio': 16.0, 'ram_allocation_ratio': 16.0,
        'disk_allocation_ratio': 16.0,
    })
    # Quotas are an operator's policy, not a limit under test: unlimited
    # in both profiles, so the storm measures the control plane.
    sections['quota'] = {'instances': -1, 'cores': -1, 'ram': -1}
    # No consumer of notifications runs here: they would pile up in
    # RabbitMQ and hide the RPC queues' depth.
    sections['oslo_messaging_notifications'] = {'driver': 'noop'}
    sections['notifications'] = {}
    sections['filter_scheduler'] = {'host_subset_size': 1}
    return sections


def _compute(stack, host):
    base = stack.layout.data('storm-' + host)
    conf_dir = etc(stack)
    helper = '%s --config-file %s --config-file %s' % (
        stack.layout.bin('privsep-helper'), conf_dir / 'nova.conf',
        conf_dir / ('nova-compute-%s.conf' % host))
    sections = {s: {'helper_command': helper}
                for s in ms_nova.PRIVSEP_SECTIONS}
    sections.update({
        'DEFAULT': {'host': host,
                    'compute_driver': 'fastboot.driver.FastBootDriver',
                    'state_path': base, 'instances_path': base / 'instances',
                    'reserved_host_memory_mb': 0,
                    'heal_instance_info_cache_interval': -1},
        'libvirt': {'virt_type': 'qemu', 'cpu_mode': 'none'},
        'fastboot': {'state_path': base / 'fb'},
    })
    return sections


def configure(stack, computes):
    """Write stock configs; return the files a profile may be applied to."""
    conf_dir = etc(stack)
    files = {'nova': ini.write(conf_dir / 'nova.conf', _nova_common(stack))}
    files['placement'] = ini.write(conf_dir / 'placement.conf', {
        'DEFAULT': {'debug': False},
        'api': {'auth_strategy': 'keystone'},
        'placement_database': {'connection': mariadb.url(stack,
                                                         'placement')},
        'keystone_authtoken': stack.authtoken_section('placement'),
    })
    # The MariaDB server settings, as an operator's my.cnf: the running
    # server takes max_connections from it (SET GLOBAL, see
    # :func:`apply_mariadb`).
    files['mariadb'] = conf_dir / 'storm-my.cnf'
    files['mariadb'].write_text('[mysqld]\nmax_connections = %d\n'
                                % MARIADB_DEFAULT_MAX_CONNECTIONS)
    for host in computes:
        data = stack.layout.data('storm-' + host)
        for sub in ('instances', 'fb'):
            (data / sub).mkdir(parents=True, exist_ok=True)
        files['nova-cpu:' + host] = ini.write(
            conf_dir / ('nova-compute-%s.conf' % host), _compute(stack, host))
    return files


def apply_mariadb(stack, mycnf):
    """Make the running MariaDB use max_connections from ``mycnf``."""
    value = MARIADB_DEFAULT_MAX_CONNECTIONS
    for line in mycnf.read_text().splitlines():
        key, sep, val = line.partition('=')
        if sep and key.strip().replace('-', '_') == 'max_connections':
            value = int(val.split('#')[0].strip())
    mariadb.client(stack, 'SET GLOBAL max_connections = %d' % value)
    return value


def nova_names(computes):
    return ['nova-api', 'nova-conductor', 'nova-scheduler'] + [
        'nova-compute-' + h for h in computes]


def start_control(stack, computes):
    layout = stack.layout
    conf_dir = etc(stack)
    proc.run(layout, 'placement-manage',
             [layout.bin('placement-manage'), '--config-file',
              conf_dir / 'placement.conf', 'db', 'sync'],
             env=stack.venv_env())
    placement_dir = conf_dir / 'placement'
    placement_dir.mkdir(exist_ok=True)
    shutil.copy(conf_dir / 'placement.conf', placement_dir / 'placement.conf')
    wsgi.serve(stack, 'placement', 'placement.wsgi.api:application',
               layout.port('placement'),
               env={'OS_PLACEMENT_CONFIG_DIR': str(placement_dir)})
    conf = conf_dir / 'nova.conf'
    wsgi.serve(stack, 'nova-api', 'nova.wsgi.osapi_compute:application',
               layout.port('nova'),
               env={'OS_NOVA_CONFIG_FILES': '%s;%s' % (
                   layout.venv / 'etc/nova/api-paste.ini', conf)})
    for svc in ('conductor', 'scheduler'):
        proc.start(layout, 'nova-' + svc,
                   [layout.bin('nova-' + svc), '--config-file', conf],
                   env=stack.venv_env())
    env = stack.venv_env()
    env['PYTHONPATH'] = str(layout_mod.REPO)
    for host in computes:
        proc.start(layout, 'nova-compute-' + host,
                   [layout.bin('python'), '-m', 'gate.stormnova.fakecompute',
                    '--config-file', conf, '--config-file',
                    conf_dir / ('nova-compute-%s.conf' % host)], env=env)
    wsgi.wait(stack, 'placement', layout.url('placement', '/'))
    wsgi.wait(stack, 'nova-api', layout.url('nova', '/'))


def discover_hosts(stack):
    proc.run(stack.layout, 'nova-manage',
             [stack.layout.bin('nova-manage'), '--config-file',
              etc(stack) / 'nova.conf', 'cell_v2', 'discover_hosts'],
             env=stack.venv_env())


def stop_control(stack, computes):
    for name in reversed(['placement'] + nova_names(computes)):
        proc.stop(stack.layout, name)


def service_pids(stack, computes):
    """name -> pid of every process whose CPU the storm reports."""
    names = (['mariadb', 'rabbitmq', 'keystone', 'placement', 'glance',
              'neutron'] + nova_names(computes))
    return {n: proc.running(stack.layout, n) for n in names}


def down(stack, computes, keep=False):
    stop_control(stack, computes)
    for svc in (neutron, glance, keystone, rabbitmq, mariadb):
        svc.down(stack)
    left = [n for n in ['placement', 'glance', 'neutron', 'keystone',
                        'rabbitmq', 'epmd', 'mariadb'] + nova_names(computes)
            if proc.running(stack.layout, n)]
    if not keep and not left:
        shutil.rmtree(stack.layout.run_dir, ignore_errors=True)
    return left
