"""Annuaire Santé import: rows per second and peak memory for a generated extraction.

    .venv/bin/python -m bench.bench_directory [--rows 1000000]

The file has the 56 columns of « PS_LibreAcces_Personne_activite » (invented professionals, one in four
with two activities). Each import runs in a fresh interpreter so that its peak resident memory
(ru_maxrss) is its own: first into an empty SQLite store (all created), then the same file again (all
unchanged, the nightly case).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from pathlib import Path

from bench.report import machine, write_section

HEADING = "## Directory import"


def _import(url: str, path: str, queue: multiprocessing.Queue) -> None:
    from sqlmodel import Session

    from ris.directory.importer import import_file, new_run_id
    from ris.store import db

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with Session(db.get_engine(url), expire_on_commit=False) as session:
        summary = import_file(session, Path(path), "persons", new_run_id())
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({**summary.as_dict(), "seconds": elapsed, "peak_mb": peak / 1024, "base_mb": before / 1024})


def _in_fresh_process(url: str, path: Path) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_import, args=(url, str(path), queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def measure(rows: int) -> dict:
    from ris.directory.synthetic import write_generated
    from ris.store import db

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "PS_LibreAcces_Personne_activite.txt"
        with path.open("w", encoding="utf-8") as out:
            written = write_generated(out, rows)
        url = f"sqlite:///{folder}/bench.db"
        db.upgrade(url)
        db.clear_engines()
        first = _in_fresh_process(url, path)
        again = _in_fresh_process(url, path)
        return {"rows": written, "mb": path.stat().st_size / 2**20, "first": first, "again": again}


def section(r: dict) -> str:
    def line(label: str, run: dict) -> str:
        return (
            f"| {label} | {r['rows'] / run['seconds']:,.0f} rows/s | {run['seconds']:.0f} s "
            f"| {run['peak_mb']:.0f} MiB ({run['base_mb']:.0f} before) |\n"
        )

    first = r["first"]
    national = 760 / r["mb"] * r["rows"] / 1e6  # million lines in 760 MB of such lines
    return (
        f"{HEADING}\n\n"
        "`ris directory import` of a generated « PS_LibreAcces_Personne_activite » file: "
        f"{r['rows']:,} lines ({r['mb']:.0f} MiB), {first['created']:,} professionals, SQLite store, "
        "batches of 2,000 "
        "(`bench/bench_directory.py`). Peak memory is the importing process's resident high-water mark.\n\n"
        "| run | rate | time | peak memory |\n|---|---|---|---|\n"
        + line("first import (all created)", first)
        + line("same file again (all unchanged)", r["again"])
        + f"\nAt the first-import rate, the national file (about 760 MB, {national:.1f} M lines at this line "
        f"length) would take about {national * 1e6 / (r['rows'] / first['seconds']) / 60:.0f} min; memory "
        "does not grow with the file (batches are written and dropped).\n\n"
        f"{machine()}\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    text = section(measure(args.rows))
    print(text)
    write_section(HEADING, text)


if __name__ == "__main__":
    main()
