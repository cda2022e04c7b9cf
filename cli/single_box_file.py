"""The note `ris up` leaves in its data folder so that other `ris` commands find its Prefect API, and the
auth string that API requires."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cli.api_auth import FROM_DATA_FOLDER, read_auth_string
from ris.site.engine import EngineConfig

NAME = "single-box.json"


@dataclass(frozen=True)
class RunningBox:
    api_url: str
    ui_url: str
    auth_string: str | None  # None when the box uses the site's own string (not kept in the data folder)


def note_path(data_dir: Path) -> Path:
    return data_dir / NAME


def write_note(data_dir: Path, api_url: str, ui_url: str, auth_source: str) -> Path:
    path = note_path(data_dir)
    note = {"api_url": api_url, "ui_url": ui_url, "pid": os.getpid(), "auth": auth_source}
    path.write_text(json.dumps(note), encoding="utf-8")
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_box(data_dir: Path | None = None) -> RunningBox | None:
    """The single box serving this data folder, None when none runs."""
    folder = data_dir or EngineConfig.from_env().data_dir
    try:
        note = json.loads(note_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not _alive(int(note.get("pid", 0))):
        return None
    auth = read_auth_string(folder) if note.get("auth") == FROM_DATA_FOLDER else None
    return RunningBox(note["api_url"], note["ui_url"], auth)


def adopt_running_single_box() -> None:
    """Point PREFECT_API_URL at the running single box of this data folder, unless it is set to another
    API, and give this process the box's auth string unless PREFECT_API_AUTH_STRING is set."""
    box = running_box()
    if box is None or (os.environ.get("PREFECT_API_URL") or box.api_url) != box.api_url:
        return
    os.environ["PREFECT_API_URL"] = box.api_url
    if box.auth_string and not os.environ.get("PREFECT_API_AUTH_STRING"):
        os.environ["PREFECT_API_AUTH_STRING"] = box.auth_string
