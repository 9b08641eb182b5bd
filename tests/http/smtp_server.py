"""
A real SMTP server for the black-box tests: Debian's python3-aiosmtpd on a
free loopback port, in a thread of the test process. Every accepted message is
kept (`messages`, parsed with the email package), so a test reads the mail a
`roster serve` (or `roster mail test`) sent and follows its link's token.

    smtp = SmtpServer().start()          # or the `smtp` fixture (from smtp_server import smtp)
    url = smtp.url                       # smtp://127.0.0.1:PORT for --mail-url
    msg = smtp.wait_for(lambda m: m["To"] == "a@example.com")
    token = link_token(msg, "/account/email/verify")
    smtp.stop(); smtp.start()            # an outage; the same port again
    smtp.fail_next(2, 451)               # the next two DATA answers 451, then 250
    smtp.delay = 0.5                     # every DATA answer half a second late
    smtp.refuse("bad@example.com", 550)  # a mail to this address: DATA answers 550
    smtp.answer("451 4.3.0 Busy")        # every DATA answered with this line, until
    smtp.answer(None)                    # ... answer(None); answer(..., at="RCPT") for RCPT
    smtp.received()                      # [Received(mail_from, rcpt_tos, data, message)]
    smtp.close()                         # stop (idempotent); the fixture does it

`messages` (parsed), `raw` (bytes) and `envelopes` ((mail_from, rcpt_tos)) are
parallel lists of the accepted mails; `snapshot()` copies `messages` under the
lock. A mail refused by `answer`, `refuse` or `fail_next` is not kept.

No STARTTLS and no AUTH are offered by default (so `?starttls=required` must
refuse to send, and libcurl skips AUTH even when the URL has a password).
`SmtpServer(starttls=True)` offers STARTTLS with a fresh self-signed
certificate (made with the openssl command) that no client trusts;
`starttls_requests` counts the STARTTLS commands received, so a test sees that
a client tried TLS and did not fall back to clear text.

Reusable by any test module (the pages tests too): `from smtp_server import
SmtpServer, link_token, text_of, to_addr`.
"""

import asyncio
import collections
import email
import email.policy
import os
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

Received = collections.namedtuple("Received", "mail_from rcpt_tos data message")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, owner):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.owner._answer("RCPT")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.owner.delay:
            await asyncio.sleep(self.owner.delay)
        reply = self.owner._answer("DATA")
        if reply is not None:
            return reply
        for rcpt in envelope.rcpt_tos:
            code = self.owner._refused.get(rcpt.lower())
            if code is not None:
                return f"{code} 5.7.1 refused by the test"
        with self.owner._lock:
            if self.owner._fail_next > 0:
                self.owner._fail_next -= 1
                return f"{self.owner._fail_code} 4.3.0 try again later (test)"
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.owner.messages.append(msg)
            self.owner.raw.append(envelope.content)
            self.owner.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 Ok: queued"


class _CountingSMTP(SMTP):
    async def smtp_STARTTLS(self, arg):
        with self._owner._lock:
            self._owner.starttls_requests += 1
        return await super().smtp_STARTTLS(arg)


class _Controller(Controller):
    def __init__(self, owner, *args, **kw):
        self._owner = owner
        super().__init__(*args, **kw)

    def factory(self):
        smtp = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        smtp._owner = self._owner
        return smtp


def _self_signed_context():
    with tempfile.TemporaryDirectory() as d:
        cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True, timeout=30)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx


class SmtpServer:
    def __init__(self, port=None, starttls=False):
        self.port = port or free_port()
        self.messages = []
        self.raw = []
        self.envelopes = []
        self._lock = threading.Lock()
        self._fail_next = 0
        self._fail_code = 451
        self._refused = {}
        self._answers = {}
        self._controller = None
        self._tls = _self_signed_context() if starttls else None
        self.starttls_requests = 0
        self.delay = 0  # seconds before each DATA answer (a slow server)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        """Listens (again) on self.port; retries for a few seconds while the port is still
        held by a stop() a moment ago. Returns self."""
        if self._controller is not None:
            return self
        kw = {"tls_context": self._tls, "require_starttls": False} if self._tls else {}
        deadline = time.monotonic() + 10
        while True:
            c = _Controller(self, _Handler(self), hostname="127.0.0.1", port=self.port,
                            ready_timeout=10, **kw)
            try:
                c.start()
                self._controller = c
                return self
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self):
        """Stops listening; connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    close = stop

    def fail_next(self, n, code=451):
        with self._lock:
            self._fail_next, self._fail_code = n, code

    def refuse(self, address, code=550):
        self._refused[address.lower()] = code

    def answer(self, reply, at="DATA"):
        """Answer every `at` command ("RCPT" or "DATA") with the line `reply`; None: accept."""
        with self._lock:
            if reply is None:
                self._answers.pop(at, None)
            else:
                self._answers[at] = reply

    def _answer(self, at):
        with self._lock:
            return self._answers.get(at)

    def snapshot(self):
        with self._lock:
            return list(self.messages)

    def received(self):
        """Every accepted mail as Received(mail_from, rcpt_tos, data, message)."""
        with self._lock:
            return [Received(e[0], e[1], d, m)
                    for e, d, m in zip(self.envelopes, self.raw, self.messages)]

    def wait_for(self, pred=lambda m: True, timeout=20, count=1):
        """The first `count` messages matching `pred` (one message when count == 1)."""
        deadline = time.monotonic() + timeout
        while True:
            got = [m for m in self.snapshot() if pred(m)]
            if len(got) >= count:
                return got[0] if count == 1 else got[:count]
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} of {count} expected mail(s) within {timeout}s; "
                                     f"{len(self.messages)} received in all")
            time.sleep(0.05)


def text_of(msg):
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part is not None else ""


def link_token(msg, path):
    """The token of the link to `path` in the mail's text part (AssertionError if none)."""
    m = re.search(re.escape(path) + r"\?token=([0-9a-f]{64})", text_of(msg))
    assert m, f"no {path} link in the mail:\n{text_of(msg)}"
    return m.group(1)


def to_addr(msg):
    return str(msg["To"]).strip().lower()


@pytest.fixture
def smtp():
    s = SmtpServer().start()
    yield s
    s.close()
