"""Time to build the PDF/A-1b + CDA R2 N1 of one report (median and p90), written to BENCHMARKS.md.

    .venv/bin/python -m bench.bench_documents [--builds 200]

Builds one realistic two-page report (qualified identity, Datamatrix, three recipients) in a throw-away
SQLite store, then times `ris.documents.build` alone, one build at a time, in this process.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from sqlmodel import Session

from bench.report import machine, percentile, write_section
from ris import documents
from ris.site.settings import SiteSettings
from ris.store import db
from tests import factories

HEADING = "## Documents"
BODY = "\n\n".join(
    f"Paragraphe {n} : hypodensité séquellaire frontale droite, sans effet de masse ni prise de contraste ; "
    "ventricules de taille normale ; pas d'anomalie de la fosse postérieure. Sinus bien pneumatisés."
    for n in range(1, 16)
)


def measure(builds: int) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        db.upgrade(url)
        with Session(db.get_engine(url), expire_on_commit=False) as session:
            bundle = factories.validated_report(session, copies=2)
        bundle.version.body = BODY  # in memory only: a longer, two-page text
        settings = SiteSettings(paper_extra_traits=["used_name", "birth_place_code"])
        built = documents.build(bundle, settings)  # warm-up: imports, font templates
        samples = []
        for _ in range(builds):
            start = time.perf_counter()
            documents.build(bundle, settings)
            samples.append(time.perf_counter() - start)
        db.get_engine(url).dispose()
    return {
        "builds": builds,
        "median_ms": statistics.median(samples) * 1000,
        "p90_ms": percentile(samples, 0.9) * 1000,
        "pdf_kb": len(built.pdf) / 1024,
        "cda_kb": len(built.cda) / 1024,
    }


def section(result: dict[str, float | int]) -> str:
    return (
        f"{HEADING}\n\n"
        "PDF/A-1b (fpdf2 + pikepdf.pdfa, validated on write) + CDA R2 N1 (lxml) of one two-page report, "
        "one build at a time, no orchestration (`bench/bench_documents.py`).\n\n"
        f"| builds | median | p90 | PDF | CDA |\n|---|---|---|---|---|\n"
        f"| {result['builds']} | {result['median_ms']:.1f} ms | {result['p90_ms']:.1f} ms "
        f"| {result['pdf_kb']:.0f} KiB | {result['cda_kb']:.0f} KiB |\n\n"
        f"{machine()}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=200)
    args = parser.parse_args()
    text = section(measure(args.builds))
    print(text)
    write_section(HEADING, text)


if __name__ == "__main__":
    main()
