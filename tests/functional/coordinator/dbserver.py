"""The coordinator's tests on a database server: MySQL/MariaDB, PostgreSQL.

A backend runs when its environment variable names a server URL whose
user may create databases called ``openstack_citest*`` (what
``tools/start-mariadb.sh`` and ``tools/start-postgresql.sh`` start and
print; ``tox -e functional-mysql`` and ``tox -e functional-postgresql`` do
both). Each test gets a fresh database, dropped at its end. Without the
variable the tests skip, or fail when the backend's REQUIRE variable is 1
(set by the tox environments, so that a CI job that lost its server does
not pass by skipping everything).

test_mysql and test_postgresql combine :class:`ServerMixin` (and the
mixins of shared tests below) with the SQLite test cases of test_api,
test_replicas and test_processes, so the same tests run on every backend.
"""

import dataclasses
import os
import threading
import uuid

import fixtures
from oslotest import base as oslotest_base
import sqlalchemy as sa

from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator import deploy
from fastboot_nova.coordinator import exception


@dataclasses.dataclass(frozen=True)
class Backend:
    #: SQLAlchemy dialect name.
    dialect: str
    url_env: str
    require_env: str
    example: str
    script: str
    tox_env: str

    def howto(self):
        return ('set %s to a URL whose user may create databases named '
                'openstack_citest*, e.g. %s as printed by `bash %s` (as '
                'root), or run `tox -e %s`' % (
                    self.url_env, self.example, self.script, self.tox_env))

    def quote(self, name):
        return '`%s`' % name if self.dialect == 'mysql' else '"%s"' % name


MYSQL = Backend(
    dialect='mysql', url_env='FASTBOOT_MYSQL_URL',
    require_env='FASTBOOT_REQUIRE_MYSQL',
    example='mysql+pymysql://openstack_citest:openstack_citest@'
            '127.0.0.1:13306/',
    script='tools/start-mariadb.sh', tox_env='functional-mysql')

POSTGRESQL = Backend(
    dialect='postgresql', url_env='FASTBOOT_POSTGRESQL_URL',
    require_env='FASTBOOT_REQUIRE_POSTGRESQL',
    example='postgresql+psycopg2://openstack_citest:openstack_citest@'
            '127.0.0.1:15432/openstack_citest',
    script='tools/start-postgresql.sh', tox_env='functional-postgresql')


def server_url(testcase, backend):
    """The server URL, or skip (fail when the backend is required)."""
    url = os.environ.get(backend.url_env)
    if url:
        return url
    if os.environ.get(backend.require_env) == '1':
        testcase.fail('%s=1 but %s is unset: %s' % (
            backend.require_env, backend.url_env, backend.howto()))
    testcase.skipTest('%s tests: %s' % (backend.dialect, backend.howto()))


class ServerDatabase(fixtures.Fixture):
    """A new, empty database on the server; dropped at cleanup.

    ``url`` is its URL (with the password, for oslo.db's [database]
    connection).

    :param create_options: SQL appended to CREATE DATABASE, e.g. a
        character set that is not the one the tables must get.
    """

    def __init__(self, backend, server_url, create_options=None):
        super().__init__()
        self.backend = backend
        self.server_url = sa.engine.make_url(server_url)
        if create_options is None and backend.dialect == 'mysql':
            create_options = 'CHARACTER SET utf8mb4'
        self.create_options = create_options

    def _setUp(self):
        self.name = 'openstack_citest_%s' % uuid.uuid4().hex[:12]
        admin_url = self.server_url
        if self.backend.dialect == 'mysql':
            admin_url = admin_url.set(database='')
        # CREATE/DROP DATABASE cannot run in a PostgreSQL transaction.
        admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool,
                                 isolation_level='AUTOCOMMIT')
        self.addCleanup(admin.dispose)
        sql = 'CREATE DATABASE %s' % self.backend.quote(self.name)
        if self.create_options:
            sql += ' ' + self.create_options
        with admin.connect() as conn:
            conn.exec_driver_sql(sql)
        self.addCleanup(self._drop, admin)
        self.url = self.server_url.set(database=self.name).render_as_string(
            hide_password=False)

    def _drop(self, admin):
        sql = 'DROP DATABASE IF EXISTS %s' % self.backend.quote(self.name)
        if self.backend.dialect == 'postgresql':
            # Connections of killed coordinator processes may linger.
            sql += ' WITH (FORCE)'
        with admin.connect() as conn:
            conn.exec_driver_sql(sql)


class ServerMixin:
    """Puts a coordinator test case's database on ``backend``."""

    backend = None

    def setUp(self):
        self.db_server = server_url(self, self.backend)
        self.server_db = self.useFixture(ServerDatabase(self.backend,
                                                        self.db_server))
        super().setUp()

    def database_connection(self):
        return self.server_db.url

    def make_conf(self, **overrides):
        overrides.setdefault('database.connection',
                             self.database_connection())
        return super().make_conf(**overrides)

    def query(self, sql, **params):
        engine = sa.create_engine(self.server_db.url,
                                  poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).all()
        finally:
            engine.dispose()


# -- tests shared by the backends -----------------------------------------

class MigrationsSyncMixin:
    """For test_migrations.TestModelsMigrationsSync, on the server."""

    backend = None

    def setUp(self):
        oslotest_base.BaseTestCase.setUp(self)
        self.db_server = server_url(self, self.backend)
        self.server_db = self.useFixture(ServerDatabase(self.backend,
                                                        self.db_server))
        self.engine = sa.create_engine(self.server_db.url)
        self.addCleanup(self.engine.dispose)

    def test_dialect(self):
        self.assertEqual(self.backend.dialect, self.engine.dialect.name)

    def test_check_constraint_enforced(self):
        # MariaDB >= 10.2 enforces CHECK (MySQL only from 8.0.16).
        migration.upgrade(self.engine)
        with self.engine.connect() as conn:
            self.assertRaises(
                sa.exc.DBAPIError, conn.exec_driver_sql,
                "INSERT INTO hosts (name, address, state, heartbeat_at, "
                "created_at) VALUES ('h', 'a', 'bogus', CURRENT_TIMESTAMP, "
                "CURRENT_TIMESTAMP)")

    def test_timestamps_keep_microseconds(self):
        migration.upgrade(self.engine)
        columns = {c['name']: c['type'] for c in
                   sa.inspect(self.engine).get_columns('hosts')}
        for name in ('heartbeat_at', 'created_at', 'updated_at'):
            # MySQL DATETIME(6), PostgreSQL TIMESTAMP (precision 6).
            precision = getattr(columns[name], 'fsp', None) or getattr(
                columns[name], 'precision', None)
            self.assertIn(precision, (None, 6) if self.backend.dialect ==
                          'postgresql' else (6,), (name, columns[name]))


class HostsMixin:
    """For test_api.TestHosts."""

    def test_token_stored_hashed(self):
        token = self.client.register('h1').json['host']['token']
        (stored,), = self.query('SELECT token_hash FROM hosts')
        self.assertEqual(64, len(stored))
        self.assertNotEqual(token, stored)
        self.assertNotIn(token, stored)


class AuthMixin:
    """For test_api.TestAuth."""

    def test_refuses_unmigrated_database(self):
        other = self.useFixture(ServerDatabase(self.backend,
                                               self.db_server))
        conf = self.make_conf(**{'database.connection': other.url})
        err = self.assertRaises(exception.ConfigurationError,
                                deploy.make_app, conf)
        self.assertIn('db sync', str(err))


class SpecificsMixin:
    """What only a server database shows; with base.CoordinatorTestCase."""

    def test_no_sqlite_begin_immediate_hook(self):
        # db/api.py's _serialize_sqlite emits BEGIN IMMEDIATE, which is
        # not MySQL nor PostgreSQL; it must only be installed on SQLite.
        engine = self.app.state.db.get_engine()
        self.assertEqual(self.backend.dialect, engine.dialect.name)
        self.assertEqual(
            [], [fn for fn in engine.dispatch.begin
                 if fn.__name__ == '_begin_immediate'])
        with engine.connect() as conn:
            self.assertEqual(1, conn.exec_driver_sql('SELECT 1').scalar())

    def test_concurrent_heartbeats_never_500(self):
        hosts = ['h%02d' % i for i in range(16)]
        for h in hosts:
            self.client.register(h)
        errors = []
        start = threading.Barrier(len(hosts) * 2)

        def beat(h):
            start.wait(30)
            for i in range(20):
                body = {'state': 'maintenance' if i % 2 else 'active'}
                resp = self.client.request(
                    'PUT', '/v1/hosts/%s/heartbeat' % h, body, host=h)
                if resp.status_int != 200:
                    errors.append((h, resp.status_int, resp.text))
        # Two threads per host: the same row updated at once.
        threads = [threading.Thread(target=beat, args=(h,))
                   for h in hosts for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual([], errors)
        listed = self.client.request('GET', '/v1/hosts').json['hosts']
        self.assertEqual(hosts, [h['name'] for h in listed])

    def test_concurrent_first_reports_of_one_volume(self):
        # Every host reports a volume the coordinator has never seen, at
        # once: the volume row is created once (unique name), no 500.
        hosts = ['h%02d' % i for i in range(12)]
        for h in hosts:
            self.client.register(h)
        errors = []
        start = threading.Barrier(len(hosts))

        def report(h):
            start.wait(30)
            resp = self.client.report(h, 'fresh')
            if resp.status_int != 200:
                errors.append((h, resp.status_int, resp.text))
        threads = [threading.Thread(target=report, args=(h,)) for h in hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual([], errors)
        self.assertEqual([(1,)], self.query(
            "SELECT COUNT(*) FROM volumes WHERE name = 'fresh'"))
        tree = self.client.request('GET', '/v1/volumes/fresh/tree').json
        self.assertEqual(len(hosts), len(tree['hosts']))

    def test_datetimes_round_trip_naive_utc_with_microseconds(self):
        # Liveness compares heartbeat ages with host_timeout: a backend
        # that cut sub-seconds would make hosts look older than they are.
        self.freeze_time()
        self.now = self.now.replace(microsecond=654321)
        self.client.register('h1')
        (stored,), = self.query('SELECT heartbeat_at FROM hosts')
        self.assertIsNone(stored.tzinfo)
        self.assertEqual(self.now, stored)
        host = self.client.request('GET', '/v1/hosts/h1').json['host']
        self.assertEqual(self.now.isoformat() + 'Z', host['heartbeat_at'])
