"""Prefect tasks, one module per lifecycle step: load from the store, call `ris`, record the outcome."""
