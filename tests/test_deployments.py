"""prefect.yaml is the one definition of the engine's deployments: its entrypoints are the engine's flows,
the CLI starts runs by the names it declares, and the single box applies exactly those."""

from __future__ import annotations

from deployments import (
    ENTRYPOINTS,
    IDENTITY_FEED_DEPLOYMENT,
    WORK_POOL,
    deployment_name,
    specs,
)
from deployments.entrypoints import load_flow
from flows.names import ANNOUNCEMENT_FLOW, DELETION_FLOW, IDENTITY_FEED_FLOW, LIFECYCLE_FLOW, RETRY_FLOW

PER_REPORT = {LIFECYCLE_FLOW, RETRY_FLOW, ANNOUNCEMENT_FLOW, DELETION_FLOW}


def test_prefect_yaml_entrypoints_are_the_engine_flows():
    by_flow = {load_flow(spec["entrypoint"]).name: spec for spec in specs()}
    assert set(by_flow) == set(ENTRYPOINTS) >= PER_REPORT | {IDENTITY_FEED_FLOW}
    for flow_name, spec in by_flow.items():
        assert spec["entrypoint"] == ENTRYPOINTS[flow_name]
        assert spec["work_pool"]["name"] == WORK_POOL
    assert by_flow[IDENTITY_FEED_FLOW]["concurrency_limit"] == 1
    assert by_flow[IDENTITY_FEED_FLOW]["schedules"] == [{"cron": "* * * * *", "timezone": "Europe/Paris"}]


def test_the_cli_starts_runs_by_the_names_prefect_yaml_declares():
    names = {f"{load_flow(s['entrypoint']).name}/{s['name']}" for s in specs()}
    assert {deployment_name(flow_name) for flow_name in ENTRYPOINTS} == names


async def test_the_single_box_applies_every_deployment_of_prefect_yaml(prefect_server):
    from prefect.client.orchestration import get_client

    from deployments.apply import apply_deployments

    await apply_deployments("apply-test")
    async with get_client() as client:
        for name in map(deployment_name, ENTRYPOINTS):
            deployment = await client.read_deployment_by_name(name)
            assert deployment.work_pool_name == "apply-test"
        feed = await client.read_deployment_by_name(IDENTITY_FEED_DEPLOYMENT)
    (schedule,) = feed.schedules
    assert schedule.schedule.cron == "* * * * *" and schedule.schedule.timezone == "Europe/Paris"
    assert feed.global_concurrency_limit is not None and feed.global_concurrency_limit.limit == 1
