"""A SOAP 1.2 INSi teleservice on loopback: parses the envelope with lxml, validates it against the CNAM
XSDs shipped beside the WSDL, and answers RESULTAT documents valid against INSi_RESULTAT_INS.xsd, except
those it writes as CNAM sends them (persons.Historical.dates_first: the national service is the reference,
not our copy of its schema).

Stdlib HTTP server (one thread per request) so that mutual TLS can read the client certificate's CN."""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lxml import etree

from sandbox.insi import persons

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
NS_SANS = "http://www.cnamts.fr/INSiRecSans"
NS_VIT = "http://www.cnamts.fr/INSiRecVit"
NS_RES = "http://www.cnamts.fr/INSiResultat"
NS_LPS = "urn:siram:lps:ctxlps"
NS_BAM = "urn:siram:bam:ctxbam"
NS_SIRAM = "urn:siram"
# Provisional contract of the unit verification (not in the WSDL: ins.md §7.1 open point); the client's
# defaults are the same strings, both clearly labelled.
NS_VERIF = "urn:ris-engine:provisional:insi-verification"
ACTION_PREFIX = "urn:ServiceIdentiteCertifiee:1.0.0:"
OPERATIONS = {
    "rechercherInsAvecTraitsIdentite": f"{{{NS_SANS}}}RECSANSVITALE",
    "rechercherInsAvecCarteVitale": f"{{{NS_VIT}}}RECVITALE",
    "verifierIdentite": f"{{{NS_VERIF}}}RequeteUnitaire",
}
FAULTS = {
    "desir_550": (
        "siram_100",
        "L'accès par ce progiciel au service n'est pas autorisé. Contactez l'éditeur "
        "du progiciel ou votre responsable informatique.",
        "Numéro d'autorisation du logiciel inconnu.",
    ),
    "desir_560": ("siram_100", "L'accès au service n'est pas autorisé.", "Niveau d'accès insuffisant."),
}
CERT_CNS = ("INSI-AUTO", "INSI-MANU")
# Answers no client may take for a RESULTAT (the `broken` switch): the forms the client must survive.
BROKEN = {
    # issue 22: a DOCTYPE with an entity (zeep refused it with EntitiesForbidden and a traceback)
    "doctype": b'<?xml version="1.0"?>\n<!DOCTYPE Envelope [<!ENTITY x "x">]>\n'
    b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body>&x;</soap:Body>'
    b"</soap:Envelope>",
    "not-soap": b"<html><body>Maintenance en cours<br></body></html>",  # HTML, not even XML
    "no-resultat": b'<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body/>'
    b"</soap:Envelope>",
}


def default_wsdl() -> Path:
    """The CNAM's WSDL as the engine ships it (a document, not our code: the sandbox reads the file)."""
    return Path(__file__).resolve().parents[2] / "ris/identity/insi_wsdl/DESIR_ICIR_EXP_1.5.0.wsdl"


class Schemas:
    """The XSDs of the WSDL's folder, one lxml XMLSchema per namespace the sandbox checks."""

    def __init__(self, wsdl: Path) -> None:
        xsd = wsdl.parent / "xsd"

        def load(rel: str) -> etree.XMLSchema:
            return etree.XMLSchema(etree.parse(str(xsd / rel)))

        self.by_ns = {
            NS_SANS: load("ServiceIdentiteCertifiee/INSi_RECSANS_INS.xsd"),
            NS_VIT: load("ServiceIdentiteCertifiee/INSi_RECVITALE_INS.xsd"),
            NS_RES: load("ServiceIdentiteCertifiee/INSi_RESULTAT_INS.xsd"),
            NS_LPS: load("CTX/ROOT_ctxlps_CTXLPS_V01_00.xsd"),
            NS_BAM: load("CTX/ROOT_ctxbam_CTXBAM_V01_02.xsd"),
        }

    def check(self, element: etree._Element) -> None:
        ns = etree.QName(element).namespace
        schema = self.by_ns.get(ns)
        if schema is not None and not schema.validate(etree.ElementTree(_detached(element))):
            raise BadRequest(f"{etree.QName(element).localname}: {schema.error_log.last_error.message}")


def _detached(element: etree._Element) -> etree._Element:
    return etree.fromstring(etree.tostring(element))


class BadRequest(ValueError):
    pass


@dataclass
class TlsFiles:
    cert: Path
    key: Path
    ca: Path  # CA that signs the accepted client certificates


class InsiSandbox:
    """`async with InsiSandbox(port=0) as s: s.url` (or start()/stop(); started again, it listens on the
    same port). Switches: `delay` (seconds before answering), `fault` (a key of FAULTS, answered to every
    call), `known_idams` (others get desir_550), `outage` (HTTP 503 without SOAP, as a proxy answers when
    the service is down), `broken` (a key of BROKEN: an answer no client can use)."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, wsdl: Path | None = None, tls: TlsFiles | None = None
    ) -> None:
        self.host, self.port = host, port
        self.schemas = Schemas(wsdl or default_wsdl())
        self.tls = tls
        self.delay = 0.0
        self.fault: str | None = None
        self.known_idams: set[str] | None = None
        self.outage = False
        self.broken: str | None = None
        self.received: list[dict[str, Any]] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/lps"

    def start(self) -> InsiSandbox:
        sandbox = self

        class Handler(_Handler):
            owner = sandbox

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        if self.tls:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.tls.ca))
            ctx.load_cert_chain(str(self.tls.cert), str(self.tls.key))
            ctx.verify_mode = ssl.CERT_REQUIRED
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    async def __aenter__(self) -> InsiSandbox:
        return self.start()

    async def __aexit__(self, *_exc: object) -> None:
        self.stop()

    def __enter__(self) -> InsiSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # --- the teleservice ------------------------------------------------------------------------------

    def answer(
        self, body: bytes, client_cn: str | None, client_sha256: str | None = None
    ) -> tuple[int, bytes]:
        if self.outage:
            return 503, b"Service Unavailable"
        try:
            envelope = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
            call = self._read(envelope)
        except (etree.XMLSyntaxError, BadRequest) as exc:
            return 500, _fault("Sender", "siram_400", f"Requête invalide : {exc}", "desir_400", None)
        call["client_cn"] = client_cn
        call["client_sha256"] = client_sha256  # which certificate called: the SCM's RPPS-Rang ones share a CN
        self.received.append(call)
        if self.delay:
            time.sleep(self.delay)
        code = self.fault
        if self.tls and client_cn not in CERT_CNS:
            code = "desir_560"
        elif self.known_idams is not None and call["idam"] not in self.known_idams:
            code = "desir_550"
        if code:
            subcode, reason, detail = FAULTS[code]
            return 500, _fault("Sender", subcode, reason, code, call["message_id"], detail)
        if self.broken:
            return 200, BROKEN[self.broken]
        resultat, person = self._resultat(call)
        if person is None or not person.in_cnam_order:
            self.schemas.check(resultat)  # never answer something the XSD refuses, but CNAM's own forms
        return 200, _envelope(call, resultat)

    def _read(self, envelope: etree._Element) -> dict[str, Any]:
        if envelope.tag != f"{{{SOAP}}}Envelope":
            raise BadRequest("not a SOAP 1.2 envelope")
        header = envelope.find(f"{{{SOAP}}}Header")
        body = envelope.find(f"{{{SOAP}}}Body")
        if header is None or body is None or len(body) != 1:
            raise BadRequest("SOAP Header and a Body with one element are required")
        action = header.findtext(f"{{{WSA}}}Action") or ""
        operation = action.removeprefix(ACTION_PREFIX)
        if OPERATIONS.get(operation) != body[0].tag:
            raise BadRequest(f"wsa:Action {action!r} does not match the body {body[0].tag}")
        lps, bam = header.find(f"{{{NS_LPS}}}ContexteLPS"), header.find(f"{{{NS_BAM}}}ContexteBAM")
        if lps is None or bam is None:
            raise BadRequest("ContexteLPS and ContexteBAM headers are required")
        for element in (lps, bam, body[0]):
            self.schemas.check(element)
        message_id = header.findtext(f"{{{WSA}}}MessageID")
        if not message_id:
            raise BadRequest("wsa:MessageID is required")
        return {
            "operation": operation,
            "action": action,
            "message_id": message_id,
            "idam": lps.findtext(f"{{{NS_LPS}}}LPS/{{{NS_LPS}}}IDAM"),
            "lps_name": lps.findtext(f"{{{NS_LPS}}}LPS/{{{NS_LPS}}}Nom"),
            "saml": header.find(
                "{http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd}Security"
            )
            is not None,
            "body": body[0],
        }

    def _resultat(self, call: dict[str, Any]) -> tuple[etree._Element, persons.Person | None]:
        """The RESULTAT answered, and the person it tells of (None when it tells of nobody)."""
        b = call.pop("body")

        def t(path: str, ns: str) -> str:
            return (b.findtext("/".join(f"{{{ns}}}{p}" for p in path.split("/"))) or "").strip()

        if call["operation"] == "rechercherInsAvecTraitsIdentite":
            given = [(g.text or "").strip() for g in b.findall(f"{{{NS_SANS}}}Prenom")]
            found = persons.by_traits(
                t("NomNaissance", NS_SANS),
                given,
                t("Sexe", NS_SANS),
                t("DateNaissance", NS_SANS),
                t("LieuNaissance", NS_SANS) or None,
            )
            call["request"] = {"name": t("NomNaissance", NS_SANS), "given": given}
        elif call["operation"] == "rechercherInsAvecCarteVitale":
            found = persons.by_vitale(
                t("MatriculeIndividu/NumIdentifiant", NS_VIT),
                t("DateNaissance", NS_VIT),
                t("NomNaissance", NS_VIT) or None,
            )
            call["request"] = {"nir": t("MatriculeIndividu/NumIdentifiant", NS_VIT)}
        else:
            return self._verification(b)
        res = etree.Element(f"{{{NS_RES}}}RESULTAT", nsmap={None: NS_RES})
        code, label = {0: ("01", "Aucune identite trouvee"), 1: ("00", "OK")}.get(
            len(found), ("02", "Plusieurs identites trouvees")
        )
        _cr(res, code, label)
        if len(found) == 1:
            _individu(res, found[0])
            return res, found[0]
        return res, None

    def _verification(self, b: etree._Element) -> tuple[etree._Element, persons.Person | None]:
        """OK (CR 00) with the person INSi holds for this INS, or KO (CR 01): the provisional contract the
        engine's defaults name (verification_contract, an open point)."""

        def t(path: str) -> str:
            return (b.findtext("/".join(f"{{{NS_VERIF}}}{p}" for p in path.split("/"))) or "").strip()

        ins, traits = "IndividuVerifie/INSFourni", "IndividuVerifie/TraitsIdentiteIndividu"
        if not t(f"{ins}/IdIndividu/NumIdentifiant") or not t(f"{ins}/OID"):
            raise BadRequest("RequeteUnitaire: INSFourni/IdIndividu/NumIdentifiant and OID are required")
        person = persons.verify(
            t(f"{ins}/IdIndividu/NumIdentifiant") + t(f"{ins}/IdIndividu/Cle"),
            t(f"{ins}/OID"),
            t(f"{traits}/NomNaissance"),
            t(f"{traits}/Prenom"),
            t(f"{traits}/Sexe"),
            t(f"{traits}/DateNaissance"),
        )
        res = etree.Element(f"{{{NS_RES}}}RESULTAT", nsmap={None: NS_RES})
        if person is None:
            _cr(res, "01", "Identite non verifiee")
            return res, None
        _cr(res, "00", "OK")
        _individu(res, person)
        return res, person


def _sub(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{NS_RES}}}{name}")
    if text is not None:
        el.text = text
    return el


def _cr(res: etree._Element, code: str, label: str) -> None:
    cr = _sub(res, "CR")
    _sub(cr, "CodeCR", code)
    _sub(cr, "LibelleCR", label)


def _ins(
    parent: etree._Element, name: str, nir13: str, oid: str, h: persons.Historical | None = None
) -> None:
    el = _sub(parent, name)
    dates = [("DateDeb", h.start), ("DateFin", h.end)] if h else []
    if h and h.dates_first:
        for tag, value in dates:
            if value:
                _sub(el, tag, value)
    ident = _sub(el, "IdIndividu")
    _sub(ident, "NumIdentifiant", nir13)
    _sub(ident, "Cle", persons.key(nir13))
    _sub(el, "OID", oid)
    if h and not h.dates_first:
        for tag, value in dates:
            if value:
                _sub(el, tag, value)


def _individu(res: etree._Element, p: persons.Person) -> None:
    ind = _sub(res, "INDIVIDU")
    _ins(ind, "INSACTIF", p.nir13, p.oid)
    for h in p.history:
        _ins(ind, "INSHISTO", h.nir13, h.oid, h)
    tiq = _sub(ind, "TIQ")
    _sub(tiq, "NomNaissance", p.birth_name if p.returned_name is None else p.returned_name)
    _sub(tiq, "Prenom", p.given_names.split()[0])
    _sub(tiq, "ListePrenom", p.given_names)
    _sub(tiq, "Sexe", p.sex)
    _sub(tiq, "DateNaissance", p.birth_date)
    _sub(tiq, "LieuNaissance", p.birth_place)


def _envelope(call: dict[str, Any], payload: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = call["action"] + "Response"
    etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = call["message_id"]
    etree.SubElement(env, f"{{{SOAP}}}Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _fault(
    kind: str, subcode: str, reason: str, code: str, message_id: str | None, detail: str = ""
) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP})
    fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP}}}Body"), f"{{{SOAP}}}Fault")
    c = etree.SubElement(fault, f"{{{SOAP}}}Code")
    etree.SubElement(c, f"{{{SOAP}}}Value").text = f"soap:{kind}"
    etree.SubElement(etree.SubElement(c, f"{{{SOAP}}}Subcode"), f"{{{SOAP}}}Value").text = f"soap:{subcode}"
    text = etree.SubElement(etree.SubElement(fault, f"{{{SOAP}}}Reason"), f"{{{SOAP}}}Text")
    text.text = reason
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
    err = etree.SubElement(
        etree.SubElement(fault, f"{{{SOAP}}}Detail"), f"{{{NS_SIRAM}}}Erreur", nsmap={"siram": NS_SIRAM}
    )
    err.set("code", code)
    err.set("severite", "erreur")
    if message_id:
        err.set("messageID", message_id)
    err.text = detail or reason
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


class _Handler(BaseHTTPRequestHandler):
    owner: InsiSandbox
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        cn = fingerprint = None
        with contextlib.suppress(AttributeError, TypeError, KeyError):
            subject = dict(x[0] for x in self.connection.getpeercert()["subject"])
            cn = subject.get("commonName")
            fingerprint = hashlib.sha256(self.connection.getpeercert(binary_form=True)).hexdigest()
        status, payload = self.owner.answer(body, cn, fingerprint)
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:  # requests carry identities: keep them out of logs
        pass
