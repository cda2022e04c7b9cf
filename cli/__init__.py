"""The `ris` command: the face of the engine for people and schedulers."""
