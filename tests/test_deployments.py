"""prefect.yaml is the one definition of the engine's deployments: its entrypoints are the engine's flows,
named by module path (never by a file path that depends on the current directory), the CLI starts runs by
the names it declares, and the single box applies exactly those, from whatever directory it runs in."""

from __future__ import annotations

import pytest

from deployments import (
    DEPLOYMENTS,
    ENTRYPOINTS,
    IDENTITY_FEED_DEPLOYMENT,
    WORK_POOL,
    deployment_name,
    specs,
)
from deployments.entrypoints import NotAnEngineFlow, load_flow
from flows import names
from flows.names import (
    ANNOUNCEMENT_FLOW,
    DELETION_FLOW,
    FLOW_NAMES,
    IDENTITY_FEED_FLOW,
    LIFECYCLE_FLOW,
    RETRY_FLOW,
)

PER_REPORT = {LIFECYCLE_FLOW, RETRY_FLOW, ANNOUNCEMENT_FLOW, DELETION_FLOW}


def test_prefect_yaml_entrypoints_are_the_engine_flows_by_module_path():
    by_flow = {load_flow(spec["entrypoint"]).name: spec for spec in specs()}
    assert set(by_flow) == set(ENTRYPOINTS) >= PER_REPORT | {IDENTITY_FEED_FLOW}
    for flow_name, spec in by_flow.items():
        assert spec["flow_name"] == flow_name  # the name the CLI finds the deployment by
        assert spec["entrypoint"] == ENTRYPOINTS[flow_name]
        assert spec["entrypoint"].startswith("flows.") and ".py" not in spec["entrypoint"]
        assert spec["work_pool"]["name"] == WORK_POOL
    assert by_flow[IDENTITY_FEED_FLOW]["concurrency_limit"] == 1
    assert by_flow[IDENTITY_FEED_FLOW]["schedules"] == [{"cron": "* * * * *", "timezone": "Europe/Paris"}]


def test_flow_names_are_defined_once_in_flows_names_and_prefect_yaml_agrees():
    """flows.names is the one definition of the flow names; prefect.yaml's `flow_name` of each deployment
    (the CLI's key, beside the entrypoint `prefect deploy` needs) is one of them, each exactly once."""
    constants = {value for key, value in vars(names).items() if key.endswith("_FLOW")}
    assert len(FLOW_NAMES) == len(set(FLOW_NAMES)) and set(FLOW_NAMES) == constants
    assert sorted(spec["flow_name"] for spec in specs()) == sorted(FLOW_NAMES)
    assert set(DEPLOYMENTS) == set(ENTRYPOINTS) == set(FLOW_NAMES)


def test_prefects_own_loader_reads_the_same_entrypoints():
    """`prefect deploy` loads each entrypoint itself (prefect.flows.load_flow_from_entrypoint)."""
    from prefect.flows import load_flow_from_entrypoint

    for spec in specs():
        assert load_flow_from_entrypoint(spec["entrypoint"]) is load_flow(spec["entrypoint"])


def test_the_worker_refuses_what_is_not_an_engine_flow():
    assert load_flow("flows/report_lifecycle.py:report_lifecycle").name == LIFECYCLE_FLOW  # earlier releases
    for entrypoint in (
        "../../srv/ris/flows/report_lifecycle.py:report_lifecycle",  # a path relative to another directory
        "/srv/ris/flows/report_lifecycle.py:report_lifecycle",
        "os:system",
        "flows.report_lifecycle",
        "flows.names:LIFECYCLE_FLOW",
    ):
        with pytest.raises(NotAnEngineFlow, match="entrypoint"):
            load_flow(entrypoint)


def test_the_cli_starts_runs_by_the_names_prefect_yaml_declares():
    names = {f"{load_flow(s['entrypoint']).name}/{s['name']}" for s in specs()}
    assert {deployment_name(flow_name) for flow_name in ENTRYPOINTS} == names


async def test_the_single_box_applies_every_deployment_of_prefect_yaml(prefect_server, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client

    from deployments.apply import apply_deployments

    monkeypatch.chdir(tmp_path)  # not the checkout: a service manager starts `ris up` anywhere
    await apply_deployments("apply-test")
    async with get_client() as client:
        for flow_name, entrypoint in ENTRYPOINTS.items():
            deployment = await client.read_deployment_by_name(deployment_name(flow_name))
            assert deployment.work_pool_name == "apply-test"
            assert deployment.entrypoint == entrypoint and deployment.path is None
        feed = await client.read_deployment_by_name(IDENTITY_FEED_DEPLOYMENT)
    (schedule,) = feed.schedules
    assert schedule.schedule.cron == "* * * * *" and schedule.schedule.timezone == "Europe/Paris"
    assert feed.global_concurrency_limit is not None and feed.global_concurrency_limit.limit == 1
