"""`ris identity`: check a matricule INS, read and search identities, query INSi, take in a PAM-FR feed,
qualify an identity with the site's identity documents, see and resolve the identity-vigilance worklist.

Who acts is the `ris login` professional, or `--by` where allowed; they act with the permissions their
roles give (ris.auth.roles: ins.read, insi.call, identity.write, identity.worklist...), and every read is
audited with them (INS rule 4)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from pathlib import Path

import typer
from prefect.settings import PREFECT_API_URL
from pydantic import ValidationError
from sqlmodel import Session

from blocks import BlockNotSaved
from blocks.pfi import load_pfi_endpoint
from blocks.site import load_site_settings
from cli.acting import acting, by_option
from cli.common import fail, print_json, require_answering_api
from deployments.runs import start_identity_verification
from ris.auth import roles
from ris.auth.certificates import CertificateUnavailable
from ris.identity import insi_service, vigilance
from ris.identity.actors import IDENTITY_WRITE, INS_READ, INSI_CALL, Actor
from ris.identity.errors import IdentityRuleError
from ris.identity.insi_client import (
    InsiClient,
    InsiFault,
    InsiSettings,
    InsiUnavailable,
    TraitsQuery,
    VitaleQuery,
    bundled_wsdl,
)
from ris.identity.insi_result import InsiUnreadable
from ris.identity.intake import IntakePolicy, PamIntake, Verifier, serve
from ris.identity.nir import matricule_problem
from ris.identity.registry import (
    NotFound,
    get_patient,
    identity_view,
    record_justificatif,
    validate_identity,
)
from ris.identity.search import search_by_ins, search_by_traits
from ris.lifecycle import refusals
from ris.site.listeners import ConfiguredPeer, Listener, ListenerSettingsError
from ris.store.db import in_unit_of_work, session_scope
from ris.store.models import PatientRefusal, RefusalChannel

app = typer.Typer(
    help="Identities and the INS: key check, search, INSi, PAM-FR feed, qualification, the worklist.",
    no_args_is_help=True,
)

By = by_option("Who acts, written to the audit trail")


def _actor(by: str | None, permission: str) -> Actor:
    """The acting user with the permissions their roles give, when they include `permission`."""
    user = acting(by, permission)
    return Actor(user.rpps, user.permissions)


@app.command("verify-key")
def verify_key(matricule: str) -> None:
    """Exit 0 when the 15-character matricule INS is well formed and its key verifies, 1 otherwise."""
    problem = matricule_problem(matricule)
    if problem:
        fail(f"matricule INS {problem}", code=1)
    typer.echo("matricule INS: key verifies")


@app.command()
def show(ipp: str, by: str | None = By, as_json: bool = typer.Option(False, "--json")) -> None:
    """One identity, its status and whether its INS may leave the system."""
    actor = _actor(by, INS_READ)
    with session_scope() as session:
        try:
            view = identity_view(session, actor, get_patient(session, ipp))
        except NotFound as exc:
            fail(str(exc))
    if as_json:
        print_json(view)
        return
    for key, value in view.items():
        typer.echo(f"{key:24} {'' if value is None else value}")


@app.command()
def search(
    by: str | None = By,
    birth_date: str | None = typer.Option(None, "--birth-date", help="AAAA-MM-JJ"),
    name: str | None = typer.Option(None, "--name", help="First letters of a name or given name"),
    ins: str | None = typer.Option(None, "--ins", help="All 15 characters of the matricule INS"),
) -> None:
    """Anteriority search (INS rule 17): by birth date (+ start of a name), or by matricule INS."""
    if (birth_date is None) == (ins is None):
        fail("give --birth-date (optionally with --name) or --ins")
    actor = _actor(by, INS_READ)
    with session_scope() as session:
        try:
            if ins is not None:
                found = search_by_ins(session, actor, ins)
            else:
                found = search_by_traits(session, actor, _date(birth_date, "--birth-date"), name)
        except IdentityRuleError as exc:
            fail(str(exc))
        for p in found:
            typer.echo(
                f"{p.ipp:14} {p.status.value:6} {p.birth_name} {p.first_birth_given_name} "
                f"{p.birth_date.isoformat()} {p.sex}"
            )
    typer.echo(f"{len(found)} identit{'y' if len(found) == 1 else 'ies'} found")


@app.command("insi-lookup")
def insi_lookup(
    by: str | None = By,
    name: str | None = typer.Option(None, help="Nom de naissance (INSi lexical form)"),
    given: str | None = typer.Option(None, help="One birth given name"),
    sex: str | None = typer.Option(None, help="M or F"),
    birth_date: str | None = typer.Option(None, "--birth-date", help="AAAA-MM-JJ"),
    place: str | None = typer.Option(None, help="Birth place COG code (optional)"),
    vitale_nir: str | None = typer.Option(
        None, "--vitale-nir", help="13 characters read on the Carte Vitale"
    ),
    vitale_key: str | None = typer.Option(None, "--vitale-key"),
    url: str | None = typer.Option(None, help="INSi endpoint; without it the saved block is used"),
    wsdl: Path | None = typer.Option(None, help="CNAM WSDL (with --url; default: the engine's copy)"),
    idam: str = typer.Option("RIS-IDAM", help="Software authorisation number (with --url)"),
    cert: Path | None = typer.Option(None, help="Client certificate (with --url)"),
    key: Path | None = typer.Option(None, help="Client key (with --url)"),
    ca: Path | None = typer.Option(None, help="Server CA (with --url)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Search INSi by traits or by Carte Vitale; the call and its answer are traced (rules 37, 39)."""
    if vitale_nir:
        vitale = VitaleQuery(vitale_nir, vitale_key or "", birth_date or "", name)
        traits = None
    else:
        if not (name and given and sex and birth_date):
            fail("give --name, --given, --sex and --birth-date (or --vitale-nir and --birth-date)")
        traits = TraitsQuery(name, (given,), sex, _date(birth_date, "--birth-date"), place)
        vitale = None
    actor = _actor(by, INSI_CALL)
    try:
        result = asyncio.run(_lookup(actor, traits, vitale, url, wsdl, idam, cert, key, ca))
    except (IdentityRuleError, InsiFault, InsiUnavailable, InsiUnreadable, CertificateUnavailable) as exc:
        fail(str(exc))
    if as_json:
        print_json(result.summary())
        return
    typer.echo(f"INSi {result.code} {result.label}: {result.advice}")
    if result.identity:
        i = result.identity
        typer.echo(
            f"  INS {i.ins.matricule} ({i.ins.oid})\n  {i.birth_name} / {i.given_names} / {i.sex} / "
            f"{i.birth_date.isoformat()} / {i.birth_place_code or ''}"
        )


async def _lookup(actor: Actor, traits, vitale, url, wsdl, idam, cert, key, ca):
    if url:
        settings = InsiSettings(
            url=url,
            wsdl_path=wsdl or bundled_wsdl(),
            idam=idam,
            lps_name="RIS-ENGINE",
            lps_version="0.1.0",
            lps_instance="cli",
            cert_path=cert,
            key_path=key,
            ca_path=ca,
        )
        client = InsiClient(settings)
    else:
        from blocks.insi import load_insi_endpoint

        block = await load_insi_endpoint()
        if block is None:
            fail("no INSi endpoint saved: give --url, or save the RIS INSi Endpoint block in the Prefect UI")
        client = await block.client_for(actor.id)  # an SCM calls with the acting RPPS-Rang certificate
    async with client:
        with session_scope() as session:
            try:
                return await insi_service.search(session, actor, client, traits=traits, vitale=vitale)
            finally:
                session.commit()  # the trace of the call stays even when the answer is refused


def _policy(own: list[str], trusted: list[str], not_caring: bool) -> IntakePolicy:
    return IntakePolicy(frozenset(own), frozenset(trusted), cares_directly=not not_caring)


OwnDomain = typer.Option([], "--own-domain", help="Sending application (MSH-3) of our identity domain")
Trusted = typer.Option([], "--trusted", help="Sender with a trust contract (rule 30)")
NotCaring = typer.Option(False, "--not-caring-directly", help="This site does not take care of the patients")


def _verifier(what: str) -> Verifier | None:
    """The INSi verifications of foreign INS start on the running engine; without one they wait (pending)
    and the engine's PAM-FR listener starts them when it starts."""
    if not PREFECT_API_URL.value():
        typer.echo(f"{what}: no running engine: INSi verifications wait until `ris up` starts them", err=True)
        return None
    require_answering_api(what)
    return start_identity_verification


@app.command("import-pam")
def import_pam(
    file: Path,
    own_domain: list[str] = OwnDomain,
    trusted: list[str] = Trusted,
    not_caring_directly: bool = NotCaring,
    by: str | None = By,
) -> None:
    """Take in a file of HL7 v2 messages (PAM-FR ADT, ORM, OMI, SIU): their PID; one ACK code per message."""
    if not file.is_file():
        fail(f"{file} is not a file")
    acting(by, IDENTITY_WRITE)
    policy = _policy(own_domain, trusted, not_caring_directly)
    codes = asyncio.run(PamIntake(policy, _verifier("`ris identity import-pam`")).import_file(file))
    for n, code in enumerate(codes, 1):
        typer.echo(f"message {n}: {code}")
    if any(c != "AA" for c in codes):
        raise typer.Exit(1)


@app.command()
def listen(
    host: str = "127.0.0.1",
    port: int = 2575,
    own_domain: list[str] = OwnDomain,
    trusted: list[str] = Trusted,
    not_caring_directly: bool = NotCaring,
    allow_sender: list[str] = typer.Option(
        [],
        "--allow-sender",
        help="MSH-3 or MSH-3^MSH-4 allowed to send (default: the site setting)",
    ),
    allow_peer: list[str] = typer.Option(
        [],
        "--allow-peer",
        help="Address or network (CIDR) allowed to connect (default: the site setting, else the PFI "
        "block's host, else this machine only)",
    ),
    allow_certificate_cn: list[str] = typer.Option(
        [],
        "--allow-certificate-cn",
        help="Subject CN of a client certificate allowed, with --tls-client-ca (default: the site setting, "
        "else the PFI block's certificate_cn)",
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="Serve TLS with this certificate (PEM)"),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="Its private key (with --tls-cert)"),
    tls_client_ca: Path | None = typer.Option(
        None, "--tls-client-ca", help="Require client certificates signed by this CA (with --tls-cert)"
    ),
) -> None:
    """Run the identity MLLP listener (PAM-FR ADT, ORM, OMI, SIU: their PID) until Ctrl-C. Messages a
    crash left stored but not applied are applied first; anything outside the allowlist gets AR.

    Limits, charset, TLS and allowlist come from the site setting `listeners.pam` of the running engine
    (defaults without one); the options here replace the matching setting. What the allowlist leaves
    empty is the PFI block's: its address, or its certificate with --tls-client-ca (this machine only
    when no engine runs)."""
    saved, peer = _saved_pam_settings()
    settings = _pam_settings(
        saved, allow_sender, allow_peer, allow_certificate_cn, tls_cert, tls_key, tls_client_ca
    )
    try:
        options = settings.options("listeners.pam", peer)
    except ListenerSettingsError as exc:
        fail(str(exc))
    verifier = _verifier("`ris identity listen`")
    intake = PamIntake(_policy(own_domain, trusted, not_caring_directly), verifier, **options)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(intake, host, port))


LISTEN_OPTIONS = {
    "allow.senders": "--allow-sender",
    "allow.peers": "--allow-peer",
    "allow.certificate_cns": "--allow-certificate-cn",
    "tls.cert": "--tls-cert",
    "tls.key": "--tls-key",
    "tls.client_ca": "--tls-client-ca",
}


def _pam_settings(
    saved: Listener,
    senders: list[str],
    peers: list[str],
    cns: list[str],
    cert: Path | None,
    key: Path | None,
    client_ca: Path | None,
) -> Listener:
    data = saved.model_dump()
    if senders:
        data["allow"]["senders"] = senders
    if peers:
        data["allow"]["peers"] = peers
    if cns:
        data["allow"]["certificate_cns"] = cns
    if cert or key or client_ca:
        if not (cert and key):
            fail("--tls-cert and --tls-key: give both (and --tls-client-ca to require client certificates)")
        data["tls"] = {"cert": cert, "key": key, "client_ca": client_ca}
    try:
        return Listener.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        place = ".".join(str(p) for p in first["loc"] if not isinstance(p, int))
        where = LISTEN_OPTIONS.get(place, f"listeners.pam.{place}")
        fail(f"{where}: {first['msg'].removeprefix('Value error, ')}")


def _saved_pam_settings() -> tuple[Listener, ConfiguredPeer | None]:
    """The running engine's `listeners.pam` setting and the PFI it names; the defaults and no peer when no
    engine runs on this data folder (or nothing is saved)."""
    if not PREFECT_API_URL.value():
        return Listener(), None
    require_answering_api("the PAM-FR listener's site settings")

    async def saved() -> tuple[Listener, ConfiguredPeer | None]:
        try:
            settings = (await load_site_settings()).listeners.pam
        except BlockNotSaved:
            settings = Listener()
        try:
            return settings, (await load_pfi_endpoint()).peer()
        except BlockNotSaved:
            return settings, None

    return asyncio.run(saved())


ChannelOption = typer.Option(
    ..., "--channel", help="mss-patient (Mon espace santé, RIS.MSS.21) or mss-ps (professionals, RIS.MSS.25)"
)
RppsBy = by_option("RPPS of the user recording it (a known correspondent)")


@app.command()
def refusal(
    ipp: str,
    channel: str = ChannelOption,
    refuse: bool = typer.Option(False, "--refuse", help="The patient refuses this channel"),
    withdraw: bool = typer.Option(False, "--withdraw", help="The patient withdraws an earlier refusal"),
    reason: str | None = typer.Option(None, "--reason", help="Why, in a few words (at most 200 characters)"),
    by: str | None = RppsBy,
) -> None:
    """Record the patient's refusal of MSSanté sending on one channel, or its withdrawal (mssante.md §4).

    Stored at patient level with who and when, audited, history kept: every report of the patient follows
    it unless the report overrides it (`ris report refusal`). It applies to what has not left yet: the
    routing reads it when a version is planned and when a held-back patient copy is released."""
    if refuse == withdraw:
        fail("--refuse / --withdraw: give exactly one of them")
    by = acting(by, roles.PATIENT_REFUSAL).rpps

    def record(session: Session) -> tuple[RefusalChannel, PatientRefusal | None]:
        patient = refusals.patient_by_ipp(session, ipp)
        which = refusals.check_channel(channel)
        refusals.check_user(session, by)
        return which, refusals.record(session, patient, which, refuse, by, reason)

    try:
        which, row = in_unit_of_work(record)
    except refusals.RefusalRuleError as exc:
        fail(str(exc))
    what = "refused" if refuse else "not refused"
    if row is None:
        typer.echo(f"IPP {ipp}: {which.value} already {what}; nothing recorded")
        return
    typer.echo(f"IPP {ipp}: {which.value} {what}, recorded by {by} at {row.at.isoformat(timespec='seconds')}")


@app.command("refusals")
def refusals_history(ipp: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """The patient's refusals of MSSanté sending: current values and history (IPP only, no traits), and
    the reports that override them."""
    with session_scope() as session:
        try:
            patient = refusals.patient_by_ipp(session, ipp)
        except refusals.RefusalRuleError as exc:
            fail(str(exc))
        view = {"ipp": ipp, **refusals.patient_view(session, patient)}
    if as_json:
        print_json(view)
        return
    current = view["effective"]
    typer.echo(
        f"IPP {ipp}  mss-patient {'refused' if current['mss-patient'] else 'allowed'}  "
        f"mss-ps {'refused' if current['mss-ps'] else 'allowed'}"
    )
    for row in view["history"]:
        what = "refused" if row["refused"] else "withdrawn"
        why = f"  ({row['reason']})" if row["reason"] else ""
        typer.echo(f"  {row['at']}  {row['channel']:<12} {what:<9} by {row['by']}{why}")
    if not view["history"]:
        typer.echo("  no refusal recorded")
    for item in view["overrides"]:
        typer.echo(
            f"  report {item['report']} overrides: mss-patient {item['mss-patient']}, mss-ps {item['mss-ps']}"
            f" (by {item['by']} at {item['at']})"
        )


def _date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not a date AAAA-MM-JJ")


@app.command()
def justificatif(
    ipp: str,
    code: str = typer.Option(
        ..., "--code", help="The identity document seen, from the site's list (INS rule 19)"
    ),
    by: str | None = By,
) -> None:
    """Record the identity document (justificatif) checked for this patient, from the site's list of
    accepted documents and their confidence (RIS.INS.18-19); a high-confidence one validates the identity
    at once where the site enabled it (RIS.INS.21)."""
    actor = _actor(by, IDENTITY_WRITE)
    require_answering_api("the site's list of identity documents")
    policy = asyncio.run(load_site_settings()).justificatifs
    try:
        change = in_unit_of_work(
            lambda session: record_justificatif(session, actor, get_patient(session, ipp), code, policy)
        )
    except NotFound as exc:
        fail(str(exc))
    except IdentityRuleError as exc:
        fail(f"{exc}; the site's documents: {', '.join(j.code for j in policy.catalogue)}")
    proof = policy.find(code)
    confidence = "high confidence" if proof.high_confidence else "not high confidence"
    typer.echo(f"IPP {ipp}: {proof.label} recorded ({confidence})")
    if "status" in change.changed:
        typer.echo(f"IPP {ipp}: identity validated ({' -> '.join(change.changed['status'])})")


@app.command("validate")
def validate_command(ipp: str, by: str | None = By) -> None:
    """Validate the identity by hand after checking a high-confidence document (RIS.INS.20): VALI, or QUAL
    for an identity retrieved from INSi."""
    actor = _actor(by, IDENTITY_WRITE)
    try:
        change = in_unit_of_work(lambda session: validate_identity(session, actor, get_patient(session, ipp)))
    except (NotFound, IdentityRuleError) as exc:
        fail(str(exc))
    if "status" not in change.changed:
        typer.echo(f"IPP {ipp}: already validated; nothing recorded")
        return
    typer.echo(f"IPP {ipp}: identity validated ({' -> '.join(change.changed['status'])})")


@app.command("worklist")
def worklist_command(
    open_only: bool = typer.Option(False, "--open", help="Only the items nobody resolved yet"),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output"),
) -> None:
    """The identity-vigilance worklist (rule 55): each item with its reason, its age and the message that
    raised it, oldest first."""
    with session_scope() as session:
        items = vigilance.listing(session, open_only=open_only)
    if as_json:
        print_json(items)
        return
    for item in items:
        who = f"IPP {item['patient']}" if item["patient"] else item["object"]
        state = "open" if item["open"] else f"{item['resolution']} by {item['resolved_by']}"
        typer.echo(f"#{item['id']:<5} {item['kind']:<30} {who:<18} {item['age_hours']:>7} h  {state}")
        typer.echo(f"       {item['reason']}")
        if item["message"]:
            typer.echo(f"       raised by {item['message']}")
    typer.echo(f"{len(items)} item{'' if len(items) == 1 else 's'}" + (" open" if open_only else ""))


@app.command()
def resolve(
    item_id: int = typer.Argument(..., metavar="ID", help="The worklist item (`ris identity worklist`)"),
    action: str = typer.Option(
        ..., "--action", help="; ".join(f"{name}: {what}" for name, what in vigilance.RESOLUTIONS.items())
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (required, audited)"),
    by: str | None = By,
) -> None:
    """Resolve a worklist item, audited with who, how and why; `--action retry` asks INSi again."""
    who = acting(by, roles.IDENTITY_WORKLIST).rpps
    try:
        retry = in_unit_of_work(lambda session: vigilance.resolve(session, item_id, action, who, reason))
    except vigilance.ResolveRefused as exc:
        fail(str(exc))
    if retry is None:
        typer.echo(f"item {item_id} closed by {who}")
        return
    typer.echo(f"item {item_id}: INSi verification {retry.verification_id} asked again (round {retry.round})")
    if not PREFECT_API_URL.value():
        fail("recorded, but no engine runs here: `ris up` starts the verification when it starts", code=3)
    try:
        run_id = asyncio.run(start_identity_verification(retry.verification_id, retry.key))
    except Exception as exc:  # the engine is down: the verification stays pending for its next start
        fail(f"recorded, but the run could not start ({type(exc).__name__}): start the engine (`ris up`)", 3)
    typer.echo(f"run {run_id} started: identity-verification-{retry.verification_id}")
