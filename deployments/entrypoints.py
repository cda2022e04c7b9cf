"""From a deployment's entrypoint to the flow object, by importing the engine's own module once.

Prefect's own loader executes the file again for each run; the worker imports `flows.<module>` like any
module, so every run of a process shares one flow object and one import. The entrypoint names a module
of the installed engine (`flows.report_lifecycle:report_lifecycle`, as prefect.yaml writes it), never a
file: a file path is relative to the directory a deployment was made from, which the worker knows
nothing of."""

from __future__ import annotations

import importlib
import re
from functools import cache

from prefect.flows import Flow

PACKAGE = "flows"
# `flows.<module>:<function>`; also `flows/<module>.py:<function>`, what deployments made from the project
# root by earlier releases hold until they are applied again.
_ENTRYPOINT = re.compile(rf"^{PACKAGE}(?:\.(?P<module>\w+)|/(?P<file>\w+)\.py):(?P<name>\w+)$")


class NotAnEngineFlow(LookupError):
    """The entrypoint does not name a flow of the installed engine."""


@cache
def load_flow(entrypoint: str) -> Flow:
    """The flow at `flows.<module>:<function>` (or `flows/<module>.py:<function>`)."""
    match = _ENTRYPOINT.match(entrypoint)
    if match is None:
        raise NotAnEngineFlow(
            f"entrypoint {entrypoint!r}: this worker runs the engine's flows only, named "
            f"'{PACKAGE}.<module>:<function>' (the entrypoints of deployments/prefect.yaml)"
        )
    module_name = f"{PACKAGE}.{match['module'] or match['file']}"
    try:
        flow = getattr(importlib.import_module(module_name), match["name"])
    except (ImportError, AttributeError) as exc:
        raise NotAnEngineFlow(f"entrypoint {entrypoint!r}: {exc}") from exc
    if not isinstance(flow, Flow):
        raise NotAnEngineFlow(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return flow
