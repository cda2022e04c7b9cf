"""INSi teleservice client (ins.md §7): zeep on the CNAM WSDL for the two searches, SOAP 1.2 with the
ContexteLPS / ContexteBAM headers and WS-Addressing, mutual TLS with an IGC-Santé ORG certificate (or a
CPx SAML assertion in wsse:Security).

zeep builds the requests; the answers are read by the engine itself (`read_answer`, raw response): zeep
is strict against the bundled XSD, and what the national service sends is the reference (CNDA test 2.04
orders an INSHISTO's elements otherwise). An answer that cannot be read is "INSi answer unreadable", with
the call traced; one carrying a DOCTYPE is refused unread (entities are never resolved).

The unit verification is NOT in the WSDL (ins.md §7.1 open point): `verify` builds its SOAP 1.2 envelope
with lxml from the contract of `ris.site.insi_verification` (site settings).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from lxml import etree
from zeep import AsyncClient, Plugin, Settings
from zeep.cache import InMemoryCache
from zeep.exceptions import TransportError
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from ris.identity.insi_result import (
    NS_RESULTAT,
    OUTCOMES,
    InsiResponseRefused,
    InsiResult,
    InsiUnreadable,
    parse_resultat,
)
from ris.site.insi_verification import VerificationContract
from ris.tls import TlsPolicy, TlsRefused, TlsSettings
from ris.tls.http import async_client

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WS_ADDR_XSD = "http://www.w3.org/2006/03/addressing/ws-addr.xsd"
BUNDLED_WSDL = Path(__file__).with_name("insi_wsdl") / "DESIR_ICIR_EXP_1.5.0.wsdl"


def bundled_wsdl() -> Path:
    """The CNAM INSi WSDL (DESIR_ICIR_EXP_1.5.0) and its XSDs, shipped inside the package: the engine
    reads them at run time, wherever it is installed."""
    return BUNDLED_WSDL


ACTION_PREFIX = "urn:ServiceIdentiteCertifiee:1.0.0:"
BINDING = "{http://www.cnamts.fr/webservice}ICIRServiceBinding"
SEARCH_TRAITS = "rechercherInsAvecTraitsIdentite"
SEARCH_VITALE = "rechercherInsAvecCarteVitale"


@dataclass(frozen=True)
class InsiSettings:
    url: str
    wsdl_path: Path
    idam: str
    lps_name: str
    lps_version: str
    lps_instance: str
    emetteur: str = ""
    cert_path: Path | None = None
    key_path: Path | None = None
    key_password: str | None = None
    ca_path: Path | None = None
    timeout: float = 10.0
    verification: VerificationContract = field(default_factory=VerificationContract)
    tls: TlsSettings = field(default_factory=TlsSettings)  # the site's revocation checking (ris.tls)


@dataclass(frozen=True)
class TraitsQuery:
    birth_name: str
    given_names: tuple[str, ...]  # the XSD allows 0..n; the search strategy sends one per call
    sex: str
    birth_date: dt.date
    birth_place_code: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "NomNaissance": self.birth_name,
            "Prenom": list(self.given_names),
            "Sexe": self.sex,
            "DateNaissance": self.birth_date.isoformat(),
            **({"LieuNaissance": self.birth_place_code} if self.birth_place_code else {}),
        }


@dataclass(frozen=True)
class VitaleQuery:
    """Data read from the Carte Vitale (the card-reading component itself belongs to the workstation)."""

    nir13: str
    key: str
    birth_date: str  # AAAA-MM-JJ, may be a lunar date on the card
    birth_name: str | None = None
    rank: str | None = None
    od_nir13: str | None = None
    od_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "MatriculeIndividu": {"NumIdentifiant": self.nir13, "Cle": self.key},
            "DateNaissance": self.birth_date,
        }
        if self.od_nir13:
            data["MatriculeOD"] = {"NumIdentifiant": self.od_nir13, "Cle": self.od_key}
        if self.birth_name:
            data["NomNaissance"] = self.birth_name
        if self.rank:
            data["RangNaissance"] = self.rank
        return data


class InsiFault(RuntimeError):
    """A SOAP Fault from INSi (siram/desir codes): permanent, the request or the credentials are wrong."""

    def __init__(self, subcode: str | None, desir: str | None, message: str) -> None:
        self.subcode, self.desir = subcode, desir
        super().__init__(f"INSi refused the call ({subcode or '?'}/{desir or '?'}): {message}")


class InsiUnavailable(ConnectionError):
    """INSi could not be reached or did not answer in time: transient, worth retrying later."""


@dataclass
class InsiCall:
    """One call and everything it produced, for the InsiExchange row (rules 37, 39, 48)."""

    operation: str
    request: dict[str, Any]
    raw_response: str | None = None
    result: InsiResult | None = None
    error: Exception | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class _Capture(Plugin):
    """Adds wsa:Action (and the SAML assertion in CPx mode) to what zeep sends."""

    def __init__(self) -> None:
        self.saml: etree._Element | None = None

    def egress(self, envelope, http_headers, operation, binding_options):
        header = envelope.find(f"{{{SOAP12}}}Header")
        action = etree.SubElement(header, f"{{{WSA}}}Action")
        action.text = ACTION_PREFIX + operation.name
        if self.saml is not None:
            etree.SubElement(header, f"{{{WSSE}}}Security").append(self.saml)
        return envelope, http_headers


@cache
def _ws_addr_xsd(wsdl_path: Path) -> bytes:
    return (wsdl_path.parent / "xsd" / "ws-addr.xsd").read_bytes()


def _http_client(s: InsiSettings) -> httpx.AsyncClient:
    """The transport: TLS under the engine's policy (the server's chain checked for revocation before a
    request leaves); plain HTTP only where the URL says so (a sandbox on loopback)."""
    if not s.url.startswith("https"):
        return httpx.AsyncClient(timeout=s.timeout)
    policy = TlsPolicy(
        f"INSi {httpx.URL(s.url).netloc.decode()}",
        ca_bundle=str(s.ca_path) if s.ca_path else None,
        client_cert=str(s.cert_path) if s.cert_path else None,
        client_key=str(s.key_path) if s.key_path else None,
        key_passphrase=s.key_password,
        settings=s.tls,
    )
    return async_client(policy, timeout=s.timeout)


class InsiClient:
    def __init__(self, settings: InsiSettings) -> None:
        self.settings = settings
        self._http = _http_client(settings)
        cache_ = InMemoryCache()
        cache_.add(WS_ADDR_XSD, _ws_addr_xsd(settings.wsdl_path))  # offline load (library-notes §3.x)
        self._capture = _Capture()
        transport = AsyncTransport(client=self._http, wsdl_client=httpx.Client(), cache=cache_)
        # raw_response: zeep sends, the engine reads the answer (read_answer), whatever its element order.
        self._zeep = AsyncClient(
            str(settings.wsdl_path),
            transport=transport,
            plugins=[self._capture],
            settings=Settings(raw_response=True),
        )
        binding = self._zeep.wsdl.bindings[BINDING]
        self._service = AsyncServiceProxy(self._zeep, binding, address=settings.url)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> InsiClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    def _headers(self, message_id: str) -> dict[str, Any]:
        s = self.settings
        now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {
            "NO1_ContexteLPS": {
                "Id": str(uuid.uuid4()),
                "Temps": now,
                "Emetteur": s.emetteur,
                "LPS": {
                    "IDAM": {"_value_1": s.idam, "R": "4"},
                    "Version": s.lps_version,
                    "Instance": s.lps_instance,
                    "Nom": f"urn:lps:{s.lps_name}:{s.lps_version}",
                },
                "Version": "01_00",
                "Nature": "CTXLPS",
            },
            "NO1_ContexteBAM": {
                "Id": str(uuid.uuid4()),
                "Temps": now,
                "Emetteur": s.emetteur,
                "COUVERTURE": {},
                "Version": "01_02",
            },
            "NO1_MessageID": message_id,
        }

    async def _search(self, operation: str, body: dict[str, Any], saml_assertion: str | None) -> InsiCall:
        message_id = f"uuid:{uuid.uuid4()}"
        call = InsiCall(
            operation, {**body, "message_id": message_id, "auth": "cpx" if saml_assertion else "org"}
        )
        self._capture.saml = etree.fromstring(saml_assertion.encode()) if saml_assertion else None
        try:
            response = await getattr(self._service, operation)(**body, _soapheaders=self._headers(message_id))
        except TlsRefused as exc:  # the server's certificate revoked, or its status unknown (hard-fail)
            call.error = InsiUnavailable(str(exc))
            return call
        except (httpx.HTTPError, TransportError, OSError) as exc:
            call.error = InsiUnavailable(f"INSi unreachable or too slow: {type(exc).__name__}")
            return call
        call.raw_response = response.text
        call.result, call.error = read_answer(response.status_code, response.content)
        return call

    async def search_traits(self, query: TraitsQuery, *, saml_assertion: str | None = None) -> InsiCall:
        return await self._search(SEARCH_TRAITS, query.as_dict(), saml_assertion)

    async def search_vitale(self, query: VitaleQuery, *, saml_assertion: str | None = None) -> InsiCall:
        return await self._search(SEARCH_VITALE, query.as_dict(), saml_assertion)

    async def verify(self, matricule: str, oid: str, traits: TraitsQuery) -> InsiCall:
        """Unit verification under the site's contract (ris.site.insi_verification): the result's
        code is read by the contract (OK / KO); the call and the answer are kept whatever happens."""
        contract = self.settings.verification
        message_id = f"uuid:{uuid.uuid4()}"
        request = {"matricule": matricule, "oid": oid, **traits.as_dict(), "message_id": message_id}
        call = InsiCall("verify", request)
        envelope = self._verification_envelope(matricule, oid, traits, message_id)
        ctype = f'application/soap+xml; charset=utf-8; action="{contract.action}"'
        try:
            response = await self._http.post(
                self.settings.url, content=envelope, headers={"Content-Type": ctype}
            )
        except TlsRefused as exc:
            call.error = InsiUnavailable(str(exc))
            return call
        except httpx.HTTPError as exc:
            call.error = InsiUnavailable(f"INSi unreachable or too slow: {type(exc).__name__}")
            return call
        call.raw_response = response.text
        codes = [*contract.ok_codes, *contract.ko_codes]
        call.result, call.error = read_answer(response.status_code, response.content, codes)
        return call

    def _verification_envelope(self, matricule: str, oid: str, traits: TraitsQuery, message_id: str) -> bytes:
        """zeep's headers (ContexteLPS, ContexteBAM, MessageID), the contract's action and body."""
        contract = self.settings.verification
        zeep_headers = self._zeep.create_message(
            self._service, SEARCH_TRAITS, _soapheaders=self._headers(message_id)
        ).find(f"{{{SOAP12}}}Header")
        env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"soap": SOAP12, "wsa": WSA})
        env.append(zeep_headers)
        for stale in zeep_headers.findall(f"{{{WSA}}}Action"):  # zeep's plugins add the search action
            zeep_headers.remove(stale)
        etree.SubElement(zeep_headers, f"{{{WSA}}}Action").text = contract.action
        body = etree.SubElement(env, f"{{{SOAP12}}}Body")
        body.append(
            contract.request_body(
                matricule,
                oid,
                birth_name=traits.birth_name,
                given_names=traits.given_names,
                sex=traits.sex,
                birth_date=traits.birth_date.isoformat(),
                birth_place_code=traits.birth_place_code,
            )
        )
        return etree.tostring(env, encoding="UTF-8")


# Answers are read without network, DTD or entity resolution; a DOCTYPE is refused before anything is read.
_ANSWER_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def read_answer(
    status: int, content: bytes, codes: list[str] | None = None
) -> tuple[InsiResult | None, Exception | None]:
    """(result, None), or (None, the error) for an answer that is not one the engine may use: INSi
    unavailable (not SOAP with an HTTP error, a DOCTYPE), a SOAP Fault, unreadable, or refused by rules
    11 and 12. `codes`: the CodeCR values of the operation (the searches' by default)."""
    try:
        root = etree.fromstring(content, _ANSWER_PARSER)
    except etree.XMLSyntaxError:
        if status != 200:
            return None, InsiUnavailable(f"INSi answered HTTP {status} without SOAP")
        return None, InsiUnreadable("not XML")
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        return None, InsiUnavailable("INSi unavailable: its answer carries a DOCTYPE (entities are refused)")
    if root.tag != f"{{{SOAP12}}}Envelope":
        return None, InsiUnreadable(f"not a SOAP 1.2 envelope (HTTP {status})")
    fault = root.find(f"{{{SOAP12}}}Body/{{{SOAP12}}}Fault")
    if fault is not None:
        sub = fault.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Subcode/{{{SOAP12}}}Value") or ""
        err = fault.find(f"{{{SOAP12}}}Detail/{{urn:siram}}Erreur")
        return None, InsiFault(
            sub.split(":")[-1] or None,
            err.get("code") if err is not None else None,
            fault.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or "",
        )
    resultat = root.find(f"{{{SOAP12}}}Body/{{{NS_RESULTAT}}}RESULTAT")
    if resultat is None:
        return None, InsiUnreadable(f"no RESULTAT in the SOAP Body (HTTP {status})")
    try:
        return parse_resultat(resultat, codes or list(OUTCOMES)), None
    except (InsiResponseRefused, InsiUnreadable) as refused:
        return None, refused
