"""Placement under gunicorn, on its own database."""

from ministack import ini
from ministack import proc
from ministack.services import mariadb
from ministack.services import wsgi

NAME = 'placement'
NAMES = (NAME,)


def up(stack):
    etc = stack.layout.etc / NAME
    etc.mkdir(parents=True, exist_ok=True)
    ini.write(etc / 'placement.conf', {
        'DEFAULT': {'debug': False},
        'api': {'auth_strategy': 'keystone'},
        'placement_database': {'connection': mariadb.url(stack, NAME)},
        'keystone_authtoken': stack.authtoken_section('placement'),
    })
    env = {'OS_PLACEMENT_CONFIG_DIR': str(etc)}
    proc.run(stack.layout, NAME + '-manage',
             [stack.layout.bin('placement-manage'), '--config-file',
              etc / 'placement.conf', 'db', 'sync'], env=stack.venv_env())
    wsgi.serve(stack, NAME, 'placement.wsgi.api:application',
               stack.layout.port(NAME), env=env)


def wait(stack):
    wsgi.wait(stack, NAME, stack.layout.url(NAME, '/'))


def down(stack):
    proc.stop(stack.layout, NAME)
