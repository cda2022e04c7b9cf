"""What every benchmark shares: the machine it ran on, percentiles, and its section of BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_model() -> str:
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    except OSError:
        return platform.processor() or "unknown"
    return found.group(1).strip() if found else "unknown"


def machine() -> str:
    return f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}."


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def write_section(heading: str, text: str, path: Path = ROOT / "BENCHMARKS.md") -> None:
    """Replace only this section (up to the next `## ` heading), creating the file if needed."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(current):
        updated = pattern.sub(lambda _: text + "\n", current, count=1)
    else:
        updated = current.rstrip("\n") + "\n\n" + text
    path.write_text(updated.rstrip("\n") + "\n")
