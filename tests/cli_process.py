"""Running `ris` as a separate process, the way a person or a scheduler does, isolated from the caller's
engine: no inherited Prefect API or RIS settings."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import ROOT

RIS = [sys.executable, "-m", "cli.main"]


def isolated_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIS_"))}
    env.update(RIS_DATA_DIR=str(data_dir), **extra)
    return env


def run_ris(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIS, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def start_up(env: dict[str, str], *args: str, patience_s: float = 180) -> tuple[subprocess.Popen[str], str]:
    """`ris up` in its own process, read until it says it serves (or ends); returns it and what it
    printed."""
    process = subprocess.Popen(
        [*RIS, "up", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines = []
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Press Ctrl-C to stop." in line or not line:
            break
    return process, "".join(lines)
