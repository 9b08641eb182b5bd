"""
The outbox tests' SMTP server (test_mail.py; smtp_server.py is the transport
tests' own, with STARTTLS): a real SMTP server for the black-box tests: Debian's python3-aiosmtpd on a
free loopback port, in a thread of the test process. Every accepted message is
kept (`messages`, parsed with the email package), so a test reads the mail a
`roster serve` sent and follows its link's token.

    smtp = SmtpServer().start()          # or the `smtp` fixture of test modules
    url = smtp.url                       # smtp://127.0.0.1:PORT for --mail-url
    msg = smtp.wait_for(lambda m: m["To"] == "a@example.com")
    token = link_token(msg, "/account/email/verify")
    smtp.stop(); smtp.start()            # an outage; the same port again
    smtp.fail_next(2, 451)               # the next two DATA answers 451, then 250
    smtp.delay = 0.5                     # every DATA answer half a second late
    smtp.refuse("bad@example.com", 550)  # a mail to this address: DATA answers 550

Reusable by any test module (the pages tests too): `from smtp_outbox import
SmtpServer, link_token`: it answers the first N mails 4xx (then accepts), refuses
chosen recipients for good, answers slowly, and parses the links of the mails.
"""

import asyncio
import email
import email.policy
import re
import socket
import threading
import time

from aiosmtpd.controller import Controller


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, owner):
        self.owner = owner

    async def handle_DATA(self, server, session, envelope):
        if self.owner.delay:
            await asyncio.sleep(self.owner.delay)
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
        return "250 OK"


class SmtpServer:
    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []
        self.raw = []
        self.envelopes = []
        self._lock = threading.Lock()
        self._fail_next = 0
        self._fail_code = 451
        self._refused = {}
        self._controller = None
        self.delay = 0  # seconds before each DATA answer (a slow server)

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def start(self):
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                      ready_timeout=10)
        self._controller.start()
        return self

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def fail_next(self, n, code=451):
        with self._lock:
            self._fail_next, self._fail_code = n, code

    def refuse(self, address, code=550):
        self._refused[address.lower()] = code

    def snapshot(self):
        with self._lock:
            return list(self.messages)

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
