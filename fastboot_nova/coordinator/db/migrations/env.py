"""alembic environment: runs on the connection the caller hands over.

:mod:`fastboot_nova.coordinator.db.migration` puts an open connection in
``config.attributes['connection']``; there is no offline (SQL script)
mode.
"""

from alembic import context

from fastboot_nova.coordinator.db import models


def run_migrations_online():
    connection = context.config.attributes['connection']
    context.configure(connection=connection,
                      target_metadata=models.Base.metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
