"""Prefect Blocks: one per external endpoint, plus the site settings. Each is saved under the name
`default` (by an administrator in the Prefect UI, or by `ris demo` for the sandbox) and loaded by the
tasks: once per flow run, so that one run sees one configuration and a change made in the UI applies
from the next run on. A block that was never saved is refused with what to do, never replaced by
defaults: documents built with another facility's identity would be kept for good.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

from prefect.blocks.core import Block
from prefect.context import FlowRunContext, TaskRunContext
from pydantic import ValidationError

from ris.operations.scheduled import CONFIGURE, NotConfigured

DEFAULT_NAME = "default"
B = TypeVar("B", bound=Block)
_RUN_CACHE_SIZE = 512  # runs in flight on one worker, with a wide margin
_per_run: OrderedDict[tuple[str, str, str], Block] = OrderedDict()


class BlockNotSaved(NotConfigured):
    """A block the engine needs is not saved on the Prefect server it talks to. A scheduled job that
    meets it has nothing to do (ris.operations.scheduled); anything else fails with its text."""

    def __init__(self, block_cls: type[Block], name: str) -> None:
        super().__init__(
            f"the {block_cls.get_block_type_name()} block {name!r} is not saved on this Prefect server: "
            f"create it {CONFIGURE}, or run `ris demo` for the sandbox configuration"
        )


def _current_run_id() -> str | None:
    flow_run = FlowRunContext.get()
    if flow_run is not None and flow_run.flow_run is not None:
        return str(flow_run.flow_run.id)
    task_run = TaskRunContext.get()
    if task_run is not None and task_run.task_run.flow_run_id is not None:
        return str(task_run.task_run.flow_run_id)
    return None


async def load_saved(block_cls: type[B], name: str = DEFAULT_NAME) -> B:
    """The saved block, read once per flow run (outside a run: read now); BlockNotSaved if absent."""
    run_id = _current_run_id()
    key = (run_id or "", block_cls.get_block_type_slug(), name)
    if run_id is not None and key in _per_run:
        _per_run.move_to_end(key)
        return _per_run[key]  # type: ignore[return-value]
    try:
        block = await block_cls.aload(name)
    except ValidationError:  # saved, but no longer valid: say so as it is
        raise
    except ValueError as exc:  # Prefect's answer for "no block document of that name"
        raise BlockNotSaved(block_cls, name) from exc
    if run_id is not None:
        _per_run[key] = block
        while len(_per_run) > _RUN_CACHE_SIZE:
            _per_run.popitem(last=False)
    return block
