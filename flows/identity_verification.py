"""identity-verification: one run per INS received from another identification domain (INS rules 30, 52),
started by the PAM-FR listener once the message is acknowledged; its name carries the verification id."""

from __future__ import annotations

from prefect import flow

from flows.names import IDENTITY_VERIFICATION_FLOW
from tasks.identity_verification import verify_ins


@flow(name=IDENTITY_VERIFICATION_FLOW, flow_run_name="identity-verification-{verification_id}")
async def identity_verification(verification_id: int) -> str:
    """Verify the INS kept apart in InsVerification `verification_id` with INSi and apply the answer."""
    return await verify_ins(verification_id)
