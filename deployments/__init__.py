"""Deployments of the flows: `prefect.yaml` for a work pool, `serve` for the single-box mode."""
