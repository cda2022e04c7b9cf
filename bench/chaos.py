"""Faults during a burst (`python -m bench.lifecycle --chaos`): what a site lives with, at fixed moments
after the first report was validated. The bench then counts what it cost: report runs that ended Failed
or Crashed, copies the sandbox PFI filed twice, and the latency.

- a worker killed (SIGKILL): its runs are taken over by the others once its lease ran out;
- an API server killed (SIGKILL) and started again (`ha` only: the load balancer passes over it);
- PostgreSQL restarted (fast: every connection cut), as in a failover.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import psutil

from bench.sites import HighAvailability, OneServer

KILL_WORKER_AT_S = 8.0
RESTART_API_SERVER_AT_S = 16.0
RESTART_DATABASE_AT_S = 28.0


@dataclass
class Chaos:
    site: OneServer | HighAvailability
    roots: list[psutil.Process]  # the meter's processes: restarted ones replace the killed
    began: float = field(default_factory=time.perf_counter)
    done: list[str] = field(default_factory=list)

    async def _at(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, self.began + seconds - time.perf_counter()))

    def _note(self, what: str) -> None:
        self.done.append(f"{time.perf_counter() - self.began:.0f} s: {what}")

    async def inflict(self) -> list[str]:
        await self._at(KILL_WORKER_AT_S)
        await asyncio.to_thread(self.site.processes.kill, "worker-1")
        self._note("worker-1 killed (SIGKILL)")
        if isinstance(self.site, HighAvailability):
            await self._at(RESTART_API_SERVER_AT_S)
            restarted = await asyncio.to_thread(self.site.restart_api_server, 0)
            self.roots.append(restarted)
            self._note("API server 0 killed (SIGKILL) and started again")
        await self._at(RESTART_DATABASE_AT_S)
        await asyncio.to_thread(self.site.postgres.restart)
        self.roots.append(psutil.Process(self.site.postgres.postmaster_pid()))
        self._note("PostgreSQL restarted (fast)")
        return self.done
