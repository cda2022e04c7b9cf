"""PAM-FR messages and an MLLP sender for the reliability suites (one patient per message, no INS)."""

from __future__ import annotations

import asyncio
import contextlib

from ris.hl7v2 import mllp

MSH = (
    "MSH|^~\\&|{app}|CHU-X|RIS|CIM|20240306111154||ADT^A28^ADT_A05|{cid}|P|2.5^FRA^2.11|||||FRA|"
    "{charset}|FR||2.11^IHE_FRANCE-2.11-PAM"
)
PID = (
    "PID|1||{ipp}^^^CHU-X&000897406&N^PI||{name}^JEANNE^JEANNE^^^^L||{dob}|F|||{street}^^PARIS^^75007^FRA^H~^^^^^^BDL^^63220"
    "|||||||||||||||||||||VALI"
)


def pam(
    n: int,
    *,
    cid: str | None = None,
    app: str = "GAM",
    name: str = "BURST",
    street: str = "RUE DE LA PAIX",
    dob: str = "19790328",
    charset: str = "UNICODE UTF-8",
) -> str:
    """An A28 creating patient IPP `R<n>` (own domain GAM); `street`: free
    text (PID-11.1), where accents are allowed."""
    segs = [
        MSH.format(app=app, cid=cid or f"R{n}", charset=charset),
        "EVN||20240306111154",
        PID.format(ipp=f"R{n:05d}", name=name, dob=dob, street=street),
        "PV1|1|N",
    ]
    return "\r".join(segs) + "\r"


def msa(ack: str) -> list[str]:
    return ack.split("\r")[1].split("|")


def err(ack: str) -> str:
    return next((seg for seg in ack.split("\r") if seg.startswith("ERR")), "")


async def send_many(
    port: int, messages: list[str], *, links: int = 10, answers: dict[int, str] | None = None
) -> dict[int, str]:
    """Send on `links` connections in parallel, each one message after the other; index -> ACK code
    (filled in `answers` as they come). A link broken by the listener's death stops quietly."""
    answers = {} if answers is None else answers
    queue = list(enumerate(messages))

    async def link() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                n, text = queue.pop(0)
                writer.write(mllp.frame(text))
                await writer.drain()
                answer = await mllp.read_frame(reader)
                if answer is None:
                    return
                answers[n] = msa(answer)[1]
        except (ConnectionError, mllp.MllpError):
            return
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    await asyncio.gather(*(link() for _ in range(links)))
    return answers
