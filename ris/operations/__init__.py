"""What operations teams and administrators run over the lifecycle: reminders of reports left provisional
(`reminders`), the retry of failed deliveries and of PFI relays (`retry`, `retry_relay`), the dashboard and
a run's summary without health data (`dashboard`, `summary`), the event of a delivery's outcome
(`delivery_events`), which scheduled flows a site has configured (`scheduled`), and the demo's sample data
(`demo`)."""
