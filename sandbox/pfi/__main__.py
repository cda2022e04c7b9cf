"""`python -m sandbox.pfi --port 2575 --zam-port 2576`: run the sandbox PFI until interrupted (SIGINT or
SIGTERM); `--summary FILE` then writes its counts, duplicates included."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
from pathlib import Path

from sandbox.pfi.server import PfiSandbox


async def serve(args: argparse.Namespace) -> None:
    pfi = PfiSandbox(
        args.host,
        args.port,
        zam_host=args.zam_host,
        zam_port=args.zam_port,
        folder=args.folder,
        matrix_check=not args.no_matrix_check,
    )
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with pfi:
        print(
            f"sandbox PFI listening on {args.host}:{pfi.port} (ZAM to {args.zam_host}:{args.zam_port})",
            flush=True,
        )
        await stop.wait()
    if args.summary:
        args.summary.write_text(json.dumps(pfi.summary()), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.pfi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2575)
    parser.add_argument("--zam-host", default="127.0.0.1")
    parser.add_argument("--zam-port", type=int, default=None, help="RIS receipt listener; no ZAM when absent")
    parser.add_argument("--folder", type=Path, default=None, help="also write each accepted message here")
    parser.add_argument(
        "--summary", type=Path, default=None, help="at exit, write what was received here (JSON counts)"
    )
    parser.add_argument(
        "--no-matrix-check", action="store_true", help="accept flags outside the MSSanté matrix"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
