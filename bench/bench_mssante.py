"""MSSanté direct sending: mails built per second, and mails per second to the sandbox operator.

    .venv/bin/python -m bench.bench_mssante [--mails 200] [--concurrency 4]

One realistic report (qualified identity, our own CDA with its PDF/A) in a throw-away SQLite store. Build:
`ris.channels.mssante.message.build` (MIME, IHE_XDM.zip with its lxml metadata). Send: `submit` of one
mail per connection (STARTTLS, TLS 1.2 pinned, client certificate, DSN parameters), one at a time and
then `--concurrency` at once, against the sandbox MSSanté operator in its own thread, which stores each
.eml file. Each mail gets its own Message-ID so the operator stores every one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from sqlmodel import Session

from bench.report import machine, write_section
from ris import documents
from ris.channels.mssante import message
from ris.channels.mssante.smtp import OperatorConfig, submit
from ris.site.settings import SiteSettings
from ris.store import db
from sandbox.mssante import CLIENT_PASSPHRASE, MssSandbox
from tests import factories

HEADING = "## MSSanté direct"
TO = "helene.francois@test-ci-sis.mssante.fr"


def _facts(folder: str) -> message.MailFacts:
    url = f"sqlite:///{folder}/bench.db"
    db.upgrade(url)
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        bundle = factories.validated_report(session, copies=0)
    built = documents.build(bundle, SiteSettings())
    db.get_engine(url).dispose()
    patient = bundle.patient
    return message.MailFacts(
        bundle.exam.exam_label,
        patient.birth_name,
        patient.first_birth_given_name,
        patient.birth_date,
        built.cda,
        built.pdf,
        built.pdf_filename,
    )


async def _send_all(mails: list, config: OperatorConfig, sender: str, concurrency: int) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(key: str, mail) -> None:
        async with gate:
            await submit(mail, config, sender=sender, recipient=TO, envid=key)

    start = time.perf_counter()
    await asyncio.gather(*(one(key, mail) for key, mail in mails))
    return len(mails) / (time.perf_counter() - start)


def measure(count: int, concurrency: int) -> dict[str, float | int]:
    settings = SiteSettings()
    now = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory() as folder:
        facts = _facts(folder)

        def build(key: str):
            return message.build(
                facts, to=TO, audience="ps", action="initial", key=key, settings=settings, now=now
            )

        build("warm-up")
        samples = []
        mails = []
        for n in range(2 * count):
            start = time.perf_counter()
            mails.append((f"bench{n:08d}", build(f"bench{n:08d}")))
            samples.append(time.perf_counter() - start)
        size_kb = len(mails[0][1].as_bytes()) / 1024
        with MssSandbox(folder=Path(folder) / "mss-received", tls_dir=Path(folder) / "tls") as server:
            pki = server.mss_pki
            config = OperatorConfig(
                host="localhost",
                port=server.port,
                ca_bundle=str(pki.ca),
                client_cert=str(pki.client_cert),
                client_key=str(pki.client_key),
                key_passphrase=CLIENT_PASSPHRASE.decode(),
            )
            sender = settings.mssante.application_mailbox
            serial = asyncio.run(_send_all(mails[:count], config, sender, 1))
            parallel = asyncio.run(_send_all(mails[count:], config, sender, concurrency))
            assert len(server.accepted()) == 2 * count
    return {
        "mails": count,
        "concurrency": concurrency,
        "kb": size_kb,
        "build_per_s": 1 / statistics.median(samples),
        "serial_per_s": serial,
        "parallel_per_s": parallel,
    }


def section(r: dict[str, float | int]) -> str:
    return (
        f"{HEADING}\n\n"
        f"One professional mail ({r['kb']:.0f} KiB: text, IHE_XDM.zip with our CDA, the PDF/A), "
        f"{r['mails']} mails per row (`bench/bench_mssante.py`); the sandbox operator runs in a thread of "
        "the same process and writes each .eml file.\n\n"
        "| step | rate |\n|---|---|\n"
        f"| build the mail (MIME + XDM zip + lxml metadata), median | {r['build_per_s']:.0f} /s |\n"
        "| send, one connection per mail (STARTTLS, TLS 1.2, client certificate, DSN), one at a time "
        f"| {r['serial_per_s']:.1f} /s |\n"
        f"| same, {r['concurrency']} at once | {r['parallel_per_s']:.1f} /s |\n\n"
        "Most of a send is the TLS handshake with RSA-2048 certificates on both sides, CPU work that the "
        "client and the sandbox operator share in one process (one GIL): concurrency adds no throughput "
        "here, a real operator is another machine. A connection per mail keeps each delivery's retry "
        "independent.\n\n"
        f"{machine()}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    text = section(measure(args.mails, args.concurrency))
    print(text)
    write_section(HEADING, text)


if __name__ == "__main__":
    main()
