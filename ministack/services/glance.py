"""Glance with the file store under the run directory."""

from ministack import ini
from ministack import proc
from ministack.services import mariadb
from ministack.services import wsgi

NAME = 'glance'
NAMES = (NAME,)


def up(stack):
    layout = stack.layout
    etc = layout.etc / NAME
    etc.mkdir(parents=True, exist_ok=True)
    data = layout.data(NAME)
    for sub in ('images', 'staging', 'tasks'):
        (data / sub).mkdir(parents=True, exist_ok=True)
    ini.write(etc / 'glance-api.conf', {
        'DEFAULT': {'debug': False, 'enabled_backends': 'file:file',
                    'worker_self_reference_url': layout.url(NAME)},
        'glance_store': {'default_backend': 'file'},
        'file': {'filesystem_store_datadir': data / 'images'},
        'os_glance_staging_store': {
            'filesystem_store_datadir': data / 'staging'},
        'os_glance_tasks_store': {
            'filesystem_store_datadir': data / 'tasks'},
        'database': {'connection': mariadb.url(stack, NAME)},
        'keystone_authtoken': stack.authtoken_section('glance'),
        'paste_deploy': {
            'flavor': 'keystone',
            'config_file': layout.venv / 'etc/glance/glance-api-paste.ini'},
    })
    proc.run(layout, NAME + '-manage',
             [layout.bin('glance-manage'), '--config-file',
              etc / 'glance-api.conf', 'db_sync'], env=stack.venv_env())
    wsgi.serve(stack, NAME, 'glance.wsgi.api:application', layout.port(NAME),
               env={'OS_GLANCE_CONFIG_DIR': str(etc)})


def wait(stack):
    wsgi.wait(stack, NAME, stack.layout.url(NAME, '/'))


def down(stack):
    proc.stop(stack.layout, NAME)
