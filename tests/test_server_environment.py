"""The environment of the Prefect server processes the engine starts, composed in one place: the engine's
defaults under the site's own values, telemetry off and the auth string on top; in the HA topology the
site's Redis, named once, becomes every Prefect variable that needs it. And `ris server` refuses in one
line what it cannot run with."""

from __future__ import annotations

import subprocess

import pytest

from cli.prefect_server import BATCHED_WRITES, QUIET, REDIS_MODULES, server_environment, site_redis_url
from tests import pgcluster
from tests.cli_process import isolated_env, run_ris

REDIS = "redis://10.0.0.5:6379/0"


def test_the_single_box_server_gets_quiet_batched_writes_and_its_auth_string():
    env = server_environment(
        {"PATH": "/bin", "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE": "50", "DO_NOT_TRACK": "0"},
        auth_string="ris:s3cret",
        PREFECT_HOME="/data/prefect",
    )
    assert env["PATH"] == "/bin" and env["PREFECT_HOME"] == "/data/prefect"
    assert env["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_BATCH_SIZE"] == "50"  # the site's value wins
    assert (
        env["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]
        == BATCHED_WRITES["PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"]
    )
    assert {k: env[k] for k in QUIET} == QUIET  # telemetry stays off whatever the site set
    assert env["PREFECT_SERVER_API_AUTH_STRING"] == env["PREFECT_API_AUTH_STRING"] == "ris:s3cret"
    assert not any(k in env for k in REDIS_MODULES) and "PREFECT_SERVER_DOCKET_URL" not in env
    assert "PREFECT_SERVER_API_AUTH_STRING" not in server_environment({}, auth_string=None)


def test_in_ha_the_sites_redis_becomes_every_prefect_variable_that_needs_it():
    env = server_environment(
        {"PREFECT_SERVER_DOCKET_URL": "redis://10.0.0.5:6379/1"}, auth_string=None, redis_url=REDIS
    )
    assert {k: env[k] for k in REDIS_MODULES} == REDIS_MODULES
    assert env["PREFECT_REDIS_MESSAGING_URL"] == env["PREFECT_REDIS_WORKER_CLEANUP_QUEUE_URL"] == REDIS
    assert env["PREFECT_SERVER_DOCKET_URL"] == "redis://10.0.0.5:6379/1"  # the site chose another database
    # Several API servers: neither migrates nor registers block types at start (`ris server upgrade` does).
    assert (
        env["PREFECT_API_DATABASE_MIGRATE_ON_START"] == env["PREFECT_API_BLOCKS_REGISTER_ON_START"] == "false"
    )


@pytest.mark.parametrize(
    ("variables", "url"),
    [
        ({"RIS_REDIS_URL": REDIS, "PREFECT_REDIS_MESSAGING_HOST": "other"}, REDIS),
        ({"PREFECT_REDIS_MESSAGING_URL": "rediss://cache:6380/2"}, "rediss://cache:6380/2"),
        ({"PREFECT_REDIS_MESSAGING_HOST": "cache"}, "redis://cache:6379/0"),
        (
            {
                "PREFECT_REDIS_MESSAGING_HOST": "cache",
                "PREFECT_REDIS_MESSAGING_PORT": "6380",
                "PREFECT_REDIS_MESSAGING_DB": "3",
                "PREFECT_REDIS_MESSAGING_USERNAME": "marvin",
                "PREFECT_REDIS_MESSAGING_PASSWORD": "don't:panic@42",
                "PREFECT_REDIS_MESSAGING_SSL": "true",
            },
            "rediss://marvin:don%27t%3Apanic%4042@cache:6380/3",
        ),
        ({}, None),
    ],
    ids=["ris-url", "prefect-url", "prefect-host", "prefect-parts", "none"],
)
def test_the_sites_redis_is_ris_redis_url_or_prefects_own_settings(monkeypatch, variables, url):
    for name in ("RIS_REDIS_URL", "PREFECT_REDIS_MESSAGING_URL", "PREFECT_REDIS_MESSAGING_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert site_redis_url() == url


def test_prefects_own_redis_parts_are_folded_into_the_url_not_passed_beside_it():
    site = {"PREFECT_REDIS_MESSAGING_HOST": "cache", "PREFECT_REDIS_MESSAGING_PORT": "6380", "HOST": "box"}
    env = server_environment(site, auth_string=None, redis_url="redis://cache:6380/0")
    assert "PREFECT_REDIS_MESSAGING_HOST" not in env and "PREFECT_REDIS_MESSAGING_PORT" not in env
    assert env["HOST"] == "box"  # prefect-redis warns when a URL and its parts are both set


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


@pytest.mark.slow
def test_ris_server_refuses_in_one_line_what_it_cannot_run_with(tmp_path):
    postgres_url = "postgresql+asyncpg://postgres@127.0.0.1:9/prefect"
    base = isolated_env(tmp_path)
    no_auth = _one_line_error(run_ris(base, "server", "api"))
    assert "requires the site's auth string: set PREFECT_SERVER_API_AUTH_STRING" in no_auth
    auth = {**base, "PREFECT_SERVER_API_AUTH_STRING": "ris:x"}
    assert "on PostgreSQL" in _one_line_error(run_ris(auth, "server", "api"))
    with_db = {**auth, "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres_url}
    assert "`ris server services` needs the site's Redis" in _one_line_error(
        run_ris(with_db, "server", "services")
    )
    down = _one_line_error(run_ris({**with_db, "RIS_REDIS_URL": "redis://127.0.0.1:9/0"}, "server", "api"))
    assert down.startswith("error: Prefect's database (127.0.0.1:9/prefect) cannot be used:")
    if not pgcluster.available():
        return
    with pgcluster.PrivatePostgres() as postgres:
        postgres.create_database("prefect")
        fresh = {**with_db, "PREFECT_SERVER_DATABASE_CONNECTION_URL": postgres.url("prefect", "asyncpg")}
        unmigrated = _one_line_error(
            run_ris({**fresh, "RIS_REDIS_URL": "redis://127.0.0.1:9/0"}, "server", "api")
        )
        assert "is not migrated: run `ris server upgrade`" in unmigrated
        assert run_ris(fresh, "server", "upgrade", timeout=180).returncode == 0
        no_redis = _one_line_error(
            run_ris({**fresh, "RIS_REDIS_URL": "redis://127.0.0.1:9/0"}, "server", "api")
        )
        assert "the site's Redis (127.0.0.1:9/0) does not answer" in no_redis
