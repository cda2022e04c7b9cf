"""`python -m sandbox.dmp --port 8443 --folder DIR`: run the sandbox DMP until interrupted. The test PKI
(ca.pem, client.pem / client.key with the passphrase printed) is written under --tls-dir (default:
sandbox-dmp-tls beside DIR)."""

from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from pathlib import Path

from sandbox.dmp import CLIENT_PASSPHRASE, DmpSandbox


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.dmp", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--folder", type=Path, required=True, help="each accepted request is saved here")
    parser.add_argument("--tls-dir", type=Path, default=None)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--closed", action="append", default=[], help="INS matricule whose DMP is closed")
    args = parser.parse_args()
    server = DmpSandbox(
        args.host,
        args.port,
        folder=args.folder,
        tls_dir=args.tls_dir or args.folder.parent / "sandbox-dmp-tls",
    )
    server.delay_s = args.delay
    server.closed_patients.update(args.closed)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with server:
        pki = server.pki
        print(f"sandbox DMP on {server.url} (registry {server.registry_url}), CA {pki.ca}", flush=True)
        passphrase = CLIENT_PASSPHRASE.decode()
        print(f"client certificate {pki.client_cert}, key {pki.client_key} (passphrase {passphrase})")
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
