"""Keystone with fernet tokens, bootstrapped, and the catalog of the stack.

``keystone-manage bootstrap`` makes the admin user, project, roles and
Keystone's own endpoint; everything else (service users, the demo project
and user, the other services' endpoints) is made by ``ministack.catalog``
in one Python process through keystoneauth: one token, no CLI start-up
per object.
"""

from ministack import ini
from ministack import proc
from ministack.services import mariadb
from ministack.services import wsgi

NAME = 'keystone'
NAMES = (NAME,)


def _conf(stack):
    return stack.layout.etc / 'keystone.conf'


def configure(stack):
    data = stack.layout.data(NAME)
    data.mkdir(parents=True, exist_ok=True)
    ini.write(_conf(stack), {
        'DEFAULT': {'log_file': None, 'debug': False},
        'database': {'connection': mariadb.url(stack, 'keystone')},
        'token': {'provider': 'fernet'},
        'fernet_tokens': {'key_repository': data / 'fernet-keys'},
        'credential': {'key_repository': data / 'credential-keys'},
        'cache': {'enabled': False},
    })


def _manage(stack, *args):
    proc.run(stack.layout, NAME + '-manage',
             [stack.layout.bin('keystone-manage'), '--config-file',
              _conf(stack), *args], env=stack.venv_env())


def up(stack):
    configure(stack)
    data = stack.layout.data(NAME)
    if not (data / 'bootstrapped').exists():
        _manage(stack, 'db_sync')
        _manage(stack, 'fernet_setup', '--keystone-user', 'root',
                '--keystone-group', 'root')
        _manage(stack, 'credential_setup', '--keystone-user', 'root',
                '--keystone-group', 'root')
        url = stack.keystone_url()
        _manage(stack, 'bootstrap', '--bootstrap-password', stack.password,
                '--bootstrap-admin-url', url, '--bootstrap-public-url', url,
                '--bootstrap-internal-url', url,
                '--bootstrap-region-id', stack.region)
        (data / 'bootstrapped').touch()
    wsgi.serve(stack, NAME, 'keystone.wsgi.api:application',
               stack.layout.port(NAME),
               env={'OS_KEYSTONE_CONFIG_FILES': str(_conf(stack))})
    wsgi.wait(stack, NAME, stack.keystone_url())


def down(stack):
    proc.stop(stack.layout, NAME)
