"""
A real SMTP server for the tests: Debian's python3-aiosmtpd on 127.0.0.1, in
a thread of the test process. No STARTTLS and no AUTH are offered (so a
`?starttls=required` URL must refuse to send to it, and libcurl skips AUTH
even when the URL carries a user and password). `SmtpServer(starttls=True)`
offers STARTTLS with a fresh self-signed certificate (made with the openssl
command), which no client trusts: `starttls_requests` counts the STARTTLS
commands it got, so a test sees that a client tried TLS and did not fall back
to clear text.

    from smtp_server import SmtpServer

    smtp = SmtpServer()            # picks a free loopback port, starts listening
    smtp.url                       # "smtp://127.0.0.1:<port>" (for --mail-url)
    smtp.wait_for(1, timeout=10)   # blocks until that many mails arrived; returns them
    smtp.messages()                # [Received(mail_from, rcpt_tos, data, message)], a copy
    smtp.answer("451 4.3.0 Try again later")   # every DATA answered so from now on;
    smtp.answer("550 5.7.1 No", at="RCPT")      # ... or every RCPT; answer(None): accept
    smtp.stop(); smtp.start()      # an outage: the same port, listening again
    smtp.close()                   # at teardown (idempotent)

Or the pytest fixture `smtp` (import it into a test module: `from smtp_server
import smtp`), which closes the server at teardown. `Received.message` is the
mail parsed by Python's `email` package (policy.default), `data` its bytes.
Mails refused by an `answer` are not recorded. Thread-safe.
"""

import collections
import email
import email.policy
import os
import ssl
import subprocess
import tempfile
import threading
import time

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from pgcluster import free_port

Received = collections.namedtuple("Received", "mail_from rcpt_tos data message")


class _Handler:
    def __init__(self, owner):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.owner._reply("RCPT")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.owner._reply("DATA")
        if reply is not None:
            return reply
        data = envelope.original_content or envelope.content
        msg = email.message_from_bytes(data, policy=email.policy.default)
        self.owner._record(Received(envelope.mail_from, list(envelope.rcpt_tos), data, msg))
        return "250 2.0.0 Ok: queued as roster-test"


class _CountingSMTP(SMTP):
    async def smtp_STARTTLS(self, arg):
        self._owner._starttls()
        return await super().smtp_STARTTLS(arg)


class _Controller(Controller):
    def __init__(self, owner, *args, **kw):
        self._owner = owner
        super().__init__(*args, **kw)

    def factory(self):
        smtp = _CountingSMTP(self.handler, **self.SMTP_kwargs)
        smtp._owner = self._owner
        return smtp


def _self_signed_context(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


class SmtpServer:
    def __init__(self, port=None, starttls=False):
        self.port = port or free_port()
        self._lock = threading.Condition()
        self._received = []
        self._replies = {}
        self._controller = None
        self._tls = None
        self.starttls_requests = 0
        if starttls:
            with tempfile.TemporaryDirectory() as d:
                self._tls = _self_signed_context(d)
        self.start()

    def _starttls(self):
        with self._lock:
            self.starttls_requests += 1

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        """Listens (again) on self.port; returns within a few seconds or raises."""
        if self._controller is not None:
            return
        deadline = time.monotonic() + 10
        while True:
            kw = {"tls_context": self._tls, "require_starttls": False} if self._tls else {}
            c = _Controller(self, _Handler(self), hostname="127.0.0.1", port=self.port,
                            ready_timeout=5, enable_SMTPUTF8=False, decode_data=False, **kw)
            try:
                c.start()
                self._controller = c
                return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # the port of a stop() a moment ago

    def stop(self):
        """Stops listening; connections are refused until start()."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    close = stop

    def answer(self, reply, at="DATA"):
        """Answer every `at` command ("RCPT" or "DATA") with `reply` ("451 ..."); None: accept."""
        with self._lock:
            if reply is None:
                self._replies.pop(at, None)
            else:
                self._replies[at] = reply

    def _reply(self, at):
        with self._lock:
            return self._replies.get(at)

    def _record(self, received):
        with self._lock:
            self._received.append(received)
            self._lock.notify_all()

    def messages(self):
        with self._lock:
            return list(self._received)

    def wait_for(self, n, timeout=10):
        """The first `n` mails, waiting up to `timeout` seconds for them; fails the test if not."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._received) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"{len(self._received)} mail(s) received within {timeout}s, "
                                f"expected {n}")
                self._lock.wait(left)
            return list(self._received[:n])


@pytest.fixture
def smtp():
    s = SmtpServer()
    yield s
    s.close()
