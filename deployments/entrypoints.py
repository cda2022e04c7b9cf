"""From a deployment's entrypoint to the flow object, by importing the engine's own module once.

Prefect's own loader executes the file again for each run; the worker imports `flows.<module>` like any
module, so every run of a process shares one flow object and one import."""

from __future__ import annotations

import importlib
from functools import cache

from prefect.flows import Flow

PACKAGE = "flows"


class NotAnEngineFlow(LookupError):
    """The entrypoint does not name a flow of the installed engine."""


@cache
def load_flow(entrypoint: str) -> Flow:
    """`flows/report_lifecycle.py:report_lifecycle` or `flows.report_lifecycle:report_lifecycle`."""
    path, _, name = entrypoint.partition(":")
    module_name = path.removesuffix(".py").replace("/", ".")
    if not name or module_name.split(".")[0] != PACKAGE:
        raise NotAnEngineFlow(
            f"entrypoint {entrypoint!r}: this worker runs the engine's flows ({PACKAGE}/) only"
        )
    try:
        flow = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise NotAnEngineFlow(f"entrypoint {entrypoint!r}: {exc}") from exc
    if not isinstance(flow, Flow):
        raise NotAnEngineFlow(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return flow
