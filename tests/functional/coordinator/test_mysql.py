"""The coordinator on MySQL/MariaDB: migrations and the API.

Runs when FASTBOOT_MYSQL_URL names a server where the user may create
databases called ``openstack_citest*``, e.g.
``mysql+pymysql://openstack_citest:openstack_citest@127.0.0.1:33306/``
(what ``tools/start-mariadb.sh`` starts and prints; ``tox -e
functional-mysql`` does both). Each test gets a fresh database, dropped at
its end. Without the variable the tests skip, or fail when
FASTBOOT_REQUIRE_MYSQL=1 (set by the tox environment, so that a CI job
that lost its server does not pass by skipping everything).

The API tests are those of test_api and test_replicas, rerun on MySQL;
the few that look at the SQLite file itself are replaced or skipped.
"""

import os
import threading
import uuid

import fixtures
from oslotest import base as oslotest_base
import sqlalchemy as sa

from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator.db import models
from tests.functional.coordinator import base
from tests.functional.coordinator import test_api
from tests.functional.coordinator import test_replicas
from tests.unit.coordinator import test_migrations

URL_ENV = 'FASTBOOT_MYSQL_URL'
REQUIRE_ENV = 'FASTBOOT_REQUIRE_MYSQL'
HOWTO = ('set %s to a MySQL URL whose user may create databases named '
         'openstack_citest*, e.g. mysql+pymysql://openstack_citest:'
         'openstack_citest@127.0.0.1:33306/ as printed by '
         '`bash tools/start-mariadb.sh` (as root), or run '
         '`tox -e functional-mysql`' % URL_ENV)


def mysql_url(testcase):
    """The server URL, or skip (fail if FASTBOOT_REQUIRE_MYSQL=1)."""
    url = os.environ.get(URL_ENV)
    if url:
        return url
    if os.environ.get(REQUIRE_ENV) == '1':
        testcase.fail('%s=1 but %s is unset: %s' % (REQUIRE_ENV, URL_ENV,
                                                     HOWTO))
    testcase.skipTest('MySQL tests: %s' % HOWTO)


class MySQLDatabase(fixtures.Fixture):
    """A new, empty database on the server; dropped at cleanup.

    ``url`` is its URL (with the password, for oslo.db's [database]
    connection).
    """

    def __init__(self, server_url):
        super().__init__()
        self.server_url = sa.engine.make_url(server_url)

    def _setUp(self):
        self.name = 'openstack_citest_%s' % uuid.uuid4().hex[:12]
        admin = sa.create_engine(self.server_url.set(database=''),
                                 poolclass=sa.pool.NullPool)
        self.addCleanup(admin.dispose)
        with admin.connect() as conn:
            conn.exec_driver_sql(
                'CREATE DATABASE `%s` CHARACTER SET utf8mb4' % self.name)
        self.addCleanup(self._drop, admin)
        self.url = self.server_url.set(database=self.name).render_as_string(
            hide_password=False)

    def _drop(self, admin):
        with admin.connect() as conn:
            conn.exec_driver_sql('DROP DATABASE IF EXISTS `%s`' % self.name)


class MySQLMixin:
    """Puts a CoordinatorTestCase's [database] connection on MySQL."""

    def setUp(self):
        self.mysql_server = mysql_url(self)
        self.mysql_db = self.useFixture(MySQLDatabase(self.mysql_server))
        super().setUp()

    def make_conf(self, **overrides):
        overrides.setdefault('database.connection', self.mysql_db.url)
        return super().make_conf(**overrides)

    def query(self, sql, **params):
        engine = sa.create_engine(self.mysql_db.url,
                                  poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return conn.execute(sa.text(sql), params).all()
        finally:
            engine.dispose()


# -- migrations ---------------------------------------------------------------

class TestModelsMigrationsSyncMySQL(test_migrations.TestModelsMigrationsSync):
    """oslo.db's models/migrations comparison, on MySQL."""

    def setUp(self):
        oslotest_base.BaseTestCase.setUp(self)
        db = self.useFixture(MySQLDatabase(mysql_url(self)))
        self.engine = sa.create_engine(db.url)
        self.addCleanup(self.engine.dispose)

    def test_dialect(self):
        self.assertEqual('mysql', self.engine.dialect.name)

    def test_innodb_utf8mb4(self):
        migration.upgrade(self.engine)
        rows = sa.inspect(self.engine).get_table_names()
        self.assertEqual(sorted(['alembic_version'] + list(
            models.Base.metadata.tables)), sorted(rows))
        with self.engine.connect() as conn:
            tables = conn.execute(sa.text(
                'SELECT table_name, engine, table_collation '
                'FROM information_schema.tables '
                'WHERE table_schema = DATABASE()')).all()
        for name, engine, collation in tables:
            self.assertEqual('InnoDB', engine, name)
            self.assertTrue(collation.startswith('utf8mb4'),
                            (name, collation))

    def test_check_constraint_enforced(self):
        # MariaDB >= 10.2 enforces CHECK (MySQL only from 8.0.16).
        migration.upgrade(self.engine)
        with self.engine.connect() as conn:
            self.assertRaises(
                sa.exc.DBAPIError, conn.exec_driver_sql,
                "INSERT INTO hosts (name, address, state, heartbeat_at, "
                "created_at) VALUES ('h', 'a', 'bogus', NOW(), NOW())")


# -- the API ------------------------------------------------------------------

class TestHostsMySQL(MySQLMixin, test_api.TestHosts):

    def test_token_stored_hashed(self):
        token = self.client.register('h1').json['host']['token']
        (stored,), = self.query('SELECT token_hash FROM hosts')
        self.assertEqual(64, len(stored))
        self.assertNotEqual(token, stored)
        self.assertNotIn(token, stored)


class TestAuthMySQL(MySQLMixin, test_api.TestAuth):

    def test_refuses_unmigrated_database(self):
        from fastboot_nova.coordinator import deploy
        from fastboot_nova.coordinator import exception
        other = self.useFixture(MySQLDatabase(self.mysql_server))
        conf = self.make_conf(**{'database.connection': other.url})
        err = self.assertRaises(exception.ConfigurationError,
                                deploy.make_app, conf)
        self.assertIn('db sync', str(err))


class TestCachesMySQL(MySQLMixin, test_api.TestCaches):
    pass


class TestBadInputMySQL(MySQLMixin, test_api.TestBadInput):
    pass


class TestRestartAndReplicasMySQL(MySQLMixin,
                                  test_replicas.TestRestartAndReplicas):
    pass


class TestMySQLSpecifics(MySQLMixin, base.CoordinatorTestCase):

    def test_no_sqlite_begin_immediate_hook(self):
        # db/api.py's _serialize_sqlite emits BEGIN IMMEDIATE, which is
        # not MySQL; it must only be installed on SQLite engines.
        engine = self.app.state.db.get_engine()
        self.assertEqual('mysql', engine.dialect.name)
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

    def test_datetimes_round_trip_naive_utc(self):
        self.freeze_time()
        self.client.register('h1')
        (stored,), = self.query('SELECT heartbeat_at FROM hosts')
        self.assertIsNone(stored.tzinfo)
        # DATETIME without fsp keeps whole seconds on MySQL (MariaDB
        # truncates); SQLite keeps the microseconds.
        self.assertEqual(self.now.replace(microsecond=0), stored)
