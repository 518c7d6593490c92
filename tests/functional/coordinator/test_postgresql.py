"""The coordinator on PostgreSQL: migrations, the API, replica processes.

Runs when FASTBOOT_POSTGRESQL_URL is set (``tox -e functional-postgresql``
starts a private server with ``tools/start-postgresql.sh`` and sets it);
see :mod:`tests.functional.coordinator.dbserver`. The same tests as
test_mysql, less what only MySQL has (storage engines, charsets).
"""

from tests.functional.coordinator import base
from tests.functional.coordinator import dbserver
from tests.functional.coordinator import test_api
from tests.functional.coordinator import test_processes
from tests.functional.coordinator import test_replicas
from tests.unit.coordinator import test_migrations


class PostgreSQL(dbserver.ServerMixin):
    backend = dbserver.POSTGRESQL


class TestModelsMigrationsSyncPostgreSQL(
        dbserver.MigrationsSyncMixin,
        test_migrations.TestModelsMigrationsSync):
    """oslo.db's models/migrations comparison, on PostgreSQL."""

    backend = dbserver.POSTGRESQL


class TestHostsPostgreSQL(PostgreSQL, dbserver.HostsMixin,
                          test_api.TestHosts):
    pass


class TestAuthPostgreSQL(PostgreSQL, dbserver.AuthMixin, test_api.TestAuth):
    pass


class TestCachesPostgreSQL(PostgreSQL, test_api.TestCaches):
    pass


class TestBadInputPostgreSQL(PostgreSQL, test_api.TestBadInput):
    pass


class TestRestartAndReplicasPostgreSQL(
        PostgreSQL, test_replicas.TestRestartAndReplicas):
    pass


class TestReplicaProcessesPostgreSQL(PostgreSQL,
                                     test_processes.TestReplicaProcesses):
    pass


class TestPostgreSQLSpecifics(PostgreSQL, dbserver.SpecificsMixin,
                              base.CoordinatorTestCase):
    pass
