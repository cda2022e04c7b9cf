"""The Prefect API answers only to the engine's clients: the single box generates its auth string once
(0600 in the data folder), its server refuses whoever does not send it (block secrets, runs, events), and
the box hands it to its own worker, to the `ris` commands of its data folder and, through `ris env`, to
the `prefect` CLI; a command without it, or with a wrong one, gets one line saying what fixes it."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
import websockets

from cli.api_auth import FROM_DATA_FOLDER, FROM_ENVIRONMENT, auth_file, authorization, engine_auth_string
from cli.prefect_server import PrefectServer
from tests.cli_process import RIS, isolated_env, run_ris, start_up
from tests.conftest import ROOT


async def _post(client: httpx.AsyncClient, path: str, **kwargs: object) -> httpx.Response:
    """A POST as Prefect's own client makes it: the server on SQLite answers 503 with a Retry-After when it
    loses a write race under load, and the request is made again."""
    for _ in range(20):
        answer = await client.post(path, **kwargs)
        if answer.status_code != 503:
            return answer
        await asyncio.sleep(float(answer.headers.get("Retry-After", "0.5")))
    return answer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_the_box_string_is_made_once_kept_0600_and_a_sites_own_wins(tmp_path, monkeypatch):
    for name in ("PREFECT_SERVER_API_AUTH_STRING", "PREFECT_API_AUTH_STRING"):
        monkeypatch.delenv(name, raising=False)
    data = tmp_path / "data"
    made = engine_auth_string(data)
    assert made.source == FROM_DATA_FOLDER and made.value.startswith("ris:") and len(made.value) > 40
    assert stat.S_IMODE(auth_file(data).stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert engine_auth_string(data) == made  # reused at the next start
    assert engine_auth_string(tmp_path / "other").value != made.value

    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "site:client-side")
    assert engine_auth_string(data).value == "site:client-side"
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", "site:own")
    assert engine_auth_string(data) == type(made)("site:own", FROM_ENVIRONMENT)
    assert auth_file(data).read_text().strip() == made.value  # the site's string is not written down


@pytest.mark.slow
async def test_without_the_string_the_api_gives_no_secret_no_run_and_takes_no_event(tmp_path):
    auth = "ris:the-right-one"
    server = await PrefectServer(tmp_path / "prefect", _free_port(), auth_string=auth).start()
    try:
        api = server.api_url
        async with httpx.AsyncClient(base_url=api, timeout=30) as anyone:
            assert (await anyone.get("/health")).status_code == 200  # load balancers probe without it
            for headers in ({}, authorization("ris:a-wrong-one")):
                secrets = await anyone.post(
                    "/block_documents/filter", json={"include_secrets": True}, headers=headers
                )
                run = await anyone.post("/flow_runs/", json={"flow_id": str(uuid.uuid4())}, headers=headers)
                assert (secrets.status_code, run.status_code) == (401, 401)
            engine = authorization(auth)
            flow = await _post(anyone, "/flows/", json={"name": "auth-check"}, headers=engine)
            assert flow.status_code in (200, 201), flow.text
            run = await _post(anyone, "/flow_runs/", json={"flow_id": flow.json()["id"]}, headers=engine)
            assert run.status_code == 201, run.text
            filtered = await _post(
                anyone, "/block_documents/filter", json={"include_secrets": True}, headers=engine
            )
            assert filtered.status_code == 200

        # Events come in over a websocket: the server closes it on a wrong token (policy violation).
        socket_url = api.replace("http", "ws", 1) + "/events/in"
        for token, answer in (("ris:a-wrong-one", None), (auth, {"type": "auth_success"})):
            async with websockets.connect(socket_url, subprotocols=["prefect"]) as channel:
                await channel.send(json.dumps({"type": "auth", "token": token}))
                if answer is None:
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await channel.recv()
                    assert closed.value.rcvd.code == 1008
                else:
                    assert json.loads(await channel.recv()) == answer
    finally:
        server.stop()


@pytest.mark.slow
def test_the_single_box_hands_its_string_to_its_commands_and_to_nobody_else(tmp_path: Path):
    env = isolated_env(tmp_path / "box")
    process, output = start_up(env, "--prefect-port", str(_free_port()))
    try:
        assert "Press Ctrl-C to stop." in output, output
        data = tmp_path / "box"
        assert f"UI sign-in:        the API auth string, kept in {auth_file(data)}" in output
        assert stat.S_IMODE(auth_file(data).stat().st_mode) == 0o600
        api = json.loads((data / "single-box.json").read_text())["api_url"]
        secret = auth_file(data).read_text().strip()
        ui_settings = httpx.get(api.removesuffix("/api") + "/ui-settings", timeout=10).json()
        assert ui_settings["auth"] == "BASIC"  # the UI asks for the string

        # `ris env` in a shell: the prefect CLI then reaches the engine's API.
        shell = subprocess.run(
            ["bash", "-c", 'eval "$(python -m cli.main env)" && python -m prefect work-pool inspect ris'],
            cwd=ROOT,
            env={**env, "PATH": f"{Path(RIS[0]).parent}:{env['PATH']}"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert shell.returncode == 0 and "name='ris'" in shell.stdout, shell.stdout + shell.stderr
        printed = run_ris(env, "env").stdout.splitlines()
        assert printed == [f"export PREFECT_API_URL={api}", f"export PREFECT_API_AUTH_STRING={secret}"]
        nowhere = _one_line_error(run_ris(isolated_env(tmp_path / "elsewhere"), "env"))
        assert "no engine runs on the data folder" in nowhere and "`ris up`" in nowhere

        # A command with a wrong string, or none: one line, and what fixes it.
        wrong = _one_line_error(
            run_ris({**env, "PREFECT_API_AUTH_STRING": "ris:wrong"}, "hl7", "render", "R1")
        )
        assert "refused the request (401)" in wrong and "a wrong PREFECT_API_AUTH_STRING" in wrong
        assert 'eval "$(ris env)"' in wrong
        without = isolated_env(tmp_path / "elsewhere", PREFECT_API_URL=api)
        assert "no PREFECT_API_AUTH_STRING" in _one_line_error(run_ris(without, "hl7", "render", "R1"))
        refused_worker = _one_line_error(run_ris({**env, "PREFECT_API_AUTH_STRING": "ris:wrong"}, "worker"))
        assert "refused the request (401)" in refused_worker

        # With it (from the data folder), a worker of this box attaches and runs.
        worker_log = tmp_path / "worker.log"
        with worker_log.open("w") as out:
            worker = subprocess.Popen(
                [*RIS, "worker", "--name", "auth-worker"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 120
            while "Worker 'auth-worker' started" not in worker_log.read_text():
                assert worker.poll() is None and time.monotonic() < deadline, worker_log.read_text()
                time.sleep(0.3)
        finally:
            worker.send_signal(signal.SIGINT)
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
