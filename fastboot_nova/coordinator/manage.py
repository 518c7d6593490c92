"""``fastboot-coordinator-manage``: database administration.

``fastboot-coordinator-manage [--config-file F] db sync`` migrates the
database to the latest schema; ``db version`` prints where it is.
"""

import sys

from oslo_config import cfg

from fastboot_nova.coordinator import config
from fastboot_nova.coordinator.db import api as db_api
from fastboot_nova.coordinator.db import migration


def _db_sync(conf):
    db = db_api.Database(conf)
    migration.upgrade(db.get_engine(), conf.command.revision)
    print('Database at %s' % migration.current(db.get_engine()))
    return 0


def _db_version(conf):
    db = db_api.Database(conf)
    print(migration.current(db.get_engine()) or 'None')
    return 0


def _add_commands(subparsers):
    db = subparsers.add_parser('db', help='Database schema')
    db_sub = db.add_subparsers(dest='db_command')
    sync = db_sub.add_parser('sync', help='Migrate to the latest schema')
    sync.add_argument('revision', nargs='?', default='head')
    sync.set_defaults(func=_db_sync)
    version = db_sub.add_parser('version', help='Show the schema revision')
    version.set_defaults(func=_db_version)


def main(argv=None):
    conf = cfg.ConfigOpts()
    conf.register_cli_opt(cfg.SubCommandOpt('command', handler=_add_commands,
                                            title='Commands'))
    config.parse_args(sys.argv[1:] if argv is None else argv, conf=conf,
                      prog='fastboot-coordinator-manage')
    func = getattr(conf.command, 'func', None)
    if func is None:
        print('usage: fastboot-coordinator-manage db {sync,version}',
              file=sys.stderr)
        return 2
    return func(conf)


if __name__ == '__main__':
    sys.exit(main())
