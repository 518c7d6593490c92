"""``fastboot-coordinator-manage``: database administration.

``fastboot-coordinator-manage [--config-file F] db sync`` migrates the
database to the latest schema; ``db version`` prints where it is.

``host reset-token HOST [--owner USER_ID]`` re-issues a host's token (the
old one stops working) and prints the new one, once: put it in the host's
``STATE_PATH/coordinator-token`` (mode 0600). That is how an operator gives
a name back to the right host after a squat or a lost token. ``--owner``
(keystone) gives the host to that user.
"""

import sys

from oslo_config import cfg

from fastboot_nova.coordinator import auth
from fastboot_nova.coordinator import config
from fastboot_nova.coordinator import context
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator import exception


def _db_sync(conf):
    db = db_api.Database(conf)
    migration.upgrade(db.get_engine(), conf.command.revision)
    print('Database at %s' % migration.current(db.get_engine()))
    return 0


def _db_version(conf):
    db = db_api.Database(conf)
    print(migration.current(db.get_engine()) or 'None')
    return 0


def _host_reset_token(conf):
    db = db_api.Database(conf)
    try:
        owner = conf.command.owner or False
        token = auth.reissue(db, context.admin_context(), conf.command.host,
                             owner=owner)
    except exception.HostNotFound as e:
        print(e.msg, file=sys.stderr)
        return 1
    finally:
        db.dispose()
    print(token)
    return 0


def _add_commands(subparsers):
    db = subparsers.add_parser('db', help='Database schema')
    db_sub = db.add_subparsers(dest='db_command')
    sync = db_sub.add_parser('sync', help='Migrate to the latest schema')
    sync.add_argument('revision', nargs='?', default='head')
    sync.set_defaults(func=_db_sync)
    version = db_sub.add_parser('version', help='Show the schema revision')
    version.set_defaults(func=_db_version)
    host = subparsers.add_parser('host', help='Registered hosts')
    host_sub = host.add_subparsers(dest='host_command')
    reset = host_sub.add_parser(
        'reset-token', help='Re-issue the token of a host and print it')
    reset.add_argument('host')
    reset.add_argument('--owner', default=None,
                       help='keystone: the user id the host belongs to')
    reset.set_defaults(func=_host_reset_token)


def main(argv=None):
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(cfg.SubCommandOpt('command', handler=_add_commands,
                                            title='Commands'))
    config.parse_args(sys.argv[1:] if argv is None else argv, conf=conf,
                      prog='fastboot-coordinator-manage')
    func = getattr(conf.command, 'func', None)
    if func is None:
        print('usage: fastboot-coordinator-manage db {sync,version} | '
              'host reset-token HOST', file=sys.stderr)
        return 2
    return func(conf)


if __name__ == '__main__':
    sys.exit(main())
