"""`ris server`: Prefect's HA topology in the engine's terms ("How to scale self-hosted Prefect"). On
PostgreSQL and Redis, a site runs several API servers without services behind its load balancer
(`ris server api`), the loop services once, apart (`ris server services`), and `ris worker` processes
attached to any API server. Every API server requires the site's auth string.

All of them are configured from the environment, composed in `cli.prefect_server.server_environment`:
PREFECT_SERVER_DATABASE_CONNECTION_URL (PostgreSQL), RIS_REDIS_URL (or Prefect's own PREFECT_REDIS_MESSAGING_*
settings), PREFECT_SERVER_API_AUTH_STRING. Each command checks them, and that the database and Redis answer,
then becomes the server process itself (exec), so that the site's service manager signals it directly.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import NoReturn

import sqlalchemy as sa
import typer
from prefect.settings import PREFECT_SERVER_DATABASE_CONNECTION_URL
from sqlalchemy.ext.asyncio import create_async_engine

from cli.api_auth import site_auth_string
from cli.common import fail, require_answering_api
from cli.prefect_server import server_environment, site_redis_url
from deployments import WORK_POOL
from ris.site.engine import EngineConfig

app = typer.Typer(help="Prefect's HA topology: API servers without services, the services apart.")
NOT_READY = 3
UPGRADE = "run `ris server upgrade` once, then start the servers"


def _database_url(what: str) -> str:
    url = PREFECT_SERVER_DATABASE_CONNECTION_URL.value()
    if not url or not url.startswith("postgresql"):
        fail(
            f"{what} needs Prefect's database on PostgreSQL (14.9 or later), shared by every server: set "
            "PREFECT_SERVER_DATABASE_CONNECTION_URL=postgresql+asyncpg://user:password@host/prefect "
            "(SQLite serves the single box, `ris up`)",
            code=NOT_READY,
        )
    return url


def _redis_url(what: str) -> str:
    url = site_redis_url()
    if url is None:
        fail(
            f"{what} needs the site's Redis, through which the servers share events, leases and the "
            "services' work: set RIS_REDIS_URL=redis://host:6379/0 (or Prefect's own "
            "PREFECT_REDIS_MESSAGING_HOST, _PORT, _DB, _USERNAME, _PASSWORD)",
            code=NOT_READY,
        )
    return url


def _prefect_head() -> str:
    """The revision of Prefect's PostgreSQL schema this Prefect version expects."""
    from alembic.script import ScriptDirectory
    from prefect.server.database.alembic_commands import alembic_config
    from prefect.server.database.orm_models import AsyncPostgresORMConfiguration

    migrations = ScriptDirectory.from_config(alembic_config()).dir
    versions = AsyncPostgresORMConfiguration().versions_dir
    return ScriptDirectory(migrations, version_locations=[str(versions)]).get_current_head()


async def _database_revision(url: str) -> str | None:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            exists = await connection.scalar(sa.text("SELECT to_regclass('alembic_version') IS NOT NULL"))
            if not exists:
                return None
            return await connection.scalar(sa.text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()


def _revision(url: str) -> str | None:
    try:
        return asyncio.run(_database_revision(url))
    except Exception as exc:  # any driver's way of saying no: refused, unknown database, bad password
        where = url.split("@")[-1]
        fail(f"Prefect's database ({where}) cannot be used: {str(exc).splitlines()[0]}", code=NOT_READY)


def _check_database(url: str) -> None:
    where = url.split("@")[-1]
    if (revision := _revision(url)) is None:
        fail(f"Prefect's database ({where}) is not migrated: {UPGRADE}", code=NOT_READY)
    if revision != (head := _prefect_head()):
        fail(
            f"Prefect's database ({where}) is at revision {revision}, this Prefect needs {head}: {UPGRADE}",
            code=NOT_READY,
        )


def _check_redis(url: str) -> None:
    # Imported only here (every `ris` command imports this module); prefect-redis's own client reads the
    # same URLs as the servers will (Sentinel ones included).
    import redis
    from prefect_redis.connection import close_redis_client, redis_from_url

    where = url.partition("://")[2].rpartition("@")[2]  # no credentials in the line
    try:
        client = redis_from_url(url, socket_connect_timeout=5, socket_timeout=5)
        try:
            client.ping()
        finally:
            close_redis_client(client)
    except (redis.RedisError, ValueError) as exc:
        fail(f"the site's Redis ({where}) does not answer: {exc}", code=NOT_READY)


def _become(args: list[str], auth_string: str | None, redis_url: str) -> NoReturn:
    """Replace this process with the server process, in the environment composed for it."""
    site = {"PREFECT_HOME": str(EngineConfig.from_env().data_dir / "prefect"), **os.environ}
    env = server_environment(site, auth_string=auth_string, redis_url=redis_url)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, *args], env)


@app.command()
def upgrade() -> None:
    """Migrate Prefect's database and register Prefect's block types, once per Prefect version, before the
    API servers start (they do neither at start: several doing it at once collide)."""
    from prefect.server.database import provide_database_interface
    from prefect.server.models.block_registration import run_block_auto_registration

    database = _database_url("`ris server upgrade`")
    _revision(database)  # answers

    async def migrate_and_register() -> None:
        db = provide_database_interface()
        await db.create_db()  # alembic upgrade to this Prefect's head
        async with db.session_context() as session:
            await run_block_auto_registration(session=session)

    asyncio.run(migrate_and_register())
    typer.echo(f"Prefect's database ({database.split('@')[-1]}) is at revision {_prefect_head()}")


@app.command()
def api(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every one)"),
    port: int = typer.Option(4200, help="Port of this API server (its UI too)"),
) -> None:
    """One API server (and UI) without services, behind the site's load balancer; start as many as
    wanted, on PostgreSQL and Redis. It answers only to clients that send the site's auth string
    (PREFECT_SERVER_API_AUTH_STRING here, PREFECT_API_AUTH_STRING on the clients)."""
    auth = site_auth_string()
    if auth is None:
        fail(
            "`ris server api` requires the site's auth string: set PREFECT_SERVER_API_AUTH_STRING, the same "
            'on every server (e.g. "ris:$(openssl rand -hex 32)"), and PREFECT_API_AUTH_STRING to it on '
            "every client (workers, listeners, `ris`)",
            code=NOT_READY,
        )
    database, redis_url = _database_url("`ris server api`"), _redis_url("`ris server api`")
    _check_database(database)
    _check_redis(redis_url)
    typer.echo(f"Prefect API server (no services) on http://{host}:{port}/api")
    server = ["-m", "cli.prefect_server_app", "--host", host, "--port", str(port), "--no-services"]
    _become(server, auth, redis_url)


@app.command()
def services() -> None:
    """Prefect's loop services (scheduler, late runs, event persister, triggers, ...) in one process,
    apart from the API servers; one per site, on the same PostgreSQL and Redis."""
    database, redis_url = _database_url("`ris server services`"), _redis_url("`ris server services`")
    _check_database(database)
    _check_redis(redis_url)
    typer.echo("Prefect services (scheduler, event persister, triggers, ...)")
    _become(["-m", "prefect", "server", "services", "start"], site_auth_string(), redis_url)


@app.command()
def deploy(pool: str = typer.Option(WORK_POOL, "--pool", help="Work pool of the engine's workers")) -> None:
    """Apply the engine's block types, work pool, deployments (prefect.yaml) and alerts to the API
    (PREFECT_API_URL, with PREFECT_API_AUTH_STRING): what `ris up` does at each start. Run it once per
    engine version on a site whose API servers run apart."""
    from cli.single_box import BLOCK_TYPES
    from deployments.alerts import set_up_alerts
    from deployments.apply import apply_deployments

    require_answering_api("applying the deployments")

    async def apply() -> int:
        for block_type in BLOCK_TYPES:  # so that the UI offers them in its catalogue
            await block_type.register_type_and_schema()
        applied = await apply_deployments(pool)
        await set_up_alerts()
        return len(applied)

    typer.echo(f"{asyncio.run(apply())} deployments applied to the work pool {pool}")
