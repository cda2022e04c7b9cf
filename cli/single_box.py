"""Everything on one box: the engine's database, a local Prefect server, the sandbox peers, the receipt
listener, the endpoint blocks, and the deployments served in this process. Used by `ris up` and
`ris demo`; leaving the `async with` stops all of it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from prefect.settings import PREFECT_API_URL, temporary_settings

from blocks import DEFAULT_NAME
from blocks.insi import InsiEndpoint
from blocks.pfi import PfiEndpoint
from blocks.site import SiteSettingsBlock
from cli.prefect_server import QUIET, PrefectServer
from cli.report import start_lifecycle
from cli.single_box_file import write_note
from deployments.serve import single_box_runner
from ris.channels.hl7.listener import ZamListener
from ris.identity.intake import IntakePolicy, PamIntake
from ris.settings import SiteSettings
from ris.store import db
from ris.store.db import session_scope
from ris.store.reports import undispatched_versions
from sandbox.insi import InsiSandbox
from sandbox.pfi import PfiSandbox

log = logging.getLogger("ris.single_box")
ROOT = Path(__file__).resolve().parents[1]
SANDBOX_IDAM = "SANDBOX-IDAM"


def insi_wsdl() -> Path | None:
    """The CNAM INSi WSDL from the ANS reference folder ($RIS_SHARED_DIR or ../shared), never copied in."""
    shared = Path(os.environ.get("RIS_SHARED_DIR") or ROOT.parent / "shared")
    wsdl = shared / "reference" / "insi" / "wsdl" / "DESIR_ICIR_EXP_1.5.0.wsdl"
    return wsdl if wsdl.is_file() else None


@dataclass
class Endpoints:
    ui_url: str
    api_url: str
    pfi: str
    zam: str
    pam: str
    insi: str


class SingleBox:
    def __init__(self, data_dir: Path, database_url: str, *, prefect_port: int = 4200) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.prefect_port = prefect_port
        self.pfi: PfiSandbox | None = None
        self.insi: InsiSandbox | None = None
        self.endpoints: Endpoints | None = None
        self.caught_up: list[str] = []
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
        # The flow-run subprocesses inherit these: same data folder, same database.
        os.environ["RIS_DATA_DIR"] = str(self.data_dir)
        os.environ["RIS_DATABASE_URL"] = self.database_url
        db.upgrade(self.database_url)

        server = PrefectServer(self.data_dir / "prefect", self.prefect_port)
        await server.start()
        self._stack.callback(server.stop)
        os.environ["PREFECT_API_URL"] = server.api_url  # for the flow-run subprocesses
        note = write_note(self.data_dir, server.api_url, server.ui_url)  # for `ris` in other terminals
        self._stack.callback(note.unlink, missing_ok=True)
        self._stack.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
        site = await self._site_settings()

        zam = await self._stack.enter_async_context(ZamListener())
        self.pfi = await self._stack.enter_async_context(
            # The site agreed with its PFI on combinations beyond the MSSanté matrix (site setting
            # hl7.agreed_combinations); the engine refuses the others before sending, so this PFI does
            # not check the matrix again.
            PfiSandbox(
                zam_host="127.0.0.1",
                zam_port=zam.port,
                folder=self.data_dir / "pfi-received",
                matrix_check=False,
            )
        )
        feed = site.identity_feed
        policy = IntakePolicy(
            frozenset(feed.own_domain), frozenset(feed.trusted_senders), feed.cares_directly
        )
        pam = await self._stack.enter_async_context(PamIntake(policy).listener())
        wsdl = insi_wsdl()
        if wsdl is not None:
            self.insi = await self._stack.enter_async_context(InsiSandbox(wsdl=wsdl))
        await self._save_endpoints(zam.port, wsdl)

        runner = await single_box_runner()
        self._serving = asyncio.create_task(runner.start())
        self.caught_up = await self._dispatch_undispatched()
        self.endpoints = Endpoints(
            ui_url=server.ui_url,
            api_url=server.api_url,
            pfi=f"mllp://127.0.0.1:{self.pfi.port}",
            zam=f"mllp://127.0.0.1:{zam.port}",
            pam=f"mllp://127.0.0.1:{pam.port}",
            insi=self.insi.url
            if self.insi
            else "not started: the CNAM WSDL (../shared) is not beside this clone",
        )

    async def _dispatch_undispatched(self) -> list[str]:
        """Versions validated while the engine was down get their lifecycle run now (one per version)."""
        with session_scope(self.database_url) as session:
            pending = undispatched_versions(session)
        return [await start_lifecycle(report_id, version) for report_id, version in pending]

    async def _site_settings(self) -> SiteSettings:
        """What an administrator saved, or the embedded defaults, saved so the UI shows them."""
        try:
            return (await SiteSettingsBlock.aload(DEFAULT_NAME)).settings
        except ValueError:
            block = SiteSettingsBlock()
            await block.asave(DEFAULT_NAME)
            return block.settings

    async def _save_endpoints(self, zam_port: int, wsdl: Path | None) -> None:
        """The peers listen on fresh ports at each start: point the endpoint blocks at them."""
        await PfiEndpoint(host="127.0.0.1", port=self.pfi.port, receipt_port=zam_port).asave(
            DEFAULT_NAME, overwrite=True
        )
        if self.insi is not None and wsdl is not None:
            await InsiEndpoint(url=self.insi.url, wsdl_path=wsdl, idam=SANDBOX_IDAM).asave(
                DEFAULT_NAME, overwrite=True
            )
