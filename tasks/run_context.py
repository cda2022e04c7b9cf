"""What tasks ask of the Prefect run they are in: their logger, whether this try is the last, their retry
policy (a transient database fault is always retried), and the one way a send's outcome is recorded and
logged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.states import State
from prefect.tasks import exponential_backoff

from ris.channels.hl7.client import Hl7Transient
from ris.operations.scheduled import NotConfigured
from ris.site.engine import EngineConfig
from ris.store import deliveries
from ris.store.db import unit_of_work
from ris.store.transient import TransientDatabaseError, backoff_s, describe, is_transient

_engine_log = logging.getLogger("ris.engine_errors")  # the worker's own log (stderr), not the Prefect API

# Task retries after a unit of work ran out of its own attempts: 2, 4, 8, 16, 32 s (with jitter), so a
# database away for about a minute (a restart, a failover) costs a report's run some time, not its end.
STORE_RETRIES = 5


def final_attempt() -> bool:
    """True on the last try Prefect will make; outside a task run the caller decides, so False."""
    context = TaskRunContext.get()
    return context is not None and context.task_run.run_count > context.task.retries


def run_logger(fallback: str) -> logging.Logger | logging.LoggerAdapter:
    """The task run's logger (its lines reach the Prefect UI), or a plain logger when called via `.fn()`."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(fallback)


Faults = type[Exception] | tuple[type[Exception], ...]


def retry_on(transient: Faults = ()) -> Callable[[Task, TaskRun, State], bool]:
    """A retry condition: retry on a fault that may pass (`transient`, or a transient database fault,
    ris.store.transient), never on a refusal, a rule or a bug."""

    def condition(_task: Task, _run: TaskRun, state: State) -> bool:
        return isinstance(state.data, transient) or is_transient(state.data)

    return condition


def store_retries(retries: int = STORE_RETRIES, transient: Faults = ()) -> dict[str, Any]:
    """The retry policy of a task that works on the store: exponential backoff with jitter, on transient
    database faults (and `transient`) only. Every task re-reads what it needs from the store, and a unit
    of work that failed stored nothing, so a retried task does what the failed try would have done."""
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=2),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_on(transient),
    }


def sending_retries(retries: int, transient: Faults = Hl7Transient) -> dict[str, Any]:
    """The retry policy of a task that sends to a peer: as `store_retries`, on the peer's transient faults
    too, and always the same message (the task re-reads it from the store)."""
    return store_retries(retries, transient)


T = TypeVar("T")


@dataclass(frozen=True)
class SendRecorders:
    """How one kind of send records its outcome, each in its own unit of work; each returns the new status.
    `transient` gets the reason and whether this was the last try."""

    refused: Callable[[str], Awaitable[Enum]]
    transient: Callable[[str, bool], Awaitable[Enum]]
    sent: Callable[[Any], Awaitable[Enum]]

    @classmethod
    def for_delivery(cls, delivery_id: int, sent: Callable[[Any], Awaitable[Enum]]) -> SendRecorders:
        """A Delivery row's: a refusal and a transient fault are recorded alike on every channel."""
        return cls(
            refused=lambda reason: unit_of_work(deliveries.record_refused, delivery_id, reason),
            transient=lambda reason, give_up: unit_of_work(
                deliveries.record_transient, delivery_id, reason, give_up=give_up
            ),
            sent=sent,
        )


async def settle_send(
    send: Callable[[], Awaitable[T]],
    record: SendRecorders,
    *,
    what: str,
    attempt: int,
    refused: type[Exception],
    transient: type[Exception],
    may_retry: bool = True,
    refused_as: str = "refused",
    sent_as: str = "sent",
) -> str:
    """Run `send` and record what came of it: a refusal is final; a transient fault is recorded then
    re-raised for Prefect to retry, unless this is the last try (or `may_retry` is false); success is
    recorded with the peer's answer. Returns the status value. `what` names the row by id only (no health
    data in logs)."""
    log = run_logger(__name__)
    try:
        answer = await send()
    except refused as exc:
        reason = getattr(exc, "reason", str(exc))
        status = await record.refused(reason)
        log.error("%s %s: %s", what, refused_as, reason)
        return status.value
    except transient as exc:
        reason = getattr(exc, "reason", str(exc))
        give_up = final_attempt() or not may_retry
        status = await record.transient(reason, give_up)
        if give_up:
            log.error("%s is %s after %s attempts: %s", what, status.value, attempt, reason)
            return status.value
        log.warning("%s attempt %s: %s (will retry)", what, attempt, reason)
        raise
    status = await _record_delivered(lambda: record.sent(answer), what, log)
    log.info("%s %s (attempt %s)", what, sent_as, attempt)
    return status.value


def is_retried(exc: BaseException, transient: Faults) -> bool:
    """What a send task's retry condition retries (`retry_on`): the peer's transient faults, and the
    database's."""
    return isinstance(exc, transient) or is_transient(exc)


async def fail_unexpected(delivery_id: int, what: str, exc: Exception) -> str:
    """The safety net of a send task: an error neither a refusal nor a fault that may pass ends the copy
    `failed` with a reason naming the error's type (its text may quote stored data: it goes to this
    process's own log, never to Prefect), instead of failing the run with the copy pending for ever.
    Returns the copy's status."""
    _engine_log.error("%s: engine error, not sent", what, exc_info=exc)
    run_logger(__name__).error("%s failed: engine error %s, not retried", what, type(exc).__name__)
    told = str(exc) if isinstance(exc, NotConfigured) else f"{type(exc).__name__}, see the worker's log"
    reason = f"engine error, not sent ({told}); once it is corrected, `ris delivery retry`"
    return (await unit_of_work(deliveries.record_engine_error, delivery_id, reason)).value


async def send_or_fail(
    send: Callable[[int], Awaitable[str]], delivery_id: int, what: str, transient: Faults
) -> str:
    """Run a send task's body with its safety net: a fault that may pass is raised for the task's retry,
    any other error ends the copy `failed` (`fail_unexpected`), so the report's other copies go on."""
    try:
        return await send(delivery_id)
    except Exception as exc:
        if is_retried(exc, transient):
            raise
        return await fail_unexpected(delivery_id, what, exc)


async def _record_delivered(
    record: Callable[[], Awaitable[Enum]], what: str, log: logging.Logger | logging.LoggerAdapter
) -> Enum:
    """Record a send the peer took. Failing here would let Prefect retry the task, which sends again: so
    a transient database fault is waited out for longer than a unit's own attempts allow, up to
    RIS_DB_RECORD_PATIENCE_SECONDS; only past that is the task retried (its send carries the same
    idempotency key, which the peer recognises)."""
    policy = EngineConfig.from_env().db_retry
    deadline = time.monotonic() + policy.record_patience_s
    pause = max(policy.max_delay_s, 1.0)
    round_ = 1
    while True:
        try:
            return await record()
        except TransientDatabaseError as exc:
            if time.monotonic() >= deadline:
                raise
            delay = backoff_s(round_, pause, 4 * pause)
            log.warning("%s sent, not recorded yet (%s): trying again in %.1f s", what, describe(exc), delay)
        await asyncio.sleep(delay)
        round_ += 1
