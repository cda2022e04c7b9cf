"""Planning the deliveries of a validated version: one row per channel x recipient x action, created once.

Routing (`ris.lifecycle.routing`) decides who gets what and why not; this records it. Each row gets its
idempotency key here, once: re-planning keeps existing rows untouched, so a retry, a re-run or a crash
never mints a second key.

Actions (`Delivery.action`): a version's own message is `initial` (version 1) or `replace` (version n+1,
to every recipient and channel routing gives, "annule et remplace"). A patient copy held back for the
announcement is planned under `release`; once the announcement is recorded, the DMP copy gets a
`visibility` update and the patient copy leaves with the `release` message (dmp-xds.md §6). A deletion
is a `delete` message about the last version the PFI filed.

Channels a site routes "direct" (MSSanté sent by the engine itself, `SiteSettings.mssante`) get the same
rows with route "direct": their own copies leave from the lifecycle, the held-back patient copy as soon as
the announcement is recorded, and a deletion notice (RIS.MSS.16, the site's choice) goes to each
recipient a direct copy reached. A DMP routed "direct" (`SiteSettings.dmp`, ITI-41 by the engine) gets its
copy from the lifecycle too, as INVISIBLE_PATIENT while an announcement is pending; the announcement
plans its `visibility` update (ITI-57) and a deletion plans one `delete` (ITI-62) of what it reached.

Planning also says what is left to send (`VersionPlan`, `ReleasePlan`, `DeletionPlan`): a flow starts a
task only for work that exists, and a route the site does not use costs it nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from ris.ids import delivery_key
from ris.lifecycle import routing
from ris.lifecycle.routing import PFI, PlannedDelivery
from ris.site.settings import DmpSending, SiteSettings
from ris.store import deliveries
from ris.store.models import Channel, Delivery, DeliveryStatus
from ris.store.reports import ReportBundle, load_bundle

REACHED = (DeliveryStatus.sent, DeliveryStatus.acknowledged, DeliveryStatus.read)
RELEASE = "release"
VISIBILITY = "visibility"
DELETE = "delete"


MSS_CHANNELS = (Channel.mss_ps, Channel.mss_patient)


@dataclass(frozen=True)
class VersionPlan:
    """A version's deliveries once planned, and what its lifecycle has left to send (ids only)."""

    statuses: dict[str, list[str]]  # per channel, the statuses of its deliveries (no addresses)
    hl7: bool  # the version's own message waits for the PFI
    mss: tuple[int, ...]  # direct MSSanté copies of the version's own message still to send
    dmp: tuple[int, ...]  # direct DMP submissions of the version's own message still to send
    release: bool  # a copy held back for the announcement may go: the announcement is recorded


@dataclass(frozen=True)
class ReleasePlan:
    """What an announcement releases (`plan_release`); empty when nothing is left to send."""

    hl7: tuple[str, ...]  # the hl7 actions of the version's release messages (visibility, release)
    dmp: tuple[int, ...]  # direct DMP visibility updates still to send
    mss: tuple[int, ...]  # direct MSSanté patient copies still to send


@dataclass(frozen=True)
class DeletionPlan:
    """What deleting a report sends (`plan_report_deletion`); nothing when nothing ever left."""

    published: int | None  # the version whose deletion message goes to the PFI (None: none was filed)
    mss: tuple[int, ...]  # direct MSSanté deletion notices still to send (RIS.MSS.16)
    dmp: int | None  # the direct DMP deletion (ITI-62) still to send


def direct_channels(settings: SiteSettings) -> frozenset[Channel]:
    """The channels the site sends itself rather than through its PFI."""
    routes = {
        Channel.mss_ps: settings.mssante.route_ps,
        Channel.mss_patient: settings.mssante.route_patient,
        Channel.dmp: settings.dmp.route,
    }
    return frozenset(channel for channel, route in routes.items() if route == "direct")


def version_action(version: int) -> str:
    """The action of a version's own message: the first is initial, every later one replaces."""
    return "initial" if version == 1 else "replace"


def _ensure(
    session: Session, report_id: str, version: int, planned: PlannedDelivery, action: str
) -> Delivery:
    row = deliveries.find(session, report_id, version, planned.channel, planned.recipient, action)
    if row is not None:
        return row
    row = Delivery(
        report_id=report_id,
        version=version,
        action=action,
        channel=planned.channel,
        recipient=planned.recipient,
        route=planned.route,
        status=planned.status,
        idempotency_key=delivery_key(planned.channel),
    )
    session.add(row)
    deliveries.set_status(session, row, planned.status, planned.reason)
    return row


def _ensure_message(session: Session, report_id: str, version: int, action: str) -> Delivery:
    """The hl7 message of an action (its MSH-10 minted once)."""
    message = PlannedDelivery(Channel.hl7, PFI, DeliveryStatus.pending, None, PFI)
    return _ensure(session, report_id, version, message, action)


def _statuses(rows: list[Delivery]) -> dict[str, list[str]]:
    statuses: dict[str, list[str]] = {}
    for row in rows:
        statuses.setdefault(row.channel.value, []).append(row.status.value)
    return statuses


def _direct_pending(
    rows: list[Delivery], actions: tuple[str, ...], channels: tuple[Channel, ...]
) -> tuple[int, ...]:
    """Ids of the copies of `channels` and `actions` the engine sends itself that still have to leave."""
    return tuple(
        row.id
        for row in rows
        if row.route == "direct"
        and row.channel in channels
        and row.action in actions
        and row.status is DeliveryStatus.pending
    )


def plan_version(
    session: Session,
    report_id: str,
    version: int,
    *,
    pfi: bool,
    direct: frozenset[Channel] = frozenset(),
    dmp: DmpSending | None = None,
) -> VersionPlan:
    """Create the missing Delivery rows of this version; returns its statuses per channel (no addresses)
    and what is left to send. `dmp`: the site's DMP feed settings (automatic feed, blocked exam types).

    A copy held back for an announcement recorded after this point leaves with the announcement's own
    run, which follows this version's run (one run per version at a time)."""
    bundle = load_bundle(session, report_id, version)
    own = version_action(version)
    for planned in routing.plan(bundle, pfi=pfi, direct=direct, dmp=dmp):
        waiting = planned.status is DeliveryStatus.waiting_announcement
        _ensure(session, report_id, version, planned, RELEASE if waiting else own)
    rows = deliveries.for_version(session, report_id, version)
    return VersionPlan(
        statuses=_statuses(rows),
        hl7=any(
            r.channel is Channel.hl7 and r.action == own and r.status is DeliveryStatus.pending for r in rows
        ),
        mss=_direct_pending(rows, (own,), MSS_CHANNELS),
        dmp=_direct_pending(rows, (own,), (Channel.dmp,)),
        release=not routing.announcement_pending(bundle)
        and any(r.status is DeliveryStatus.waiting_announcement for r in rows),
    )


def message_for(session: Session, report_id: str, version: int, action: str) -> Delivery | None:
    """The version's hl7 message of one action, if it was planned."""
    return deliveries.find(session, report_id, version, Channel.hl7, PFI, action)


def own_message(session: Session, report_id: str, version: int) -> Delivery | None:
    """The version's own hl7 message (initial or replacement), if it was planned."""
    return message_for(session, report_id, version, version_action(version))


def plan_release(session: Session, report_id: str, version: int) -> ReleasePlan:
    """After the announcement: what the version's held-back copies need. Through the PFI once it filed the
    version's own message (before that, the own message itself goes out visible); directly (DMP ITI-57,
    MSSanté) once the direct copy reached its peer. Returns what is left to send.

    The DMP copy was relayed as INVISIBLE_PATIENT: it gets a visibility update (sent whenever the copy
    was relayed while an announcement was required; a redundant update changes nothing). The patient's
    copy leaves if its gates still allow it, else it is blocked with the reason."""
    actions = _release_actions(session, report_id, version)
    rows = deliveries.for_version(session, report_id, version)
    return ReleasePlan(
        hl7=tuple(actions),
        dmp=_direct_pending(rows, (VISIBILITY,), (Channel.dmp,)),
        mss=_direct_pending(rows, (RELEASE,), MSS_CHANNELS),
    )


def _release_actions(session: Session, report_id: str, version: int) -> list[str]:
    """The held-back copies released (or blocked) and the hl7 release messages planned; returns their
    actions, also those a previous run sent (their status is kept)."""
    bundle = load_bundle(session, report_id, version)
    if routing.announcement_pending(bundle):
        return []
    block = routing.withheld_because(bundle, Channel.mss_patient)  # evaluated again now (mssante.md §4)
    rows = deliveries.for_version(session, report_id, version)
    _release_waiting(
        session, [r for r in rows if r.route == "direct"], block
    )  # sent by the engine, no PFI order
    _plan_direct_visibility(session, bundle, rows)
    own = own_message(session, report_id, version)
    if own is None or own.status not in REACHED:
        return []
    rows = [r for r in rows if r.route == PFI]
    actions: list[str] = []
    dmp_copies = [
        r for r in rows if r.channel is Channel.dmp and r.action == own.action and r.status in REACHED
    ]
    if bundle.report.announcement_required and dmp_copies:
        pending = PlannedDelivery(Channel.dmp, routing.DMP, DeliveryStatus.pending, None, PFI)
        _ensure(session, report_id, version, pending, VISIBILITY)
        actions.append(VISIBILITY)
    _release_waiting(session, rows, block)
    if any(r.action == RELEASE and r.status is DeliveryStatus.pending for r in rows):
        actions.append(RELEASE)
    for action in actions:
        _ensure_message(session, report_id, version, action)
    # Every release message of the version, also those a previous run sent (their status is kept).
    return [a for a in (VISIBILITY, RELEASE) if message_for(session, report_id, version, a)]


def _plan_direct_visibility(session: Session, bundle: ReportBundle, rows: list[Delivery]) -> None:
    """The direct DMP copy submitted while the announcement was pending gets its visibility update."""
    own = version_action(bundle.version.version)
    submitted = [
        r
        for r in rows
        if r.route == "direct" and r.channel is Channel.dmp and r.action == own and r.status in REACHED
    ]
    if bundle.report.announcement_required and submitted:
        update = PlannedDelivery(Channel.dmp, routing.DMP, DeliveryStatus.pending, None, "direct")
        _ensure(session, bundle.report.id, bundle.version.version, update, VISIBILITY)


def _release_waiting(session: Session, rows: list[Delivery], block: str | None) -> None:
    for row in rows:
        if row.action == RELEASE and row.status is DeliveryStatus.waiting_announcement:
            if block:
                deliveries.set_status(session, row, DeliveryStatus.blocked, block)
            else:
                deliveries.set_status(session, row, DeliveryStatus.pending, "announcement recorded")


def plan_direct_deletion(session: Session, report_id: str, latest: int) -> list[int]:
    """RIS.MSS.16 on the direct route: one deletion notice (created once) to every recipient a direct
    MSSanté copy reached, about the last version that reached them. Returns the notices still to send."""
    last: dict[tuple[Channel, str], Delivery] = {}
    for version in range(1, latest + 1):
        for row in deliveries.for_version(session, report_id, version):
            direct = row.route == "direct" and row.channel in MSS_CHANNELS
            if direct and row.status in REACHED and row.action != DELETE:
                last[(row.channel, row.recipient)] = row
    notices = []
    for (channel, recipient), row in last.items():
        planned = PlannedDelivery(channel, recipient, DeliveryStatus.pending, None, "direct")
        notice = _ensure(session, report_id, row.version, planned, DELETE)
        if notice.status is DeliveryStatus.pending:
            notices.append(notice)
    session.flush()
    return [n.id for n in notices]


def dmp_submissions(session: Session, report_id: str, latest: int) -> list[Delivery]:
    """Every direct DMP submission that reached the DMP (feeds, replacements, visibility updates), oldest
    first: what a replacement replaces and what a deletion removes."""
    return [
        row
        for version in range(1, latest + 1)
        for row in deliveries.for_version(session, report_id, version)
        if row.route == "direct"
        and row.channel is Channel.dmp
        and row.action != DELETE
        and row.status in REACHED
    ]


def plan_direct_dmp_deletion(session: Session, report_id: str, latest: int) -> int | None:
    """The one ITI-62 deletion (created once) of everything the direct route submitted, about the last
    version that reached the DMP; None when nothing ever reached it or the deletion already went."""
    reached = dmp_submissions(session, report_id, latest)
    if not reached:
        return None
    planned = PlannedDelivery(Channel.dmp, routing.DMP, DeliveryStatus.pending, None, "direct")
    row = _ensure(session, report_id, reached[-1].version, planned, DELETE)
    session.flush()
    return row.id if row.status is DeliveryStatus.pending else None


def published_version(session: Session, report_id: str, latest: int) -> int | None:
    """The last version whose own message the PFI filed: what a deletion unpublishes."""
    for version in range(latest, 0, -1):
        own = own_message(session, report_id, version)
        if own is not None and own.status in REACHED:
            return version
    return None


def plan_deletion(session: Session, report_id: str, latest: int) -> int | None:
    """The deletion message of the published version (created once), or None when nothing was ever
    filed by the PFI: nothing is sent for a report that never left."""
    version = published_version(session, report_id, latest)
    if version is not None:
        _ensure_message(session, report_id, version, DELETE)
    return version


def plan_report_deletion(session: Session, report_id: str, latest: int, *, notices: bool) -> DeletionPlan:
    """Everything a deletion sends, planned once: the PFI's deletion message, the direct MSSanté notices
    when the site sends them (`notices`, RIS.MSS.16) and the direct DMP deletion."""
    return DeletionPlan(
        published=plan_deletion(session, report_id, latest),
        mss=tuple(plan_direct_deletion(session, report_id, latest)) if notices else (),
        dmp=plan_direct_dmp_deletion(session, report_id, latest),
    )
