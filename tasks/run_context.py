"""What sending tasks ask of the Prefect run they are in: their logger, whether this try is the last, their
retry policy, and the one way a send's outcome is recorded and logged."""

from __future__ import annotations

import logging
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
from ris.store import deliveries
from ris.store.db import unit_of_work


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


def retry_on(transient: type[Exception]) -> Callable[[Task, TaskRun, State], bool]:
    """A retry condition: retry on a fault that may pass (`transient`), never on a refusal."""

    def condition(_task: Task, _run: TaskRun, state: State) -> bool:
        return isinstance(state.data, transient)

    return condition


def sending_retries(retries: int, transient: type[Exception] = Hl7Transient) -> dict[str, Any]:
    """The retry policy of a task that sends to a peer: exponential backoff with jitter, transient faults
    only, and always the same message (the task re-reads it from the store)."""
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=2),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": retry_on(transient),
    }


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
    status = await record.sent(answer)
    log.info("%s %s (attempt %s)", what, sent_as, attempt)
    return status.value
