"""`python -m sandbox.smtp --port 2525 --folder DIR`: run the sandbox SMTP server until interrupted.

The test CA is written under --tls-dir (default: sandbox-smtp-tls beside DIR); point the sender's CA
bundle at its ca.pem."""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from pathlib import Path

from sandbox.smtp.server import SmtpSandbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.smtp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--folder", type=Path, required=True, help="each accepted message is saved here")
    parser.add_argument("--security", choices=("starttls", "tls", "none"), default="starttls")
    parser.add_argument(
        "--tls-dir",
        type=Path,
        default=None,
        help="where to write ca.pem (default: sandbox-smtp-tls beside DIR)",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    smtp = SmtpSandbox(
        args.host,
        args.port,
        folder=args.folder,
        security=args.security,
        tls_dir=args.tls_dir or args.folder.parent / "sandbox-smtp-tls",
    )
    with smtp:
        print(
            f"sandbox SMTP listening on {args.host}:{smtp.port} ({args.security})"
            + (f", CA {smtp.ca_pem}" if smtp.ca_pem else ""),
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
