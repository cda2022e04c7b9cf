"""Another process's writer, for the transient-fault tests: a second connection holding SQLite's write lock
(BEGIN IMMEDIATE) until released, so the engine meets a real `database is locked`."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class WriteLock:
    def __init__(self, url: str) -> None:
        path = Path(url.removeprefix("sqlite:///"))
        self.connection: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False
        )
        self.connection.execute("BEGIN IMMEDIATE")
        self._guard = threading.Lock()

    def release(self) -> None:
        with self._guard:
            if self.connection is not None:
                self.connection.rollback()
                self.connection.close()
                self.connection = None

    def release_in(self, seconds: float) -> None:
        threading.Timer(seconds, self.release).start()
