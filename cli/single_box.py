"""Everything on one box: the engine's database, a local Prefect server, the `ris` work pool with the
deployments of prefect.yaml, one engine worker in this process, and the receipt and identity listeners.

The engine runs with the site's saved configuration (the blocks an administrator saved in the Prefect
UI). Only with `sandbox=True` (`ris demo`, `ris up --sandbox`) does it start the sandbox peers and save
the demo site settings and endpoint blocks pointing at them; `routes="direct"` then has the engine send
the MSSanté copies itself through the sandbox MSSanté operator and feed the sandbox DMP itself (ITI-41,
what it received kept under `dmp-received/`) instead of the PFI. Leaving the
`async with` stops all of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from blocks import DEFAULT_NAME, BlockNotSaved
from blocks.dmp import DmpEndpoint
from blocks.insi import InsiEndpoint
from blocks.mail import MailSender
from blocks.mssante import MssanteOperator
from blocks.pfi import PfiEndpoint, load_pfi_endpoint
from blocks.site import SiteSettingsBlock, load_site_settings
from cli.api_auth import FROM_DATA_FOLDER, AuthString, auth_file, engine_auth_string
from cli.prefect_server import QUIET, PrefectServer
from cli.receipt_events import emit_applied
from cli.single_box_file import write_note
from deployments import WORK_POOL
from deployments.alerts import set_up_alerts
from deployments.apply import apply_deployments
from deployments.runs import start_identity_verification
from deployments.worker import RisWorker
from ris.channels.hl7.listener import ZamListener
from ris.hl7v2.ack_writer import Party
from ris.identity.insi_client import bundled_wsdl
from ris.identity.intake import IntakePolicy, PamIntake
from ris.site.listeners import ConfiguredPeer, ListenerSettingsError
from ris.site.settings import DmpSending, MssanteSending, SiteSettings
from ris.store import db
from sandbox.dmp import DmpSandbox
from sandbox.insi import InsiSandbox
from sandbox.mssante import CLIENT_PASSPHRASE, MssSandbox
from sandbox.pfi import PfiSandbox
from sandbox.smtp import SmtpSandbox

log = logging.getLogger("ris.single_box")
SANDBOX_IDAM = "SANDBOX-IDAM"
SANDBOX_PFI = ("PFI-SANDBOX", "PFI-DEMO")  # the sandbox PFI's MSH-3 / MSH-4
BLOCK_TYPES = (SiteSettingsBlock, PfiEndpoint, InsiEndpoint, MailSender, MssanteOperator, DmpEndpoint)
# Runs in flight at once. The Prefect server on SQLite serialises its writes; since its transactions take
# the write lock first (cli.prefect_server_app), more runs queue instead of colliding, and their waits on
# the PFI and the rendering pool overlap: 60 reports at once ran at 1.47 reports/s with 8, 1.35 with 4.
SINGLE_BOX_LIMIT = 8


@dataclass
class Endpoints:
    ui_url: str
    api_url: str
    sign_in: str  # what the UI asks for: where the API's auth string is
    zam: str
    pam: str
    pfi: str | None = None  # the sandbox peers, in sandbox mode
    insi: str | None = None
    smtp: str | None = None
    mss: str | None = None
    dmp: str | None = None


async def _flush_to_prefect() -> None:
    """Send the events and logs this process still queues (receipt events from the ZAM listener) while
    the server runs: at interpreter exit Prefect would wait for a server already stopped, for ever."""
    for service in (EventsWorker, APILogWorker):
        await service.drain_all(timeout=10)


class SingleBox:
    def __init__(
        self,
        data_dir: Path,
        database_url: str,
        *,
        prefect_port: int = 4200,
        sandbox: bool = False,
        routes: str = "pfi",
    ) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.prefect_port = prefect_port
        self.sandbox = sandbox
        self.routes = routes
        self.mss: MssSandbox | None = None
        self.dmp: DmpSandbox | None = None
        self.pfi: PfiSandbox | None = None
        self.insi: InsiSandbox | None = None
        self.smtp: SmtpSandbox | None = None
        self.endpoints: Endpoints | None = None
        self.missing: list[str] = []  # what the site has not configured yet, in the user's words
        self.worker: RisWorker | None = None
        self._stack = AsyncExitStack()
        self._serving: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SingleBox:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        try:
            if self._serving is not None:
                self._serving.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._serving
        finally:
            await self._stack.aclose()  # the Prefect server and the peers stop whatever happened above

    async def _start(self) -> None:
        os.environ.update(QUIET)
        os.environ["RIS_DATA_DIR"] = str(self.data_dir)
        os.environ["RIS_DATABASE_URL"] = self.database_url
        db.upgrade(self.database_url)

        # The API answers only to the engine's clients: this process (the worker, the listeners) and the
        # `ris` commands of this data folder (they read the string the note points to).
        auth = engine_auth_string(self.data_dir)
        server = PrefectServer(self.data_dir / "prefect", self.prefect_port, auth_string=auth.value)
        await server.start()
        self._stack.callback(server.stop)
        self._stack.push_async_callback(_flush_to_prefect)  # unwinds before the server stops
        # In the environment too: Prefect's event and log threads read their settings from it.
        os.environ.update(PREFECT_API_URL=server.api_url, PREFECT_API_AUTH_STRING=auth.value)
        note = write_note(self.data_dir, server.api_url, server.ui_url, auth.source)  # for other terminals
        self._stack.callback(note.unlink, missing_ok=True)
        self._stack.enter_context(
            temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_API_AUTH_STRING: auth.value})
        )
        for block_type in BLOCK_TYPES:  # so that the UI offers them in its catalogue
            await block_type.register_type_and_schema()

        if self.sandbox:
            zam, pam = await self._start_sandbox()
        else:
            zam, pam = await self._start_listeners()

        await apply_deployments(WORK_POOL)
        await set_up_alerts()
        self.worker = RisWorker(WORK_POOL, name=f"single-box-{os.getpid()}", limit=SINGLE_BOX_LIMIT)
        self._serving = asyncio.create_task(self.worker.start(printer=log.info))
        await self._until_worker_ready()
        self.endpoints = Endpoints(
            ui_url=server.ui_url,
            api_url=server.api_url,
            sign_in=_sign_in(auth, self.data_dir),
            zam=f"mllp://{zam.server.host}:{zam.port}" if zam else "not started",
            pam=f"mllp://{pam.host}:{pam.port}" if pam else "not started",
            pfi=f"mllp://127.0.0.1:{self.pfi.port}" if self.pfi else None,
            insi=self.insi.url if self.insi else None,
            smtp=f"smtp://127.0.0.1:{self.smtp.port}" if self.smtp else None,
            mss=f"smtp://localhost:{self.mss.port}" if self.mss else None,
            dmp=self.dmp.url if self.dmp else None,
        )

    async def _until_worker_ready(self, timeout: float = 120) -> None:
        ready = asyncio.create_task(self.worker.ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._serving}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready not in done:
            ready.cancel()
            if self._serving in done:
                self._serving.result()  # the worker could not start: say why
            raise RuntimeError("the engine worker did not start")

    async def _start_listeners(self) -> tuple[ZamListener | None, object | None]:
        """The receipt and identity listeners, as the site configured them, each accepting only the peer
        the PFI block names (`ris.site.listeners`); a missing block or setting is reported (`missing`)
        and what needs it stays off until the next start."""
        try:
            site = await load_site_settings()
        except BlockNotSaved as exc:
            self.missing.append(str(exc))
            return None, None
        try:
            endpoint = await load_pfi_endpoint()
        except BlockNotSaved as exc:
            self.missing.append(str(exc))
            endpoint = None
        peer = endpoint.peer() if endpoint else None
        pam = await self._stack.enter_async_context(self._pam(site, peer).listener())
        if endpoint is None:
            return None, pam
        try:
            options = site.listeners.for_zam(peer)  # limits, TLS, allowlist, charset
        except ListenerSettingsError as exc:
            self.missing.append(f"the ZAM listener is not started: {exc}")
            return None, pam
        zam = ZamListener(
            endpoint.receipt_host,
            endpoint.receipt_port,
            me=_party(site),
            tz=site.timezone,
            on_outcome=emit_applied,
            **options,
        )
        return await self._stack.enter_async_context(zam), pam

    async def _start_sandbox(self) -> tuple[ZamListener, object]:
        """The demo site and the sandbox peers, with the blocks pointing at them (fresh ports each start)."""
        site = SiteSettings(
            mssante=MssanteSending(route_ps=self.routes, route_patient=self.routes),
            dmp=DmpSending(route=self.routes),
        )
        await SiteSettingsBlock(settings=site).asave(DEFAULT_NAME, overwrite=True)
        # The sandbox PFI is the site's configured peer: only its ZAM, from this machine, are heard.
        application, facility = SANDBOX_PFI
        pfi = ConfiguredPeer(frozenset({f"{application}^{facility}"}), "127.0.0.1", what="the sandbox PFI")
        heard = site.listeners.for_zam(pfi)
        zam = await self._stack.enter_async_context(
            ZamListener(me=_party(site), tz=site.timezone, on_outcome=emit_applied, **heard)
        )
        self.pfi = await self._stack.enter_async_context(
            # The demo site agreed with its PFI on combinations beyond the MSSanté matrix (site setting
            # hl7.agreed_combinations); the engine refuses the others before sending, so this PFI does
            # not check the matrix again.
            PfiSandbox(
                zam_host="127.0.0.1",
                zam_port=zam.port,
                folder=self.data_dir / "pfi-received",
                matrix_check=False,
                application=application,
                facility=facility,
            )
        )
        wsdl = bundled_wsdl()
        self.insi = await self._stack.enter_async_context(InsiSandbox(wsdl=wsdl))
        # The site's SMTP relay for the engine's own mails (reminders), with TLS from a test CA.
        self.smtp = await self._stack.enter_async_context(
            SmtpSandbox(folder=self.data_dir / "mss-received", tls_dir=self.data_dir / "sandbox-smtp-tls")
        )
        await MailSender(
            host="127.0.0.1",
            port=self.smtp.port,
            security="starttls",
            ca_bundle=str(self.smtp.ca_pem),
            from_address=site.return_address,
            from_label=site.sender_label,
        ).asave(DEFAULT_NAME, overwrite=True)
        # The MSSanté operator (mutual TLS with the structure's test certificate) for the direct route.
        # On the direct route its receipts (DSN, MDN) land in a real IMAP mailbox (Dovecot) the engine reads.
        direct = self.routes == "direct"
        self.mss = self._stack.enter_context(
            MssSandbox(
                folder=self.data_dir / "mss-received",
                tls_dir=self.data_dir / "sandbox-mss-tls",
                imap_user=site.mssante.application_mailbox if direct else None,
            )
        )
        self.mss.read_receipts = direct  # the demo's recipients "read" their mails at once
        pki = self.mss.mss_pki
        await MssanteOperator(
            host="localhost",
            port=self.mss.port,
            ca_bundle=str(pki.ca),
            client_cert=str(pki.client_cert),
            client_key=str(pki.client_key),
            key_passphrase=CLIENT_PASSPHRASE.decode(),
            imap_host="localhost" if direct else None,
            imap_port=self.mss.mailbox.port if self.mss.mailbox else 993,
            imap_user=self.mss.imap_user,
            imap_password=self.mss.imap_password if direct else None,
        ).asave(DEFAULT_NAME, overwrite=True)
        # The DMP (HTTPS, mutual TLS with its own test CA, signed VIHF) for the direct route.
        self.dmp = self._stack.enter_context(
            DmpSandbox(folder=self.data_dir / "dmp-received", tls_dir=self.data_dir / "sandbox-dmp-tls")
        )
        await DmpEndpoint(
            repository_url=self.dmp.url,
            registry_url=self.dmp.registry_url,
            ca_bundle=str(self.dmp.pki.ca),
            client_cert=str(self.dmp.pki.client_cert),
            client_key=str(self.dmp.pki.client_key),
            key_passphrase=CLIENT_PASSPHRASE.decode(),
        ).asave(DEFAULT_NAME, overwrite=True)
        await PfiEndpoint(
            host="127.0.0.1",
            port=self.pfi.port,
            receipt_port=zam.port,
            application=application,
            facility=facility,
        ).asave(DEFAULT_NAME, overwrite=True)
        await InsiEndpoint(url=self.insi.url, wsdl_path=wsdl, idam=SANDBOX_IDAM).asave(
            DEFAULT_NAME, overwrite=True
        )
        pam = await self._stack.enter_async_context(self._pam(site, pfi).listener())
        return zam, pam

    @staticmethod
    def _pam(site: SiteSettings, peer: ConfiguredPeer | None) -> PamIntake:
        """The PAM-FR intake, over the configured peer's link; every INS from another domain gets its
        identity-verification run (rule 52)."""
        feed = site.identity_feed
        return PamIntake(
            IntakePolicy(frozenset(feed.own_domain), frozenset(feed.trusted_senders), feed.cares_directly),
            start_identity_verification,
            **site.listeners.for_pam(peer),
        )


def _sign_in(auth: AuthString, data_dir: Path) -> str:
    if auth.source == FROM_DATA_FOLDER:
        return f"the API auth string, kept in {auth_file(data_dir)} (`ris env` prints it)"
    return "the site's own API auth string (PREFECT_SERVER_API_AUTH_STRING)"


def _party(site: SiteSettings) -> Party:
    """How the engine signs its acknowledgements: the site's application and FINESS."""
    return Party(site.hl7.sending_application, site.facility.finess_geo)
