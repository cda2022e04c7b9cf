"""A sandbox integration platform (PFI): a real MLLP server on loopback that receives ORU / MDM documents,
checks them, answers ACK (AA / AE / AR with ERR), and sends ZAM business receipts back to the RIS. It also
takes PAM-FR identity updates (ADT A31 / A47, `identity_messages`), acknowledged without receipts.

    async with PfiSandbox(zam_host="127.0.0.1", zam_port=listener_port) as pfi:
        pfi.port            # where to send; pfi.documents, pfi.duplicates, pfi.zams to look at
        pfi.fail_next("AE") # the next message gets AE; also "AR", "silent" (no answer), "lost_ack"

Duplicate MSH-10: answered AA again, never recorded as a second document or identity update (the entry in
`received` is flagged, `duplicates` counts them). The same content filed again under another MSH-10 (the
same CDA, event, flags and recipients: what a sender without idempotency keys would do) is filed, and
counted in `filed_twice`: the copy a recipient would get twice.
Fault switches: `fail_next(...)`, `delay_s` (slowness), `dmp_closed` (Z01 with DMPClosed),
`mss_errors` (address -> SMTPERRORCODE in Z02), `send_read_receipts` (Z03), `matrix_check`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from sandbox.pfi.checks import Facts, Problem, check, make_problem
from sandbox.pfi.identity import check_identity, is_identity_update
from sandbox.pfi.wire import exchange, frame, read_frame, split

log = logging.getLogger(__name__)
FAULTS = ("AE", "AR", "silent", "lost_ack")
YN = "expandedYes-NoIndicator"
DMP_CLOSED = "ERR|||207^Application internal error^messageErrorCondition|E|DMPClosed^DMP fermé^DMPERRORCODE"


@dataclass
class Received:
    control_id: str
    message_type: str  # e.g. MDM^T02
    raw: str
    answer: str | None  # AA / AE / AR, None when not answered
    problem: Problem | None = None
    duplicate: bool = False


def _content_key(facts: Facts) -> str:
    """What a filed message delivers, whatever its MSH-10: the document, the event, the flags, the copies."""
    parts = [
        hashlib.sha256(facts.cda).hexdigest(),
        facts.trigger,
        repr(sorted(facts.flags.items())),
        repr(sorted((r.identifier, r.address) for r in facts.recipients)),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _now() -> str:
    return dt.datetime.now().strftime("%Y%m%d%H%M%S")


class PfiSandbox:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        zam_host: str = "127.0.0.1",
        zam_port: int | None = None,
        folder: Path | None = None,
        matrix_check: bool = True,
        zam_delay_s: float = 0.05,
        application: str = "PFI-SANDBOX",
        facility: str = "PFI-DEMO",
    ) -> None:
        self.host, self.port = host, port
        self.zam_host, self.zam_port, self.zam_delay_s = zam_host, zam_port, zam_delay_s
        self.folder = folder
        self.matrix_check = matrix_check
        self.application, self.facility = application, facility
        self.delay_s = 0.0
        self.dmp_closed = False
        self.mss_errors: dict[str, str] = {}
        self.send_read_receipts = True
        self.received: list[Received] = []
        self.documents: dict[str, Received] = {}
        self.identity_messages: dict[str, Received] = {}  # PAM-FR A31 / A47 by MSH-10
        self.duplicates = 0
        self._filed: dict[str, set[str]] = {}  # content key -> the MSH-10s it was filed under
        self.zams: list[tuple[str, str | None]] = []  # (ZAM trigger, MSA-1 of the RIS's answer)
        self._faults: deque[str] = deque()
        self._ids = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # --- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> PfiSandbox:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> PfiSandbox:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def fail_next(self, *modes: str) -> None:
        """Queue faults, one per incoming message, before normal service resumes."""
        for mode in modes:
            if mode not in FAULTS:
                raise ValueError(f"fault {mode!r}: one of {', '.join(FAULTS)}")
            self._faults.append(mode)

    @property
    def filed_twice(self) -> int:
        """Contents filed under more than one MSH-10: copies their recipients would receive twice."""
        return sum(len(ids) - 1 for ids in self._filed.values() if len(ids) > 1)

    def summary(self) -> dict[str, int]:
        return {
            "messages": len(self.received),
            "documents": len(self.documents),
            "identity_messages": len(self.identity_messages),
            "same_msh10_resent": self.duplicates,
            "filed_twice": self.filed_twice,
        }

    async def wait_for_zams(self, count: int, timeout: float = 5.0) -> list[tuple[str, str | None]]:
        async with asyncio.timeout(timeout):
            while len(self.zams) < count:
                await asyncio.sleep(0.01)
        return self.zams

    # --- serving -----------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (message := await read_frame(reader)) is not None:
                answer = await self._handle(message)
                if answer is None:  # hold the line without answering until the client gives up
                    while await reader.read(65536):
                        pass
                    break
                writer.write(frame(answer))
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _handle(self, message: str) -> str | None:
        mode = self._faults.popleft() if self._faults else None
        segments = split(message)
        msh = segments[0] if segments else None
        kind = f"{msh.c(9, 1)}^{msh.c(9, 2)}" if msh else "?"
        control_id = msh.f(10) if msh else ""
        if mode == "silent":
            self.received.append(Received(control_id, kind, message, None))
            return None
        identity = msh is not None and is_identity_update(msh)
        if identity:
            facts, problem = await asyncio.to_thread(check_identity, message)
        else:
            facts, problem = await asyncio.to_thread(check, message, matrix_check=self.matrix_check)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if problem is None and mode in ("AE", "AR"):
            problem = make_problem("207", "", f"fault switch: {mode}")
        if problem is not None:
            code = "AE" if mode == "AE" else "AR"
            self.received.append(Received(control_id, kind, message, code, problem))
            return self._ack(message, code, problem)
        assert facts is not None
        entry = Received(control_id, kind, message, None if mode == "lost_ack" else "AA")
        kept = self.identity_messages if identity else self.documents
        if control_id in kept:
            entry.duplicate = True
            self.duplicates += 1
        else:
            kept[control_id] = entry
            if not identity:
                self._filed.setdefault(_content_key(facts), set()).add(control_id)
            if self.folder:
                (self.folder / f"{control_id}.hl7").write_text(message, encoding="utf-8", newline="")
            if not identity:
                self._spawn(self._send_zams(facts))
        self.received.append(entry)
        return None if mode == "lost_ack" else self._ack(message, "AA")

    def _ack(self, message: str, code: str, problem: Problem | None = None) -> str:
        segments = split(message)
        msh = segments[0] if segments and segments[0].name == "MSH" else None
        get = (lambda n: msh.f(n)) if msh else (lambda n: "")
        trigger = msh.c(9, 2) if msh else ""
        lines = [
            f"MSH|^~\\&|{self.application}|{self.facility}|{get(3)}|{get(4)}|{_now()}||ACK^{trigger}^ACK|"
            f"ACK{next(self._ids)}|{get(11) or 'P'}|{get(12) or '2.6'}|||||FRA|UNICODE UTF-8",
            f"MSA|{code}|{get(10)}",
        ]
        if problem:
            detail = problem.detail.replace("|", "/").replace("^", "/").replace("\r", " ")
            lines.append(f"ERR||{problem.location}|{problem.code}^{problem.label}^HL70357|E||||{detail}")
        return "\r".join(lines)

    # --- business receipts (ZAM) --------------------------------------------------------------------

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _zam(self, facts: Facts, trigger: str, obx: list[str], err: str | None = None) -> str:
        app, fac = facts.sender
        lines = [
            f"MSH|^~\\&|{self.application}|{self.facility}|{app}|{fac}|{_now()}||ZAM^{trigger}^ZAM_Z01|"
            f"ZAM{next(self._ids)}|P|2.6|||||FRA|UNICODE UTF-8|||2.1^CISIS_CDA_HL7_V2",
            f"EVN||{_now()}",
            *obx,
        ]
        if err:
            lines.append(err)
        return "\r".join(lines)

    def receipts_for(self, facts: Facts) -> list[tuple[str, str]]:
        flags, original = facts.flags, facts.control_id
        asked, read_asked = flags.get("ACK_RECEPTION") == "Y", flags.get("ACK_LECTURE_MSS") == "Y"
        out: list[tuple[str, str]] = []
        if asked and flags.get("DESTDMP") == "Y":
            value = "N" if self.dmp_closed else "Y"
            obx = (
                f"OBX|1|CWE|ACK_RECEPTION_DMP^Accusé de réception DMP^AckMetierZAM|{original}|{value}^^{YN}"
                "||||||F"
            )
            out.append(("Z01", self._zam(facts, "Z01", [obx], DMP_CLOSED if self.dmp_closed else None)))
        for recipient in facts.recipients:
            wanted = flags.get("DESTMSSANTEPAT" if recipient.is_patient else "DESTMSSANTEPS") == "Y"
            if not wanted:
                continue
            error = self.mss_errors.get(recipient.address)
            if asked:
                first = (
                    f"OBX|1|CWE|ACK_RECEPTION_MSS^Accusé de réception MSSanté^AckMetierZAM|{original}|"
                    f"{'N' if error else 'Y'}^^{YN}||||||F"
                )
                second = (
                    f"OBX|2|XTN|DESTINATAIRE_MSS^Destinataire MSSanté^AckMetierZAM|{recipient.identifier}|"
                    f"^^X.400^{recipient.address}||||||F"
                )
                err = (
                    f"ERR|||207^Application internal error^messageErrorCondition|E|{error}^^SMTPERRORCODE"
                    if error
                    else None
                )
                out.append(("Z02", self._zam(facts, "Z02", [first, second], err)))
            if read_asked and self.send_read_receipts and not error:
                first = f"OBX|1|CWE|ACK_LECTURE_MSS^Accusé de lecture^AckMetierZAM|{original}|Y^^{YN}||||||F"
                second = (
                    f"OBX|2|XTN|LECTEUR_MSS^Lecteur du courriel MSSanté^AckMetierZAM|{recipient.identifier}|"
                    f"^^X.400^{recipient.address}||||||F"
                )
                out.append(("Z03", self._zam(facts, "Z03", [first, second])))
        return out

    async def _send_zams(self, facts: Facts) -> None:
        if self.zam_port is None:
            return
        await asyncio.sleep(self.zam_delay_s)
        for trigger, message in self.receipts_for(facts):
            try:
                answer = await exchange(self.zam_host, self.zam_port, message, timeout=10)
            except (OSError, TimeoutError) as exc:
                log.warning("ZAM %s not delivered to the RIS: %s", trigger, type(exc).__name__)
                self.zams.append((trigger, None))
                continue
            msa = next((s for s in split(answer or "") if s.name == "MSA"), None)
            self.zams.append((trigger, msa.f(1) if msa else None))
