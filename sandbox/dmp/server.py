"""The DMP stand-in: an HTTPS SOAP 1.2 endpoint on loopback for ITI-41, ITI-57 and ITI-62 (dmp-xds.md).

- TLS with a test CA made at start (`MssPki`: CA, RSA server certificate, the structure's client
  certificate); the client certificate is required (mutual TLS).
- Parses the MTOM/XOP request (email package), resolves the xop:Include of each document, verifies the
  VIHF signature against the certificate the client presented in the handshake (enveloped, exclusive
  c14n) and its attributes, and checks the metadata against the spec (slots, classifications, code
  systems, INS with its key, hash and size, and the CDA's own id and INS).
- Keeps documents with their visibility: a duplicate uniqueId is refused (the same entry sent again,
  same entryUUID and hash, is a replay: Success, stored once), RPLC deprecates the replaced entry,
  ITI-57 updates the confidentiality codes, ITI-62 deletes.
- Every accepted request is stored as received under `folder` (`<n>-<transaction>.mime`: its Content-Type
  line, a blank line and the body) with each document as `<uniqueId>.xml`.
- Switches: `faults` (the next N requests answer 503 with a Receiver fault), `lose_responses` (the next N
  are processed, then the connection drops without an answer), `delay_s`, `closed_patients` /
  `unknown_patients` (INS matricules whose DMP is closed / does not exist).
Never imports `ris`.
"""

from __future__ import annotations

import contextlib
import hashlib
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from lxml import etree
from signxml import XMLVerifier
from signxml.exceptions import InvalidInput, InvalidSignature

from sandbox.dmp import checks
from sandbox.dmp.registry import Entry, Registry
from sandbox.mssante.pki import MssPki

SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSA = "http://www.w3.org/2005/08/addressing"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
XOP = "http://www.w3.org/2004/08/xop/include"
HL7 = "urn:hl7-org:v3"
NS = {"s": SOAP, "wsa": WSA, "wsse": WSSE, "lcm": LCM, "xdsb": XDSB, "xop": XOP, "h": HL7, **checks.NS}
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI57 = "urn:ihe:iti:2010:UpdateDocumentSet"
ITI62 = "urn:ihe:iti:2010:DeleteDocumentSet"
NAMES = {ITI41: "iti41", ITI57: "iti57", ITI62: "iti62"}
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
CONF_SCHEME = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
SS_UNIQUE = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class Refusal(Exception):
    def __init__(self, findings: list[checks.Finding]) -> None:
        super().__init__("; ".join(f"{code}: {text}" for code, text in findings))
        self.findings = findings


class SenderFault(Exception):
    """A request that is not a well-formed SOAP 1.2 / MTOM ITI transaction."""


@dataclass(frozen=True)
class Received:
    action: str
    file: Path | None
    client_subject: str
    outcome: str  # Success, replay, or the error codes


class DmpSandbox:
    """`with DmpSandbox(folder=...) as dmp:` then `dmp.url`, `dmp.pki` (ca.pem, client.pem / client.key)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        folder: Path | None = None,
        tls_dir: Path | None = None,
        trusted_cas: tuple[Path, ...] = (),
    ) -> None:
        self.host, self.port = host, port
        self.trusted_cas = (
            trusted_cas  # besides its own CA: e.g. the authority of an SCM's RPPS-Rang certificates
        )
        self.folder = folder
        self._tls_dir = tls_dir
        self._own_tls: tempfile.TemporaryDirectory[str] | None = None
        self.pki: MssPki | None = None
        self.registry = Registry()
        self.received: list[Received] = []
        self.faults = 0
        self.lose_responses = 0
        self.delay_s = 0.0
        self.closed_patients: set[str] = set()
        self.unknown_patients: set[str] = set()
        self._seq = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._context: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}/si-dmp-server/v2/services/repository"

    @property
    def registry_url(self) -> str:
        return f"https://localhost:{self.port}/si-dmp-server/v2/services/registry"

    def start(self) -> DmpSandbox:
        sandbox = self
        folder = self._tls_dir
        if folder is None:
            self._own_tls = tempfile.TemporaryDirectory(prefix="dmp-tls-")
            folder = Path(self._own_tls.name)
        self.pki = MssPki.create(folder)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

        class Handler(_Handler):
            owner = sandbox

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.pki.ca))
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        for ca in self.trusted_cas:
            ctx.load_verify_locations(cafile=str(ca))
        ctx.load_cert_chain(str(self.pki.server_cert), str(self.pki.server_key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        self._context = ctx
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_tls is not None:
            self._own_tls.cleanup()
            self._own_tls = None

    def __enter__(self) -> DmpSandbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> DmpSandbox:
        return self.start()

    async def __aexit__(self, *_exc: object) -> None:
        self.stop()

    def revoke_server_certificate(self) -> int:
        """The CA revokes the certificate the server presents (OCSP, CRL); returns its serial."""
        return self.pki.revoke_server()

    def replace_server_certificate(self) -> int:
        """A new certificate from the CA, presented from the next connection on."""
        serial = self.pki.renew_server()
        self._context.load_cert_chain(str(self.pki.server_cert), str(self.pki.server_key))
        return serial

    # --- what tests and the demo read ----------------------------------------------------------------

    def documents(self) -> list[Entry]:
        """Every document the registry keeps (any status)."""
        return list(self.registry.entries.values())

    def document(self, unique_id: str) -> Entry | None:
        return self.registry.by_unique_id(unique_id)

    # --- the service ---------------------------------------------------------------------------------

    def answer(self, content_type: str, body: bytes, client_der: bytes | None) -> tuple[int, bytes, bool]:
        """(HTTP status, SOAP answer, whether to drop the connection instead of answering)."""
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            if self.faults > 0:
                self.faults -= 1
                return 503, _fault("Receiver", "registry temporarily unavailable", ""), False
        message_id = ""
        try:
            envelope, parts = _parse(content_type, body)
            action = envelope.findtext("s:Header/wsa:Action", default="", namespaces=NS)
            message_id = envelope.findtext("s:Header/wsa:MessageID", default="", namespaces=NS)
            if action not in NAMES:
                raise SenderFault(f"unsupported wsa:Action {action!r}")
            if f'action="{action}"' not in content_type and "multipart" in content_type:
                raise SenderFault("the Content-Type action differs from wsa:Action")
            subject = self._verify_vihf(envelope, client_der)
            with self.registry.lock:
                outcome = self._apply(action, envelope, parts)
        except SenderFault as exc:
            return 400, _fault("Sender", str(exc), message_id), False
        except Refusal as exc:
            self.received.append(Received(action, None, "", ",".join(c for c, _ in exc.findings)))
            return 200, _response(action, message_id, exc.findings), False
        stored = self._store(action, content_type, body)
        self.received.append(Received(action, stored, subject, outcome))
        with self._lock:
            lose = self.lose_responses > 0
            self.lose_responses -= 1 if lose else 0
        return 200, _response(action, message_id, []), lose

    def _verify_vihf(self, envelope: etree._Element, client_der: bytes | None) -> str:
        assertion = envelope.find("s:Header/wsse:Security/saml2:Assertion", NS)
        if assertion is None:
            raise Refusal([("DMPAccessDenied", "no VIHF assertion in wsse:Security")])
        if client_der is None:
            raise Refusal([("DMPAccessDenied", "no client certificate")])
        pem = ssl.DER_cert_to_PEM_cert(client_der)
        try:
            XMLVerifier().verify(
                etree.tostring(assertion), x509_cert=pem, id_attribute="ID", expect_references=1
            )
        except (InvalidSignature, InvalidInput) as exc:
            raise Refusal([("DMPAccessDenied", f"VIHF signature: {exc}")]) from exc
        return assertion.findtext("saml2:Issuer", default="", namespaces=NS)

    def _apply(self, action: str, envelope: etree._Element, parts: dict[str, bytes]) -> str:
        body = envelope.find("s:Body", NS)
        assertion = envelope.find("s:Header/wsse:Security/saml2:Assertion", NS)
        if action == ITI62:
            return self._delete(body, assertion)
        request = body.find("xdsb:ProvideAndRegisterDocumentSetRequest", NS) if action == ITI41 else body
        submit = request.find("lcm:SubmitObjectsRequest", NS) if request is not None else None
        if submit is None:
            raise SenderFault("no lcm:SubmitObjectsRequest in the body")
        objects = submit.find("rim:RegistryObjectList", NS)
        packages = objects.findall("rim:RegistryPackage", NS)
        entries = objects.findall("rim:ExtrinsicObject", NS)
        if len(packages) != 1 or len(entries) != 1:
            raise Refusal([(checks.METADATA_ERROR, "one SubmissionSet and one DocumentEntry expected")])
        entry, package = entries[0], packages[0]
        findings = checks.check_entry(entry)
        patient = checks.external_ids(entry).get(checks.DE_PATIENT, "")
        findings += checks.check_submission_set(package, patient)
        findings += checks.check_vihf(assertion, patient)
        members = [
            a for a in objects.iterfind("rim:Association", NS) if a.get("associationType") == HAS_MEMBER
        ]
        if not any(a.get("targetObject") == entry.get("id") for a in members):
            findings.append((checks.METADATA_ERROR, "no HasMember association to the DocumentEntry"))
        if findings:
            raise Refusal(findings)
        self._patient_allowed(patient)
        if action == ITI57:
            return self._update(entry, members)
        return self._provide(request, entry, package, objects, parts, patient)

    def _patient_allowed(self, patient: str) -> None:
        matricule = patient.split("^")[0]
        if matricule in self.unknown_patients:
            raise Refusal([("XDSUnknownPatientId", "no DMP for this INS")])
        if matricule in self.closed_patients:
            raise Refusal([("DMPClosed", "DMP fermé")])

    def _provide(
        self,
        request: etree._Element,
        entry: etree._Element,
        package: etree._Element,
        objects: etree._Element,
        parts: dict[str, bytes],
        patient: str,
    ) -> str:
        entry_id = entry.get("id")
        documents = {d.get("id"): d for d in request.iterfind("xdsb:Document", NS)}
        holder = documents.get(entry_id)
        include = holder.find("xop:Include", NS) if holder is not None else None
        if include is None:
            raise Refusal(
                [("XDSRepositoryMetadataError", "no xdsb:Document with an xop:Include for the entry")]
            )
        cid = include.get("href", "").removeprefix("cid:")
        if cid not in parts:
            raise SenderFault(f"xop:Include cid:{cid} names no MIME part")
        document = parts[cid]
        values = checks.slots(entry)
        unique_id = checks.external_ids(entry)[checks.DE_UNIQUE]
        sha1 = hashlib.sha1(document).hexdigest()
        findings: list[checks.Finding] = []
        if values["hash"][0].lower() != sha1:
            findings.append(("XDSNonIdenticalHash", "hash slot differs from the document's SHA-1"))
        if values["size"][0] != str(len(document)):
            findings.append(("XDSNonIdenticalSize", "size slot differs from the document's length"))
        try:
            cda = etree.fromstring(document, PARSER)
        except etree.XMLSyntaxError as exc:
            raise Refusal([("XDSRepositoryMetadataError", f"the document is not XML: {exc}")]) from exc
        if cda.xpath("string(h:id/@root)", namespaces=NS) != unique_id:
            findings.append(
                (checks.METADATA_ERROR, "uniqueId differs from the CDA's ClinicalDocument/id/@root")
            )
        ins = patient.split("^")[0]
        if ins not in cda.xpath("h:recordTarget/h:patientRole/h:id/@extension", namespaces=NS):
            findings.append(("XDSPatientIdDoesNotMatch", "patientId differs from the CDA's recordTarget INS"))
        if findings:
            raise Refusal(findings)
        known = self.registry.by_unique_id(unique_id)
        if known is not None:
            if entry_id in known.entry_ids and known.sha1 == sha1:
                return "replay"
            raise Refusal([("XDSDuplicateUniqueIdInRegistry", f"uniqueId {unique_id} already registered")])
        replaced = None
        for association in objects.iterfind("rim:Association", NS):
            if association.get("associationType") == RPLC:
                replaced = self.registry.resolve(association.get("targetObject", ""))
                if replaced is None or replaced.status != "Approved":
                    raise Refusal([("UnresolvedReferenceException", "RPLC target unknown or not Approved")])
                if replaced.patient_id != patient:
                    raise Refusal([("XDSPatientIdDoesNotMatch", "RPLC target belongs to another patient")])
        if replaced is not None:
            replaced.status, replaced.replaced_by = "Deprecated", entry_id
        self.registry.entries[entry_id] = Entry(
            lid=entry_id,
            entry_ids=[entry_id],
            unique_id=unique_id,
            patient_id=patient,
            sha1=sha1,
            size=len(document),
            confidentiality=_confidentiality(entry),
            submission_uid=checks.external_ids(package).get(SS_UNIQUE, ""),
        )
        if self.folder is not None:
            (self.folder / f"{unique_id}.xml").write_bytes(document)
        return "Success"

    def _update(self, entry: etree._Element, members: list[etree._Element]) -> str:
        lid = entry.get("lid", "")
        known = self.registry.resolve(lid)
        if known is None or known.status != "Approved":
            raise Refusal(
                [("UnresolvedReferenceException", "the entry to update is unknown or not Approved")]
            )
        if entry.get("id") in known.entry_ids:
            return "replay"
        previous = [v for a in members for v in checks.slots(a).get("PreviousVersion", [])]
        if previous != [str(known.version)]:
            raise Refusal([(checks.METADATA_ERROR, f"PreviousVersion must be {known.version}")])
        known.history.append(known.confidentiality)
        known.confidentiality = _confidentiality(entry)
        known.entry_ids.append(entry.get("id"))
        known.version += 1
        return "Success"

    def _delete(self, body: etree._Element, assertion: etree._Element) -> str:
        remove = body.find("lcm:RemoveObjectsRequest", NS)
        if remove is None:
            raise SenderFault("no lcm:RemoveObjectsRequest in the body")
        findings = checks.check_vihf(assertion, None)
        targets = [
            self.registry.resolve(r.get("id", ""))
            for r in remove.iterfind("rim:ObjectRefList/rim:ObjectRef", NS)
        ]
        if not targets or any(t is None for t in targets):
            findings.append(("XDSUnknownDocument", "an ObjectRef names no document of the registry"))
        if findings:
            raise Refusal(findings)
        resource = checks.vihf_attributes(assertion)["urn:oasis:names:tc:xacml:2.0:resource:resource-id"][
            0
        ].text
        if any(t.patient_id != resource for t in targets):
            raise Refusal([("DMPAccessDenied", "the VIHF patient is not the documents' patient")])
        for target in targets:
            target.status = "Deleted"
        return "Success"

    def _store(self, action: str, content_type: str, body: bytes) -> Path | None:
        if self.folder is None:
            return None
        with self._lock:
            self._seq += 1
            path = self.folder / f"{self._seq:05d}-{NAMES[action]}.mime"
        path.write_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
        return path


def _confidentiality(entry: etree._Element) -> list[str]:
    return [c.get("nodeRepresentation", "") for c in checks.classifications(entry, CONF_SCHEME)]


def _parse(content_type: str, body: bytes) -> tuple[etree._Element, dict[str, bytes]]:
    """The SOAP envelope and the MIME parts by Content-ID, from an MTOM or a plain SOAP 1.2 request."""
    if content_type.lower().startswith("application/soap+xml"):
        return _xml(body), {}
    if not content_type.lower().startswith("multipart/related"):
        raise SenderFault(f"Content-Type {content_type.split(';')[0]!r}: SOAP 1.2 or MTOM expected")
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    if (
        message.get_param("type") != "application/xop+xml"
        or message.get_param("start-info") != "application/soap+xml"
    ):
        raise SenderFault("MTOM: type=application/xop+xml and start-info=application/soap+xml expected")
    start = message.get_param("start")
    parts = {}
    root = None
    for part in message.iter_parts():
        cid = part.get("Content-ID", "")
        payload = part.get_payload(decode=True)
        if cid == start:
            root = payload
        parts[cid.strip("<>")] = payload
    if root is None:
        raise SenderFault("MTOM: no root part named by start=")
    if root.lstrip().startswith(b"<?xml"):
        raise SenderFault("MTOM root part: no XML declaration expected")
    return _xml(root), parts


def _xml(data: bytes) -> etree._Element:
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as exc:
        raise SenderFault(f"not well-formed XML: {exc}") from exc
    if root.tag != f"{{{SOAP}}}Envelope":
        raise SenderFault("not a SOAP 1.2 envelope")
    return root


def _envelope(action: str, message_id: str) -> tuple[etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"soap": SOAP, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action").text = f"{action}Response"
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if message_id:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = message_id
    return env, etree.SubElement(env, f"{{{SOAP}}}Body")


def _response(action: str, message_id: str, findings: list[checks.Finding]) -> bytes:
    env, body = _envelope(action, message_id)
    status = "Failure" if findings else "Success"
    response = etree.SubElement(
        body,
        f"{{{RS}}}RegistryResponse",
        status=f"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}",
        nsmap={"rs": RS},
    )
    if findings:
        errors = etree.SubElement(response, f"{{{RS}}}RegistryErrorList")
        for code, text in findings:
            etree.SubElement(
                errors,
                f"{{{RS}}}RegistryError",
                errorCode=code,
                codeContext=text,
                severity="urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error",
            )
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _fault(code: str, reason: str, message_id: str) -> bytes:
    env, body = _envelope("http://www.w3.org/2005/08/addressing/soap/fault", message_id)
    fault = etree.SubElement(body, f"{{{SOAP}}}Fault")
    etree.SubElement(etree.SubElement(fault, f"{{{SOAP}}}Code"), f"{{{SOAP}}}Value").text = f"soap:{code}"
    text = etree.SubElement(etree.SubElement(fault, f"{{{SOAP}}}Reason"), f"{{{SOAP}}}Text")
    text.text = reason
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


class _Handler(BaseHTTPRequestHandler):
    owner: DmpSandbox
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        der = None
        with contextlib.suppress(AttributeError, ValueError):
            der = self.connection.getpeercert(binary_form=True)
        status, payload, drop = self.owner.answer(self.headers.get("Content-Type", ""), body, der)
        if drop:  # processed, but the answer is lost on the way
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.close()
            return
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_args: object) -> None:  # requests carry identities: keep them out of logs
        pass
