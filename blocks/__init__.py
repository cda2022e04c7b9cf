"""Prefect Blocks: one per external endpoint, plus the site settings. Each is saved under the name
`default` by `ris up` (or by an administrator) and loaded by the tasks."""

DEFAULT_NAME = "default"
