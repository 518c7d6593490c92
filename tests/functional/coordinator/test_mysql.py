"""The coordinator on MySQL/MariaDB: migrations, the API, replica processes.

Runs when FASTBOOT_MYSQL_URL is set (``tox -e functional-mysql`` starts a
private MariaDB with ``tools/start-mariadb.sh`` and sets it); see
:mod:`tests.functional.coordinator.dbserver`. The API tests are those of
test_api, test_replicas and test_processes, rerun on MySQL; the few that
look at the SQLite file itself are replaced or skipped.
"""

import sqlalchemy as sa

from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator.db import models
from tests.functional.coordinator import base
from tests.functional.coordinator import dbserver
from tests.functional.coordinator import test_api
from tests.functional.coordinator import test_batch_processes
from tests.functional.coordinator import test_batches
from tests.functional.coordinator import test_processes
from tests.functional.coordinator import test_replicas
from tests.unit.coordinator import test_migrations


class MySQL(dbserver.ServerMixin):
    backend = dbserver.MYSQL


# -- migrations ---------------------------------------------------------------

class TestModelsMigrationsSyncMySQL(dbserver.MigrationsSyncMixin,
                                    test_migrations.TestModelsMigrationsSync):
    """oslo.db's models/migrations comparison, on MySQL."""

    backend = dbserver.MYSQL

    def test_innodb_utf8mb4_whatever_the_server_defaults(self):
        # A database created latin1, sessions defaulting to MyISAM: the
        # tables still come out InnoDB and utf8mb4 (pinned in the
        # migration, not left to the server).
        db = self.useFixture(dbserver.ServerDatabase(
            self.backend, self.db_server,
            create_options='CHARACTER SET latin1'))
        engine = sa.create_engine(db.url, connect_args={
            'init_command': 'SET default_storage_engine=MyISAM'})
        self.addCleanup(engine.dispose)
        migration.upgrade(engine)
        rows = sa.inspect(engine).get_table_names()
        self.assertEqual(sorted(['alembic_version'] + list(
            models.Base.metadata.tables)), sorted(rows))
        with engine.connect() as conn:
            tables = {row[0]: row[1:] for row in conn.execute(sa.text(
                'SELECT table_name, engine, table_collation '
                'FROM information_schema.tables '
                'WHERE table_schema = DATABASE()'))}
        for name in models.Base.metadata.tables:
            engine_name, collation = tables[name]
            self.assertEqual('InnoDB', engine_name, name)
            self.assertTrue(collation.startswith('utf8mb4'),
                            (name, collation))
        # The models say the same, for metadata.create_all() users.
        for table in models.Base.metadata.tables.values():
            self.assertEqual('InnoDB', table.kwargs['mysql_engine'])
            self.assertEqual('utf8mb4', table.kwargs['mysql_charset'])


# -- the API ------------------------------------------------------------------

class TestHostsMySQL(MySQL, dbserver.HostsMixin, test_api.TestHosts):
    pass


class TestAuthMySQL(MySQL, dbserver.AuthMixin, test_api.TestAuth):
    pass


class TestCachesMySQL(MySQL, test_api.TestCaches):
    pass


class TestBadInputMySQL(MySQL, test_api.TestBadInput):
    pass


class TestRestartAndReplicasMySQL(MySQL,
                                  test_replicas.TestRestartAndReplicas):
    pass


class TestReplicaProcessesMySQL(MySQL,
                                test_processes.TestReplicaProcesses):
    pass


class TestMySQLSpecifics(MySQL, dbserver.SpecificsMixin,
                         base.CoordinatorTestCase):
    pass


class TestBatchCreateMySQL(MySQL, test_batches.TestBatchCreate):
    pass


class TestBatchBadInputMySQL(MySQL, test_batches.TestBatchBadInput):
    pass


class TestBatchReadDeleteMySQL(MySQL, test_batches.TestBatchReadDelete):
    pass


class TestBatchProcessesMySQL(MySQL, test_batch_processes.TestBatchProcesses):
    pass
