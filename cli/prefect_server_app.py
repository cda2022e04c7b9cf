"""The engine's Prefect server process: Prefect's own app (`create_app`) under uvicorn, as
`prefect server start` runs it, with one addition. The single box runs it with the services in the same
process; `ris server api` runs it without them (`--no-services`), as an API server of the HA topology.

On SQLite, Prefect begins its transactions DEFERRED: one that read, then writes after another writer
committed, fails at once with "database is locked" (SQLite cannot wait there: its snapshot is stale),
and the request is answered 503. Under a burst of reports the clients' resends then set the pace, the
server does each request's work again, and a request that loses the race more times than the client
resends fails its run. This server begins them IMMEDIATE (its write lock taken first, as Prefect does for
its own `with_for_update` transactions and migrations): a writer queues on SQLite's busy timeout (60 s)
instead of losing. A 503 that still happens gets a Retry-After between 0.2 and 1 s (Prefect's client
otherwise waits 2 s, then 4 s), drawn at random so that clients that collided do not collide again.

    python -m cli.prefect_server_app --host 127.0.0.1 --port 4200 [--no-services]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from prefect.server.api.server import create_app
from prefect.server.database import configurations
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction

RETRY_AFTER_S = (0.2, 1.0)


@asynccontextmanager
async def _begin_immediate(
    self: configurations.AioSqliteConfiguration, session: AsyncSession, with_for_update: bool = False
) -> AsyncIterator[AsyncSessionTransaction]:
    token = configurations.SQLITE_BEGIN_MODE.set("IMMEDIATE")
    try:
        async with session.begin() as transaction:
            yield transaction
    finally:
        configurations.SQLITE_BEGIN_MODE.reset(token)


def begin_sqlite_transactions_immediate() -> None:
    """Every transaction Prefect's server begins on SQLite takes the write lock first (PostgreSQL's
    configuration is another class, left as it is)."""
    configurations.AioSqliteConfiguration.begin_transaction = _begin_immediate  # type: ignore[method-assign]


class RetrySoon:
    """ASGI middleware: a 503 without a Retry-After header gets one."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_retry_after(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 503:
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"retry-after" for name, _ in headers):
                    seconds = f"{random.uniform(*RETRY_AFTER_S):.2f}".encode()
                    message = {**message, "headers": [*headers, (b"retry-after", seconds)]}
            await send(message)

        await self.app(scope, receive, send_with_retry_after)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4200)
    parser.add_argument("--no-services", action="store_true", help="API and UI only (HA: services apart)")
    args = parser.parse_args()
    begin_sqlite_transactions_immediate()
    app = create_app(final=True, webserver_only=args.no_services)
    uvicorn.run(RetrySoon(app), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
