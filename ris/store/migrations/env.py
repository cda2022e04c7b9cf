"""Alembic environment: migrations run against the URL given by `ris.store.db.alembic_config`."""

from alembic import context
from sqlmodel import SQLModel

import ris.store.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from ris.store.db import get_engine

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = get_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode recreates a table (copy, drop, rename): with foreign keys enforced, dropping a
            # table that other rows reference fails. They are off while migrating (the pragma only takes
            # effect outside a transaction) and every reference is checked before they are on again.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        tables = sorted({row[0] for row in broken})
                        raise RuntimeError(f"migration left broken foreign keys in {', '.join(tables)}")
            if connection.in_transaction():
                connection.commit()
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


run_migrations_online()
