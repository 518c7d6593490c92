"""Cinder: api (gunicorn), scheduler and volume with the RBD driver.

The volume backend is the userspace Ceph of ``ministack.services.ceph``
(pool ``volumes``, client ``cinder``, whose keyring ceph.conf names), so
volumes, snapshots and clones are real RBD images and an attachment's
connection_info is what an operator's Cinder returns for Ceph. A volume
type ``fastboot-multiattach`` (``multiattach="<is> True"``) is made by
``ministack.volume_setup`` once cinder-volume reports up.
"""

import json

from ministack import ini
from ministack import layout as layout_mod
from ministack import proc
from ministack.services import ceph
from ministack.services import libvirt
from ministack.services import mariadb
from ministack.services import rabbitmq
from ministack.services import wsgi

NAME = 'cinder'
NAMES = ('cinder-api', 'cinder-scheduler', 'cinder-volume')
BACKEND = 'ceph'
MULTIATTACH_TYPE = 'fastboot-multiattach'
#: A second backend on the same pool that flattens every volume made
#: from a snapshot (a full copy, what LVM/iSCSI and most SANs do): the
#: stock comparison's expensive case, beside the default RBD clones.
FLATTEN_BACKEND = 'ceph-flatten'
#: Volume type -> backend of the stock comparison (ministack.scenarios).
STOCK_TYPES = {'ms-stock-clone': BACKEND,
               'ms-stock-flatten': FLATTEN_BACKEND}


def conf_path(stack):
    return stack.layout.etc / NAME / 'cinder.conf'


def configure(stack):
    layout = stack.layout
    etc = layout.etc / NAME
    etc.mkdir(parents=True, exist_ok=True)
    data = layout.data(NAME)
    (data / 'lock').mkdir(parents=True, exist_ok=True)
    venv_etc = layout.venv / 'etc' / 'cinder'
    ini.write(conf_path(stack), {
        'DEFAULT': {
            'debug': False, 'transport_url': rabbitmq.url(stack),
            'my_ip': '127.0.0.1', 'host': 'ms-cinder',
            'state_path': data, 'auth_strategy': 'keystone',
            'enabled_backends': '%s,%s' % (BACKEND, FLATTEN_BACKEND),
            'default_volume_type': '__DEFAULT__',
            'api_paste_config': venv_etc / 'api-paste.ini',
            'rootwrap_config': venv_etc / 'rootwrap.conf',
            # The wheel's copy; the default path is /etc/cinder.
            'resource_query_filters_file': venv_etc / 'resource_filters.json',
            'osapi_volume_workers': 1,
        },
        'database': {'connection': mariadb.url(stack, NAME)},
        'keystone_authtoken': stack.authtoken_section('cinder'),
        'service_user': dict(stack.auth_section('cinder'),
                             send_service_user_token=True),
        # Deleting an attachment that names a server asks Nova.
        'nova': dict(stack.auth_section('nova'), interface='public'),
        'oslo_concurrency': {'lock_path': data / 'lock'},
        'oslo_messaging_notifications': {'driver': 'noop'},
        BACKEND: _rbd_backend(stack, BACKEND, flatten=False),
        FLATTEN_BACKEND: _rbd_backend(stack, FLATTEN_BACKEND, flatten=True),
    })


def _rbd_backend(stack, name, flatten):
    return {
        'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver',
        'volume_backend_name': name,
        'rbd_pool': ceph.POOL,
        'rbd_ceph_conf': ceph.conf_path(stack.layout),
        'rbd_user': ceph.CINDER_USER,
        # In the connection_info Nova hands libvirt (the computes define
        # this secret: ministack.services.libvirt.define_rbd_secret).
        'rbd_secret_uuid': libvirt.rbd_secret_uuid(stack),
        'rbd_flatten_volume_from_snapshot': flatten,
        'report_discard_supported': True,
    }


def up(stack):
    """Migrate and start the three services (the api in the background)."""
    configure(stack)
    layout = stack.layout
    conf = conf_path(stack)
    proc.run(layout, 'cinder-manage',
             [layout.bin('cinder-manage'), '--config-file', conf,
              'db', 'sync'], env=stack.venv_env())
    wsgi.serve(stack, 'cinder-api', 'cinder.wsgi.api:application',
               layout.port(NAME),
               env={'MINISTACK_WSGI_ARGV': json.dumps(
                   ['--config-file', str(conf)])})
    start_daemons(stack)


def start_daemons(stack):
    """Start cinder-scheduler and cinder-volume unless they run."""
    layout = stack.layout
    conf = conf_path(stack)
    for svc in ('scheduler', 'volume'):
        proc.start(layout, 'cinder-' + svc,
                   [layout.bin('cinder-' + svc), '--config-file', conf],
                   env=stack.venv_env())


def wait(stack):
    wsgi.wait(stack, 'cinder-api', stack.layout.url(NAME, '/'))
    for name in NAMES[1:]:
        if not proc.running(stack.layout, name):
            raise proc.ServiceFailed(name, 'the process exited',
                                     proc.log_tail(stack.layout, name))


def setup_env(stack):
    """Environment of ``ministack.volume_setup`` (admin, the venv)."""
    env = stack.venv_env()
    env.update(stack.openrc('admin'))
    env['PYTHONPATH'] = str(layout_mod.REPO)
    return env


def down(stack):
    for name in reversed(NAMES):
        proc.stop(stack.layout, name)
