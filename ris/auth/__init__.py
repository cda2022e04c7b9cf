"""Authentication of the professionals who act through the engine: Pro Santé Connect login (RIS.PSC.01) and
the pool of RPPS-Rang certificates (RIS.AUTH.01–02, RIS.MSS.24)."""
