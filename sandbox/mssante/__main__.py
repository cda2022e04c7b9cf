"""`python -m sandbox.mssante --port 2587 --folder DIR [--imap-user BAL]`: run the sandbox MSSanté operator
until interrupted. The test PKI (ca.pem, client.pem / client.key with the passphrase printed, crl.pem) is
written under --tls-dir (default: sandbox-mss-tls beside DIR)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import threading
from pathlib import Path

from sandbox.mssante import CLIENT_PASSPHRASE, MssSandbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.mssante", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2587)
    parser.add_argument("--folder", type=Path, required=True, help="each accepted message is saved here")
    parser.add_argument("--security", choices=("starttls", "tls"), default="starttls")
    parser.add_argument("--tls-dir", type=Path, default=None)
    parser.add_argument("--imap-user", default=None, help="sender mailbox receiving DSN / MDN over IMAP")
    parser.add_argument("--read-receipts", action="store_true", help="also return MDNs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    server = MssSandbox(
        args.host,
        args.port,
        folder=args.folder,
        security=args.security,
        tls_dir=args.tls_dir or args.folder.parent / "sandbox-mss-tls",
        imap_user=args.imap_user,
    )
    server.read_receipts = args.read_receipts
    with server:
        pki = server.mss_pki
        print(
            f"sandbox MSSanté operator on {args.host}:{server.port} ({args.security}), CA {pki.ca}",
            flush=True,
        )
        print(
            f"client certificate {pki.client_cert}, key {pki.client_key} "
            f"(passphrase {CLIENT_PASSPHRASE.decode()})"
        )
        if server.mailbox is not None:
            print(
                f"IMAP (TLS) on localhost:{server.mailbox.port}, user {args.imap_user}, "
                f"password {server.imap_password}"
            )
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
