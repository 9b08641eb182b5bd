"""
The mail transports through `roster mail test ADDRESS` (docs/cli.md): a real
SMTP server (smtp_server.py, aiosmtpd on a free loopback port) and the file:
transport. The exit code tells the delivery outcome: 0 sent, 5 temporary
(the outbox would retry: connection refused, SMTP 4xx, no STARTTLS when it
is required), 6 refused for good (SMTP 5xx); 1 an address roster refuses.
No database is involved, so these run once, not per backend.
"""

import glob
import email
import email.policy
import os
import socket
import threading
import time

from conftest import run_roster
from smtp_server import SmtpServer, smtp, text_of, to_addr  # noqa: F401 (smtp: the fixture)

SECRET = "s3cret-Pa55"


def mail_test(address, *args):
    return run_roster("mail", "test", address, *args, timeout=60)


def assert_exit(r, code):
    assert r.returncode == code, f"exit {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"


def test_mail_test_delivers_multipart_with_encoded_subject(smtp):
    site = "École Ünïcode — 日本語 ✉"
    r = mail_test("anna@example.org", "--mail-url", smtp.url, "--mail-from", "noreply@school.example",
                  "--site-name", site)
    assert_exit(r, 0)
    assert "250" in r.stdout and "queued" in r.stdout, r.stdout
    smtp.wait_for()
    (m,) = smtp.received()
    assert m.mail_from == "noreply@school.example"
    assert m.rcpt_tos == ["anna@example.org"]
    msg = m.message
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
    assert msg["From"].addresses[0].display_name == site
    assert msg["From"].addresses[0].addr_spec == "noreply@school.example"
    assert msg["To"].addresses[0].addr_spec == "anna@example.org"
    assert site in str(msg["Subject"])
    raw_head = m.data.split(b"\r\n\r\n", 1)[0]
    assert all(b < 0x80 for b in raw_head), "raw non-ASCII in the header"
    assert b"=?UTF-8?" in raw_head
    assert max(len(line) for line in raw_head.split(b"\r\n")) <= 78
    assert msg["Message-ID"].endswith("@school.example>")
    assert msg["Date"].datetime is not None
    assert not msg.defects and all(not p.defects for p in msg.iter_parts())


def test_mail_test_hostile_site_name_adds_no_header(smtp):
    hostile = "Evil\r\nBcc: victim@evil.example\r\nSubject: forged"
    r = mail_test("anna@example.org", "--mail-url", smtp.url, "--site-name", hostile)
    assert_exit(r, 0)
    smtp.wait_for()
    (m,) = smtp.received()
    assert m.rcpt_tos == ["anna@example.org"]
    assert m.message["Bcc"] is None
    assert len(m.message.get_all("Subject")) == 1
    # The site name is in the test mail's subject too: one line, the CR LF gone.
    assert str(m.message["Subject"]) == "Evil Bcc: victim@evil.example Subject: forged: test mail"
    assert m.message["From"].addresses[0].addr_spec == "roster@localhost"
    assert len(m.message.get_all("From")) == 1


def test_mail_test_hostile_address_refused_nothing_sent(smtp):
    for bad in ("anna@example.org\r\nRCPT TO:<victim@evil.example>", "anna@example.org>",
                "<anna@example.org>", "a b@example.org", "anna@example.org, victim@evil.example"):
        r = mail_test(bad, "--mail-url", smtp.url)
        assert_exit(r, 1)
    r = mail_test("anna@example.org", "--mail-url", smtp.url,
                  "--mail-from", "x@example.org\r\nRCPT TO:<victim@evil.example>")
    assert_exit(r, 2)
    assert smtp.messages == []


def test_mail_test_smtp_4xx_is_retry(smtp):
    smtp.answer("451 4.3.0 Mailbox busy, try later")
    r = mail_test("anna@example.org", "--mail-url", smtp.url)
    assert_exit(r, 5)
    assert "451 4.3.0 Mailbox busy" in r.stderr and "temporary" in r.stderr
    smtp.answer(None)
    assert_exit(mail_test("anna@example.org", "--mail-url", smtp.url), 0)
    smtp.wait_for()
    assert len(smtp.messages) == 1


def test_mail_test_smtp_5xx_is_refused(smtp):
    smtp.answer("550 5.7.1 Message rejected")
    r = mail_test("anna@example.org", "--mail-url", smtp.url)
    assert_exit(r, 6)
    assert "550 5.7.1 Message rejected" in r.stderr
    smtp.answer(None)
    smtp.answer("550 5.1.1 No such user", at="RCPT")
    r = mail_test("anna@example.org", "--mail-url", smtp.url)
    assert_exit(r, 6)
    assert "550 5.1.1 No such user" in r.stderr
    assert smtp.messages == []


def test_mail_test_starttls_required_refuses_clear_text(smtp):
    r = mail_test("anna@example.org", "--mail-url", smtp.url + "?starttls=required")
    assert_exit(r, 5)
    assert "STARTTLS" in r.stderr
    assert smtp.messages == []
    # Opportunistic (the default): sent in clear to a server without STARTTLS.
    assert_exit(mail_test("anna@example.org", "--mail-url", smtp.url), 0)


def test_mail_test_outage_then_back_on_the_same_port(smtp):
    smtp.stop()
    r = mail_test("anna@example.org", "--mail-url", smtp.url)
    assert_exit(r, 5)
    assert "connect" in r.stderr.lower()
    smtp.start()
    assert_exit(mail_test("anna@example.org", "--mail-url", smtp.url), 0)
    smtp.wait_for()
    assert len(smtp.messages) == 1


def test_mail_url_password_never_shown(smtp):
    url = smtp.url.replace("smtp://", f"smtp://mailer:{SECRET}@")
    outputs = []
    r = mail_test("anna@example.org", "--mail-url", url, "--log-level", "debug")
    assert_exit(r, 0)
    assert "mailer:***@" in r.stdout
    outputs += [r.stdout, r.stderr]
    smtp.answer("451 4.3.0 later")
    r = mail_test("anna@example.org", "--mail-url", url, "--log-level", "debug")
    assert_exit(r, 5)
    outputs += [r.stdout, r.stderr]
    for bad in (url + "?starttls=maybe", url + "/path", url.replace(str(smtp.port), "99999")):
        r = mail_test("anna@example.org", "--mail-url", bad)
        assert_exit(r, 2)
        assert "not shown" in r.stderr
        outputs += [r.stdout, r.stderr]
    env_r = run_roster("serve", "--help")
    outputs += [env_r.stdout, env_r.stderr]
    for text in outputs:
        assert SECRET not in text, text


def test_file_transport_one_parseable_eml_per_mail(tmp_path):
    maildir = tmp_path / "deep" / "mail"  # made on demand
    for i in range(3):
        r = mail_test(f"user{i}@example.org", "--mail-url", f"file:{maildir}",
                      "--site-name", "Schüler")
        assert_exit(r, 0)
        assert str(maildir) in r.stdout
    names = sorted(os.listdir(maildir))
    assert len(names) == 3 and all(n.endswith(".eml") and not n.startswith(".") for n in names)
    seen = set()
    for path in glob.glob(str(maildir / "*.eml")):
        with open(path, "rb") as f:
            data = f.read()
        assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")
        msg = email.message_from_bytes(data, policy=email.policy.default)
        assert msg.get_content_type() == "multipart/alternative"
        assert not msg.defects
        seen.add(msg["To"].addresses[0].addr_spec)
        assert msg.get_body(("plain",)).get_content().strip()
    assert seen == {f"user{i}@example.org" for i in range(3)}


def test_file_transport_unwritable_is_retry(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = mail_test("anna@example.org", "--mail-url", f"file:{blocker}/mail")
    assert_exit(r, 5)
    assert str(blocker) in r.stderr


def test_mail_templates_override_and_broken_template(smtp, tmp_path):
    (tmp_path / "test.subject").write_text("Überprüfung von {{site_name}}\n")
    (tmp_path / "test.html").write_text("<p>Hallo von {{site_name}}</p>\n")
    r = mail_test("anna@example.org", "--mail-url", smtp.url, "--site-name", "<b>Schule</b>",
                  "--mail-templates", str(tmp_path))
    assert_exit(r, 0)
    smtp.wait_for()
    (m,) = smtp.received()
    assert str(m.message["Subject"]) == "Überprüfung von <b>Schule</b>"
    html = m.message.get_body(("html",)).get_content()
    assert "<p>Hallo von &lt;b&gt;Schule&lt;/b&gt;</p>" in html, html
    text = m.message.get_body(("plain",)).get_content()
    assert "test mail from <b>Schule</b>" in text, "the embedded text part is kept"
    (tmp_path / "verify.txt").write_text("{{#link}} never closed")
    r = mail_test("anna@example.org", "--mail-url", smtp.url, "--mail-templates", str(tmp_path))
    assert_exit(r, 5)
    assert "verify.txt" in r.stderr
    assert len(smtp.messages) == 1


def test_serve_refuses_a_broken_mail_template(tmp_path):
    (tmp_path / "reset.html").write_text("<p>{{#link}}</p>")
    r = run_roster("serve", "--bind", "127.0.0.1:0", "--db", f"sqlite:{tmp_path}/r.db",
                   "--mail-templates", str(tmp_path))
    assert_exit(r, 1)
    assert "reset.html" in r.stderr and "refusing to serve" in r.stderr


def test_mail_test_starttls_offered_is_used_no_fallback_to_clear():
    """The server offers STARTTLS with a certificate nobody trusts: roster
    asks for STARTTLS (opportunistic TLS), the handshake fails verification,
    and the mail is not sent in clear after it (temporary: retried)."""
    smtp = SmtpServer(starttls=True).start()
    try:
        r = mail_test("anna@example.org", "--mail-url", smtp.url)
        assert_exit(r, 5)
        assert smtp.starttls_requests >= 1
        assert "certificate" in r.stderr.lower() or "ssl" in r.stderr.lower(), r.stderr
        assert smtp.messages == []
    finally:
        smtp.close()


def test_mail_test_silent_server_times_out():
    """A server that accepts the connection and never greets: the attempt
    ends at the transport's 10 s connect bound (which covers the greeting and
    EHLO) as a temporary failure."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    held = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        start = time.monotonic()
        r = mail_test("anna@example.org", "--mail-url",
                      f"smtp://127.0.0.1:{listener.getsockname()[1]}")
        took = time.monotonic() - start
        assert_exit(r, 5)
        assert "timed out" in r.stderr.lower() or "timeout" in r.stderr.lower(), r.stderr
        assert 9 <= took <= 20, took
    finally:
        stop.set()
        t.join()
        for c in held:
            c.close()
        listener.close()


def test_smtp_fixture_fail_next_and_refuse(smtp):
    """The fixture's outbox-test API (fail_next, refuse, wait_for with a predicate, link
    helpers) seen from a real client."""
    smtp.fail_next(1, 451)
    assert_exit(mail_test("anna@example.org", "--mail-url", smtp.url), 5)
    assert_exit(mail_test("anna@example.org", "--mail-url", smtp.url), 0)
    smtp.refuse("bounce@example.org", 550)
    assert_exit(mail_test("bounce@example.org", "--mail-url", smtp.url), 6)
    msg = smtp.wait_for(lambda m: to_addr(m) == "anna@example.org")
    assert "test mail" in text_of(msg)
    assert [e[1] for e in smtp.envelopes] == [["anna@example.org"]]
