"""What sending tasks ask of the Prefect run they are in: their logger, and whether this try is the last."""

from __future__ import annotations

import logging

from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError
from prefect.logging import get_run_logger


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
