"""`ris env`: the shell lines that point the `prefect` CLI and scripts at the running engine of this data
folder, credential included: `eval "$(ris env)"`."""

from __future__ import annotations

import os
import shlex

import typer

from cli.common import fail
from cli.single_box_file import running_box
from ris.site.engine import EngineConfig

NOT_RUNNING = 3


def register(app: typer.Typer) -> None:
    @app.command("env")
    def env() -> None:
        """Print `export PREFECT_API_URL=…` and `export PREFECT_API_AUTH_STRING=…` for the engine running
        on this data folder (RIS_DATA_DIR), for `eval "$(ris env)"`."""
        data_dir = EngineConfig.from_env().data_dir
        box = running_box(data_dir)
        if box is None:
            fail(
                f"no engine runs on the data folder {data_dir}: start it with `ris up`, or set RIS_DATA_DIR "
                "to the data folder of the running one",
                code=NOT_RUNNING,
            )
        auth = box.auth_string or os.environ.get("PREFECT_API_AUTH_STRING")
        if not auth:
            fail(
                f"the engine on {data_dir} requires the site's own auth string "
                "(PREFECT_SERVER_API_AUTH_STRING), which is not kept in the data folder: set "
                "PREFECT_API_AUTH_STRING to it",
                code=NOT_RUNNING,
            )
        typer.echo(f"export PREFECT_API_URL={shlex.quote(box.api_url)}")
        typer.echo(f"export PREFECT_API_AUTH_STRING={shlex.quote(auth)}")
