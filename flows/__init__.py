"""Prefect flows: they orchestrate tasks and hold no domain logic."""
