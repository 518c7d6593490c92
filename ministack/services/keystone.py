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


def _manage_argv(stack, *args):
    return [stack.layout.bin('keystone-manage'), '--config-file',
            _conf(stack), *args]


def up(stack):
    """Keys, schema, server, bootstrap: overlapped where independent.

    The key repositories need no database, and the server needs the
    schema and the keys but not the bootstrap's rows until a request
    comes; each keystone-manage costs seconds of imports, so they run
    side by side (one log per command).
    """
    configure(stack)
    layout = stack.layout
    data = layout.data(NAME)
    env = stack.venv_env()
    bootstrap = None
    if not (data / 'bootstrapped').exists():
        keys = [(name, proc.spawn(layout, name, _manage_argv(
                    stack, cmd, '--keystone-user', 'root',
                    '--keystone-group', 'root'), env=env))
                for name, cmd in (('keystone-fernet', 'fernet_setup'),
                                  ('keystone-credential',
                                   'credential_setup'))]
        proc.run(layout, NAME + '-manage',
                 _manage_argv(stack, 'db_sync'), env=env)
        for name, popen in keys:
            proc.finish(layout, name, popen)
        url = stack.keystone_url()
        bootstrap = proc.spawn(layout, NAME + '-manage', _manage_argv(
            stack, 'bootstrap', '--bootstrap-password', stack.password,
            '--bootstrap-admin-url', url, '--bootstrap-public-url', url,
            '--bootstrap-internal-url', url,
            '--bootstrap-region-id', stack.region), env=env)
    wsgi.serve(stack, NAME, 'keystone.wsgi.api:application',
               layout.port(NAME),
               env={'OS_KEYSTONE_CONFIG_FILES': str(_conf(stack))})
    if bootstrap is not None:
        proc.finish(layout, NAME + '-manage', bootstrap)
        (data / 'bootstrapped').touch()
    wsgi.wait(stack, NAME, stack.keystone_url())


def down(stack):
    proc.stop(stack.layout, NAME)
