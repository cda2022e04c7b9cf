"""Running `ris` as a separate process, the way a person or a scheduler does, isolated from the caller's
engine: no inherited Prefect API or RIS settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

RIS = [sys.executable, "-m", "cli.main"]


def isolated_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIS_"))}
    env.update(RIS_DATA_DIR=str(data_dir), **extra)
    return env


def run_ris(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RIS, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
