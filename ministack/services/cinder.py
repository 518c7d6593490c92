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
from ministack.services import mariadb
from ministack.services import rabbitmq
from ministack.services import wsgi

NAME = 'cinder'
NAMES = ('cinder-api', 'cinder-scheduler', 'cinder-volume')
BACKEND = 'ceph'
MULTIATTACH_TYPE = 'fastboot-multiattach'


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
            'enabled_backends': BACKEND,
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
        BACKEND: {
            'volume_driver': 'cinder.volume.drivers.rbd.RBDDriver',
            'volume_backend_name': BACKEND,
            'rbd_pool': ceph.POOL,
            'rbd_ceph_conf': ceph.conf_path(layout),
            'rbd_user': ceph.CINDER_USER,
            'rbd_flatten_volume_from_snapshot': False,
            'report_discard_supported': True,
        },
    })


def up(stack):
    """Migrate and start the three services (the api in the background)."""
    configure(stack)
    layout = stack.layout
    conf = conf_path(stack)
    env = stack.venv_env()
    proc.run(layout, 'cinder-manage',
             [layout.bin('cinder-manage'), '--config-file', conf,
              'db', 'sync'], env=env)
    wsgi.serve(stack, 'cinder-api', 'cinder.wsgi.api:application',
               layout.port(NAME),
               env={'MINISTACK_WSGI_ARGV': json.dumps(
                   ['--config-file', str(conf)])})
    for svc in ('scheduler', 'volume'):
        proc.start(layout, 'cinder-' + svc,
                   [layout.bin('cinder-' + svc), '--config-file', conf],
                   env=env)


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
