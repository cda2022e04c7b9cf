"""Where the engine keeps its state: read from the environment, with embedded defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ris"


def private_dir(path: Path) -> Path:
    """Create `path` (and its missing parents) readable by this user only; an existing folder is left as
    its owner set it."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)  # mkdir's mode is filtered by the umask
    return path


@dataclass(frozen=True)
class EngineConfig:
    """Process-level configuration. Site settings (facility, RGPD text, delays) live in `ris.settings`."""

    data_dir: Path
    database_url: str

    @classmethod
    def from_env(cls) -> EngineConfig:
        data_dir = Path(os.environ.get("RIS_DATA_DIR") or default_data_dir())
        url = os.environ.get("RIS_DATABASE_URL") or f"sqlite:///{data_dir / 'ris.db'}"
        return cls(data_dir=data_dir, database_url=url)
