"""my.cnf ``[mysqld]``: connections and files for the summed pools."""

from fastboot_nova.tuning import assumptions as a
from fastboot_nova.tuning import setting as s


def open_files(max_connections):
    """MariaDB's own rule: 10 + max_connections + 2 x table_open_cache."""
    return 10 + max_connections + 2 * a.TABLE_OPEN_CACHE


def settings(inputs, db):
    files = open_files(db.max_connections)
    return [
        s.Setting('mariadb', 'mysqld', 'max_connections', db.max_connections,
                  s.AT_LEAST, 151,
                  'every pool of every process may be full at once '
                  '("(1040) Too many connections" otherwise)',
                  db.describe() if inputs.db_max_connections is None
                  else 'given (--db-max-connections); needs %d' % db.needed),
        s.Setting('mariadb', 'mysqld', 'open_files_limit', files,
                  s.AT_LEAST, None,
                  'one descriptor per connection plus two per cached '
                  'table; mariadbd asks for this at start',
                  '10 + max_connections + 2 x table_open_cache %d'
                  % a.TABLE_OPEN_CACHE),
        s.Setting('mariadb', 'mysqld', 'max_connect_errors', 10000,
                  s.AT_LEAST, 100,
                  'every service connects from a few hosts; a burst of '
                  'aborted connections must not block a whole host',
                  '10000'),
        s.Setting('system', None, 'mariadb LimitNOFILE', files,
                  s.AT_LEAST, None,
                  'the service manager caps open_files_limit (Debian: '
                  '32768)', 'open_files_limit'),
    ]
