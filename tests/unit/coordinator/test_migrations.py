"""The alembic migrations and the models describe the same schema."""

import os

import fixtures
from oslo_db.sqlalchemy import test_migrations
from oslotest import base
import sqlalchemy as sa

from fastboot_nova.coordinator.db import migration
from fastboot_nova.coordinator.db import models


class TestModelsMigrationsSync(test_migrations.ModelsMigrationsSync,
                               base.BaseTestCase):
    """On SQLite.

    tests/functional/coordinator/test_mysql.py and test_postgresql.py
    rerun it on a server (tox -e functional-mysql, functional-postgresql).
    """

    def setUp(self):
        super().setUp()
        path = os.path.join(self.useFixture(fixtures.TempDir()).path,
                            'sync.sqlite')
        self.engine = sa.create_engine('sqlite:///%s' % path)
        self.addCleanup(self.engine.dispose)

    def get_engine(self):
        return self.engine

    def get_metadata(self):
        return models.Base.metadata

    def db_sync(self, engine):
        migration.upgrade(engine)

    def test_head_and_current(self):
        self.assertIsNone(migration.current(self.engine))
        migration.upgrade(self.engine)
        self.assertEqual(migration.head(), migration.current(self.engine))
        inspector = sa.inspect(self.engine)
        self.assertEqual(['uq_hosts_name'],
                         [c['name'] for c in
                          inspector.get_unique_constraints('hosts')])
        self.assertEqual(['uq_caches_host_id_volume_id'],
                         [c['name'] for c in
                          inspector.get_unique_constraints('caches')])
