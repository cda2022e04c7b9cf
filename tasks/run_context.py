"""What sending tasks ask of the Prefect run they are in: their logger, and whether this try is the last."""

from __future__ import annotations

import logging
from typing import Any

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger
from prefect.states import State
from prefect.tasks import exponential_backoff

from ris.channels.hl7.client import Hl7Transient


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


def transient_only(_task: Task, _run: TaskRun, state: State) -> bool:
    """Retry on a fault that may pass (AE, no ACK in time, connection refused), never on a refusal."""
    return isinstance(state.data, Hl7Transient)


def sending_retries(retries: int) -> dict[str, Any]:
    """The retry policy of a task that sends over MLLP: exponential backoff with jitter, transient faults
    only, and always the same message (the task re-reads it from the store)."""
    return {
        "retries": retries,
        "retry_delay_seconds": exponential_backoff(backoff_factor=2),
        "retry_jitter_factor": 0.5,
        "retry_condition_fn": transient_only,
    }
