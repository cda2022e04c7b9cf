"""The domain: every rule of the engine, in plain Python (no Prefect). Its folders stand on floors, the
store at the bottom, each importing only its own floor or those below (README "The domain, `ris/`, by
floor"; tests/test_ris_layers.py)."""
