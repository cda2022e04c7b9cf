"""The note `ris up` leaves in its data folder so that other `ris` commands find its Prefect API."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ris.config import EngineConfig

NAME = "single-box.json"


def note_path(data_dir: Path | None = None) -> Path:
    return (data_dir or EngineConfig.from_env().data_dir) / NAME


def write_note(data_dir: Path, api_url: str, ui_url: str) -> Path:
    path = note_path(data_dir)
    path.write_text(json.dumps({"api_url": api_url, "ui_url": ui_url, "pid": os.getpid()}), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def adopt_running_single_box() -> str | None:
    """Point PREFECT_API_URL at the running single box of this data folder, unless it is already set."""
    if os.environ.get("PREFECT_API_URL"):
        return None
    try:
        note = json.loads(note_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _alive(int(note.get("pid", 0))):
        return None
    os.environ["PREFECT_API_URL"] = note["api_url"]
    return note["api_url"]
