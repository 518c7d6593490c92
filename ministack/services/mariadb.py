"""MariaDB on 127.0.0.1 with a private datadir; one database per service.

Debian's packaged start is blocked here (no systemd), and a system MariaDB
may already hold 3306: mariadbd runs by hand with ``--no-defaults``.
"""

import shutil

from ministack import proc

NAME = 'mariadb'
NAMES = (NAME,)
DATABASES = ('keystone', 'glance', 'placement', 'nova_api', 'nova',
             'nova_cell0', 'neutron', 'cinder', 'fastboot')


def _socket(stack):
    return stack.layout.data(NAME) / 'mariadbd.sock'


def client(stack, sql):
    proc.run(stack.layout, NAME + '-client',
             ['mariadb', '--no-defaults', '--protocol=socket',
              '--socket=%s' % _socket(stack), '-uroot', '-e', sql])


def url(stack, database):
    return 'mysql+pymysql://%s:%s@127.0.0.1:%d/%s?charset=utf8' % (
        stack.db_user, stack.password, stack.layout.port(NAME), database)


def up(stack):
    layout = stack.layout
    data = layout.data(NAME)
    if not (data / 'db' / 'mysql').is_dir():
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        proc.run(layout, NAME, [
            'mariadb-install-db', '--no-defaults', '--user=root',
            '--datadir=%s' % (data / 'db'),
            '--auth-root-authentication-method=socket', '--skip-test-db'])
    proc.start(layout, NAME, [
        'mariadbd', '--no-defaults', '--user=root',
        '--datadir=%s' % (data / 'db'), '--socket=%s' % _socket(stack),
        '--port=%d' % layout.port(NAME), '--bind-address=127.0.0.1',
        '--skip-name-resolve', '--max-connections=1000',
        '--innodb-buffer-pool-size=128M',
        '--log-error=%s' % (data / 'error.log'),
        '--pid-file=%s' % (data / 'mariadbd.pid')])
    proc.wait(layout, NAME, proc.port_open(layout.port(NAME)), timeout=60)
    stmts = ["CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'"
             % (stack.db_user, stack.password)]
    for db in DATABASES:
        stmts.append('CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4'
                     % db)
        stmts.append("GRANT ALL ON %s.* TO '%s'@'127.0.0.1'"
                     % (db, stack.db_user))
    client(stack, '; '.join(stmts))


def down(stack):
    proc.stop(stack.layout, NAME)
