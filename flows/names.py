"""The engine's flow names, defined here once: each flow takes its name from here, `deployments/prefect.yaml`
declares each flow's deployment under it (its `flow_name`, beside the entrypoint `prefect deploy` needs;
tests/test_deployments.py checks both agree with this module), and the CLI finds a deployment by it without
importing the flows."""

LIFECYCLE_FLOW = "report-lifecycle"
RETRY_FLOW = "delivery-retry"
IDENTITY_FEED_FLOW = "identity-feed"
ANNOUNCEMENT_FLOW = "announcement-release"
DELETION_FLOW = "report-deletion"
REMINDER_FLOW = "report-reminders"
DIRECTORY_IMPORT_FLOW = "directory-import"
DASHBOARD_FLOW = "dashboard"
EXPORT_FLOW = "portability-export"
MSS_RECEIPTS_FLOW = "mss-receipts"
IDENTITY_VERIFICATION_FLOW = "identity-verification"
IDENTITY_WORKLIST_FLOW = "identity-worklist"
MSS_SEND_FLOW = "mss-send"

# Every flow of the engine: each has its one deployment in prefect.yaml.
FLOW_NAMES = (
    LIFECYCLE_FLOW,
    RETRY_FLOW,
    IDENTITY_FEED_FLOW,
    ANNOUNCEMENT_FLOW,
    DELETION_FLOW,
    REMINDER_FLOW,
    DIRECTORY_IMPORT_FLOW,
    DASHBOARD_FLOW,
    EXPORT_FLOW,
    MSS_RECEIPTS_FLOW,
    IDENTITY_VERIFICATION_FLOW,
    IDENTITY_WORKLIST_FLOW,
    MSS_SEND_FLOW,
)
