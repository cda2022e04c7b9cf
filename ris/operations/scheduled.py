"""What the scheduled jobs need from the site's configuration, decided here so that their tasks only ask.

A scheduled run whose channel the site does not use, or that needs a block or a source the site has not
configured, has nothing to do: it completes with one line saying what is missing and how to configure
it. Failing instead, every few minutes and for ever, would fill the UI with red runs that mean nothing
and hide the ones that do. What is configured but broken (a peer down, wrong credentials, a missing file)
still fails, so that alerts fire.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ris.directory.download import local_copy
from ris.directory.extraction import ExtractionRefused

if TYPE_CHECKING:  # `blocks` imports this module for NotConfigured: it stays light
    from ris.channels.mssante.receipts import ImapConfig
    from ris.site.settings import SiteSettings

CONFIGURE = "in the Prefect UI (Blocks) or with `ris configure site.toml`"


class NotConfigured(LookupError):
    """Something a job needs is not configured at this site; the text says what, and how to configure it."""


def require_direct_mssante(settings: SiteSettings) -> None:
    """DSN and MDN receipts come back only for the MSSanté copies the engine sends itself: on the PFI route
    the PFI sends them, and the mailbox is not the engine's to read."""
    if "direct" not in (settings.mssante.route_ps, settings.mssante.route_patient):
        raise NotConfigured(
            "the site's MSSanté copies are relayed by the PFI (site settings mssante.route_ps and "
            "mssante.route_patient are 'pfi'): the engine sends none itself and has no receipt to read; to "
            f"have it send them, set a route to 'direct' in the RIS Site Settings block {CONFIGURE} "
            "([site.mssante])"
        )


def receipts_mailbox(mailbox: ImapConfig | None) -> ImapConfig:
    """The mailbox the receipts of direct sends arrive in, as the operator block names it."""
    if mailbox is None:
        raise NotConfigured(
            "the RIS MSSante Operator block has no IMAP mailbox (imap_host, imap_user, imap_password) to "
            f"read the receipts of direct sends from; add it to the block {CONFIGURE} ([mssante])"
        )
    return mailbox


def reachable_copy(source: str, folder: Path) -> Path:
    """`local_copy` of a directory extraction; a source whose host name does not resolve from this worker
    (no access to the Internet, or to that host) is not configured for it, rather than broken."""
    try:
        return local_copy(source, folder)
    except ExtractionRefused as exc:
        if not _name_unresolved(exc):
            raise
        raise NotConfigured(
            f"{urlsplit(source).hostname} cannot be resolved from this worker, so the Annuaire Santé "
            "extraction cannot be fetched; set the directory-import deployment's persons and mailboxes "
            "parameters to files on the worker or to an address it can reach, or pause its schedule (Prefect "
            "UI, Deployments)"
        ) from exc


def _name_unresolved(error: BaseException) -> bool:
    """Whether a name resolution failure (socket.gaierror) is among the causes of `error`."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, socket.gaierror):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False
