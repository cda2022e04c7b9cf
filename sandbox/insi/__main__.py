"""Run the INSi sandbox until Ctrl-C: `python -m sandbox.insi --port 8443 [--wsdl PATH] [--tls C K CA]
[--fault CODE] [--broken FORM] [--delay S]`."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import threading
from pathlib import Path

from sandbox.insi.server import BROKEN, InsiSandbox, TlsFiles, default_wsdl


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.insi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--wsdl", type=Path, default=Path(os.environ.get("INSI_WSDL") or default_wsdl()))
    parser.add_argument("--tls", nargs=3, type=Path, metavar=("CERT", "KEY", "CA"))
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--fault", choices=["desir_550", "desir_560"], help="answer every call with this fault"
    )
    parser.add_argument("--broken", choices=sorted(BROKEN), help="answer every call with this unusable form")
    args = parser.parse_args()
    sandbox = InsiSandbox(args.host, args.port, args.wsdl, TlsFiles(*args.tls) if args.tls else None)
    sandbox.delay, sandbox.fault, sandbox.broken = args.delay, args.fault, args.broken
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with sandbox:
        print(f"INSi sandbox listening on {sandbox.url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
