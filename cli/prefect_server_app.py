"""The engine's Prefect server process: Prefect's own app (`create_app`) under uvicorn, as
`prefect server start` runs it, with one addition. The single box runs it with the services in the same
process; `ris server api` runs it without them (`--no-services`), as an API server of the HA topology.

On SQLite, a server transaction that loses a write race to another one is answered 503 ("database is
locked"); Prefect's client then waits 2 s, then 4 s, before trying again, unless the answer says when to
come back. Under a burst of reports that back-off, not the work, set the pace. This server answers with
a Retry-After between 0.2 and 1 s, drawn at random so that the clients that collided do not collide
again: the write is tried again as soon as the other transaction is likely done.

    python -m cli.prefect_server_app --host 127.0.0.1 --port 4200 [--no-services]
"""

from __future__ import annotations

import argparse
import random
from typing import Any

import uvicorn
from prefect.server.api.server import create_app

RETRY_AFTER_S = (0.2, 1.0)


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
    app = create_app(final=True, webserver_only=args.no_services)
    uvicorn.run(RetrySoon(app), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
