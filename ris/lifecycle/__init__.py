"""The rules of a report's life (DESIGN.md "Lifecycle"): its versions and states from validation to
deletion (`reports`), where a version goes and whether an INS may leave with it (`routing`), the deliveries
each version owes, planned once and never twice (`distribution`), and the patient's refusals that withhold
some of them (`refusals`). Channels carry what is planned here; the store keeps it."""
