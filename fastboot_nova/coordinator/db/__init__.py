"""The coordinator database: models, queries and alembic migrations."""
