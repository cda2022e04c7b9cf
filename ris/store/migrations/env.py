"""Alembic environment: migrations run against the URL given by `ris.store.db.alembic_config`."""

from alembic import context
from sqlmodel import SQLModel

import ris.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from ris.store.db import get_engine

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = get_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
