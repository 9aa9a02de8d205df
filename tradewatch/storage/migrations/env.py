"""Alembic environment: the URL and connection come from tradewatch.storage.migrate."""

from alembic import context

from tradewatch.storage.schema import metadata

config = context.config
connection = config.attributes.get("connection")

if connection is None:  # pragma: no cover - only when someone runs `alembic` by hand
    from sqlalchemy import create_engine

    with create_engine(config.get_main_option("sqlalchemy.url")).begin() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        context.run_migrations()
else:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
