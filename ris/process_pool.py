"""The process pool for CPU-bound work (the PDF/A rendering and its check): one per engine process.

Why processes and not threads: fpdf2 corrupts two renders that overlap in threads of one process, and
pikepdf's PDF/A check records warnings process-wide, so a warning raised meanwhile by the event loop
(an unclosed socket) fails a valid PDF (library-notes.md §2.x). A pool process runs one job at a time
with nothing beside it; the pool also puts every core to work while the event loop keeps serving I/O.

Processes are spawned (never forked from a process that runs threads), pre-started and warmed so the
first report pays no start-up, and replaced after `max_tasks_per_child` jobs so memory stays flat. Each
exits when its engine process is gone, even killed with SIGKILL: a spawned child holds both ends of the
job queue's pipe, so it would otherwise wait for work for ever, orphaned.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)

# Imported by each pool process when it starts, so that no job pays for the imports.
WARM_MODULES = ("ris.documents",)
MAX_TASKS_PER_CHILD = 500
PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)  # the engine died: nothing will ever read this process's results


def _start_child(modules: tuple[str, ...], parent_pid: int) -> None:
    threading.Thread(
        target=_exit_with_parent, args=(parent_pid,), name="exit-with-parent", daemon=True
    ).start()
    for name in modules:
        importlib.import_module(name)


def default_size() -> int:
    """One process per core the engine may use (RIS_RENDER_PROCESSES overrides)."""
    configured = os.environ.get("RIS_RENDER_PROCESSES")
    if configured:
        return max(1, int(configured))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class ProcessPool:
    def __init__(self, size: int | None = None, *, max_tasks_per_child: int = MAX_TASKS_PER_CHILD) -> None:
        self.size = size or default_size()
        self.max_tasks_per_child = max_tasks_per_child
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        return self._executor is not None

    def start(self) -> ProcessPool:
        """Spawn every process now and wait until each has imported the rendering code."""
        with self._lock:
            if self._executor is None:
                executor = ProcessPoolExecutor(
                    self.size,
                    mp_context=multiprocessing.get_context("spawn"),
                    max_tasks_per_child=self.max_tasks_per_child,
                    initializer=_start_child,  # also runs in the processes that replace retired ones
                    initargs=(WARM_MODULES, os.getpid()),
                )
                # Each submission beyond the live processes spawns one more: `size` of them start all.
                for future in [executor.submit(os.getpid) for _ in range(self.size)]:
                    future.result()
                self._executor = executor
        return self

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a pool process; `fn` and its arguments must pickle. A pool whose process died
        (killed, out of memory) is replaced once and the job tried again."""
        for attempt in (1, 2):
            executor = self._executor or self.start()._executor
            try:
                return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)
            except BrokenProcessPool:
                if attempt == 2:
                    raise
                log.warning("a rendering process died; starting a new pool")
                self._replace(executor)
        raise AssertionError("unreachable")

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                self._executor = None
        broken.shutdown(wait=False, cancel_futures=True)

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


_shared: ProcessPool | None = None
_shared_lock = threading.Lock()


def shared() -> ProcessPool:
    """This process's pool: the worker starts it at its own start; anything else starts it at first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ProcessPool()
        return _shared


def shutdown_shared() -> None:
    global _shared
    with _shared_lock:
        pool, _shared = _shared, None
    if pool is not None:
        pool.shutdown()
