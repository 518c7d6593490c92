"""Running the alembic migrations of the coordinator database."""

from alembic import command
from alembic import config as alembic_config
from alembic import migration as alembic_migration

SCRIPT_LOCATION = 'fastboot_nova.coordinator.db:migrations'


def _config(connection):
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', SCRIPT_LOCATION)
    cfg.attributes['connection'] = connection
    return cfg


def upgrade(engine, revision='head'):
    """Bring the schema of ``engine`` to ``revision``."""
    with engine.begin() as connection:
        command.upgrade(_config(connection), revision)


def current(engine):
    """The revision the database is at, or None if never migrated."""
    with engine.connect() as connection:
        ctx = alembic_migration.MigrationContext.configure(connection)
        return ctx.get_current_revision()


def head():
    from alembic import script
    cfg = alembic_config.Config()
    cfg.set_main_option('script_location', SCRIPT_LOCATION)
    return script.ScriptDirectory.from_config(cfg).get_current_head()
