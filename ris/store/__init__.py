"""The ground floor: the database's tables and migrations (`models`, `migrations`), the engine's only
writers of reports, documents, deliveries and claims, the append-only audit trail and its sealed hash
chain (`audit`, `audit_chain`), and the retry of transient database faults (`transient`). It imports
nothing of `ris` above it but the engine's environment (`ris.site.engine`)."""
