"""`ris up` brings the single box up and Ctrl-C (or SIGTERM) stops all of it, the Prefect server included."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_until_stopped_and_leaves_nothing_behind(tmp_path, stop):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "RIS_"))}
    env["RIS_DATA_DIR"] = str(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "up", "--prefect-port", "4391"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Press Ctrl-C to stop." in line or not line:
                break
        output = "".join(lines)
        ui = re.search(r"Prefect UI:\s+(http://127\.0\.0\.1:(\d+))", output)
        assert ui, output
        port = int(ui.group(2))
        assert httpx.get(f"{ui.group(1)}/api/health", timeout=5).json() is True
        assert "sandbox PFI:       mllp://127.0.0.1:" in output
        process.send_signal(stop)
        assert process.wait(timeout=60) == 0
        assert "stopped" in process.stdout.read()
        assert not _port_open(port), "the Prefect server outlived `ris up`"
    finally:
        if process.poll() is None:
            process.kill()
