"""The application mailbox (BAL applicative) as a real IMAP server: Debian's Dovecot started on loopback
with a configuration of its own (implicit TLS with the sandbox certificate, one user, Maildir), and
the receipts the operator returns (DSN, MDN) delivered into it by writing to the Maildir, as an MDA does.

Run as root, Dovecot's own `dovecot` / `dovenull` users own the mail and the login processes; otherwise
everything runs as the current user. Never imports `ris`.
"""

from __future__ import annotations

import mailbox
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

from cryptography import x509

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


class DovecotMissing(RuntimeError):
    """Dovecot is not installed (`./run` installs Debian's dovecot-imapd)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ImapMailbox:
    """`with ImapMailbox(cert, key, user=..., password=...) as box:` then `box.port`, `box.deliver(bytes)`."""

    def __init__(self, cert: Path, key: Path, *, user: str, password: str) -> None:
        if not Path(DOVECOT).exists():
            raise DovecotMissing("dovecot is not installed: run ./run (Debian package dovecot-imapd)")
        self.cert, self.key = cert, key
        self.user, self.password = user, password
        # A folder of its own under /tmp: Dovecot's unprivileged processes must traverse every parent.
        self._own = tempfile.TemporaryDirectory(prefix="sandbox-imap-")
        self.folder = Path(self._own.name)
        self.folder.chmod(0o711)
        self.port = 0
        self._pid_file = self.folder / "run" / "master.pid"
        root = os.geteuid() == 0
        me = pwd.getpwuid(os.geteuid()).pw_name
        self._mail_user = pwd.getpwnam("dovecot") if root else pwd.getpwuid(os.geteuid())
        self._login_user = "dovenull" if root else me
        self._internal_user = "dovecot" if root else me

    @property
    def maildir(self) -> Path:
        return self.folder / "home" / self.user / "Maildir"

    def _config(self) -> str:
        d, uid, gid = self.folder, self._mail_user.pw_uid, self._mail_user.pw_gid
        return f"""
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{d}/server.pem
ssl_key = <{d}/server.key
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
login_log_format_elements = user=<%u> method=%m rip=%r %c %k
auth_mechanisms = plain
default_login_user = {self._login_user}
default_internal_user = {self._internal_user}
first_valid_uid = {uid}
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""

    def start(self) -> ImapMailbox:
        self.port = _free_port()
        for sub in ("run", "state"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        users = self.folder / "users"
        users.write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        users.chmod(0o644)
        shutil.copy(self.cert, self.folder / "server.pem")  # the certificate and key readable by Dovecot
        shutil.copy(self.key, self.folder / "server.key")
        self.maildir.parent.mkdir(parents=True, exist_ok=True)
        mailbox.Maildir(self.maildir, create=True)
        self._chown_mail()
        conf = self.folder / "dovecot.conf"
        conf.write_text(self._config())
        errors = self.folder / "start.err"
        with errors.open("wb") as err:  # the daemon keeps no pipe of ours open
            code = subprocess.run(
                [DOVECOT, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err, timeout=30
            )
        if code.returncode != 0:
            raise RuntimeError(f"dovecot did not start: {errors.read_text().strip()[:400]}")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not listen in time")

    def logins(self) -> list[str]:
        """The login lines of Dovecot's log: who logged in, and the TLS protocol and suite they used."""
        try:
            lines = (self.folder / "dovecot.log").read_text().splitlines()
        except OSError:
            return []
        return [line for line in lines if "Login:" in line]

    def presented_serial(self) -> int:
        """The serial number of the certificate the server presents now (nothing verified)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", self.port), timeout=5) as raw,
            context.wrap_socket(raw) as tls,
        ):
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number

    def replace_certificate(self, cert: Path, key: Path) -> None:
        """Serve another certificate: copied in, Dovecot reloaded (SIGHUP), back once it presents it."""
        shutil.copy(cert, self.folder / "server.pem")
        shutil.copy(key, self.folder / "server.key")
        wanted = x509.load_pem_x509_certificate(cert.read_bytes()).serial_number
        os.kill(int(self._pid_file.read_text().strip()), signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.presented_serial() == wanted:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("dovecot did not take the new certificate in time")

    def _chown_mail(self) -> None:
        if os.geteuid() != 0:
            return
        uid, gid = self._mail_user.pw_uid, self._mail_user.pw_gid
        for path in [self.folder / "home", *(self.folder / "home").rglob("*")]:
            os.chown(path, uid, gid)

    def deliver(self, data: bytes) -> None:
        """Put one message in the INBOX (unread), as a local delivery agent would."""
        mailbox.Maildir(self.maildir, create=False).add(data)
        self._chown_mail()

    def stop(self) -> None:
        try:
            pid = int(self._pid_file.read_text().strip())
        except (OSError, ValueError):
            pid = None
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.05)
            except ProcessLookupError:
                pass
        self._own.cleanup()

    def __enter__(self) -> ImapMailbox:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
