"""Flow names, apart from the flow code so that the CLI can start runs without importing the flows."""

LIFECYCLE_FLOW = "report-lifecycle"
RETRY_FLOW = "delivery-retry"
IDENTITY_FEED_FLOW = "identity-feed"
ANNOUNCEMENT_FLOW = "announcement-release"
DELETION_FLOW = "report-deletion"
REMINDER_FLOW = "report-reminders"
