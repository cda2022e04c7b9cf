"""The `ris` command: the face of the engine for people and schedulers.

Before anything imports Prefect: telemetry off, and when `ris up` runs on this data folder, its Prefect
API becomes this process's, so `ris report validate` in another terminal starts runs on the served box.
"""

import os

from cli.single_box_file import adopt_running_single_box

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# The single box's server asks a client that lost a write race on SQLite to come back within a second
# (cli.prefect_server_app): allow enough such quick retries to ride out a burst.
os.environ.setdefault("PREFECT_CLIENT_MAX_RETRIES", "10")
adopt_running_single_box()
