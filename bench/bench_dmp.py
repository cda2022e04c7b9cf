"""DMP direct feed: ITI-41 requests built per second, and submissions per second to the sandbox DMP.

    .venv/bin/python -m bench.bench_dmp [--submissions 100] [--concurrency 4] [--quick]

One realistic report (qualified identity, our own CDA with its PDF/A) in a throw-away SQLite store, its
document id changed per submission (each is a new document for the registry). Build: CDA header read,
ebRIM metadata, VIHF signed (RSA-2048, SHA-256, exclusive c14n), MTOM body. Send: httpx over HTTPS with
the client certificate to the sandbox DMP in a thread of this process, which parses the MTOM, verifies the
VIHF signature, checks the metadata, hash and size, registers the document and writes the request to disk.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlmodel import Session

from bench.report import machine, write_section
from ris import documents
from ris.channels.dmp import transactions
from ris.channels.dmp.client import DmpConfig, client, post
from ris.channels.dmp.metadata import Submission, SubmissionIds
from ris.channels.dmp.vihf import Software
from ris.documents.xds_metadata import read
from ris.site.settings import SiteSettings
from ris.store import db
from sandbox.dmp import CLIENT_PASSPHRASE, DmpSandbox
from tests import factories

HEADING = "## DMP direct"


def _cda(folder: str) -> tuple[bytes, str]:
    url = f"sqlite:///{folder}/bench.db"
    db.upgrade(url)
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        bundle = factories.validated_report(session, copies=0)
    built = documents.build(bundle, SiteSettings())
    db.get_engine(url).dispose()
    return built.cda, built.document_id


def _requests(
    cda: bytes, document_id: str, ctx: transactions.Context, count: int
) -> tuple[list, list[float]]:
    settings, now = SiteSettings(), dt.datetime.now(dt.UTC)
    requests, samples = [], []
    for _ in range(count):
        start = time.perf_counter()
        own = cda.replace(document_id.encode(), f"2.25.{uuid.uuid4().int}".encode())
        sub = Submission(
            SubmissionIds(uuid.uuid4().hex), (), settings.facility.oid, now.strftime("%Y%m%d%H%M%S")
        )
        requests.append(transactions.provide(own, read(own), sub, ctx, now))
        samples.append(time.perf_counter() - start)
    return requests, samples


async def _send_all(requests: list, config: DmpConfig, concurrency: int, keep_alive: bool) -> float:
    gate = asyncio.Semaphore(concurrency)
    shared = client(config) if keep_alive else None

    async def one(request) -> None:
        async with gate:
            await post(request, config, shared)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(one(r) for r in requests))
    finally:
        if shared is not None:
            await shared.aclose()
    return len(requests) / (time.perf_counter() - start)


def measure(count: int, concurrency: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as folder:
        cda, document_id = _cda(folder)
        with DmpSandbox(folder=Path(folder) / "dmp-received", tls_dir=Path(folder) / "tls") as server:
            pki = server.pki
            config = DmpConfig(
                repository_url=server.url,
                registry_url=server.registry_url,
                ca_bundle=str(pki.ca),
                client_cert=str(pki.client_cert),
                client_key=str(pki.client_key),
                key_passphrase=CLIENT_PASSPHRASE.decode(),
            )
            signing = transactions.Signing.from_files(
                str(pki.client_cert), str(pki.client_key), CLIENT_PASSPHRASE.decode()
            )
            ctx = transactions.Context(config, signing, Software("BENCH", "ris", "0", "H"), "SA08")
            requests, samples = _requests(cda, document_id, ctx, 3 * count)
            serial = asyncio.run(_send_all(requests[:count], config, 1, keep_alive=False))
            kept = asyncio.run(_send_all(requests[count : 2 * count], config, 1, keep_alive=True))
            parallel = asyncio.run(_send_all(requests[2 * count :], config, concurrency, keep_alive=True))
            assert len(server.registry.approved()) == 3 * count
    return {
        "submissions": count,
        "concurrency": concurrency,
        "kb": len(requests[0].body) / 1024,
        "build_per_s": 1 / statistics.median(samples),
        "serial_per_s": serial,
        "kept_per_s": kept,
        "parallel_per_s": parallel,
    }


def section(r: dict[str, float | int], quick: bool) -> str:
    note = " (`--quick`: the machine was shared with other work)" if quick else ""
    return (
        f"{HEADING}\n\n"
        f"One ITI-41 submission ({r['kb']:.0f} KiB MTOM: SOAP 1.2 envelope with the signed VIHF and the "
        f"ebRIM metadata, our CDA with its PDF/A as the XOP part), {r['submissions']} submissions per row "
        f"(`bench/bench_dmp.py`){note}; the sandbox DMP runs in a thread of the same process: it parses "
        "the MTOM, verifies the VIHF signature, checks the metadata, hash and size, registers the document "
        "and writes the request to disk.\n\n"
        "| step | rate |\n|---|---|\n"
        f"| build the request (header read, ebRIM, VIHF signed RSA-2048/SHA-256, MTOM), median | "
        f"{r['build_per_s']:.0f} /s |\n"
        "| submit, one HTTPS connection per request (mutual TLS), one at a time | "
        f"{r['serial_per_s']:.1f} /s |\n"
        f"| submit over one kept-alive connection, one at a time | {r['kept_per_s']:.1f} /s |\n"
        f"| same, {r['concurrency']} at once | {r['parallel_per_s']:.1f} /s |\n\n"
        "A submission costs the client a VIHF signature and the sandbox its verification and the metadata "
        "checks, CPU work shared in one process (one GIL); the engine's task opens a connection per "
        "submission, so the first row is what a lifecycle run sees.\n\n"
        f"{machine()}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="20 submissions per row")
    args = parser.parse_args()
    count = 20 if args.quick else args.submissions
    text = section(measure(count, args.concurrency), args.quick)
    print(text)
    write_section(HEADING, text)


if __name__ == "__main__":
    main()
