"""
The account lifecycle by email, end to end (issue 11): real `roster serve`
processes on both backends send through a real SMTP server (smtp_server.py,
aiosmtpd on a free loopback port); each test reads the mail it caused and
follows its link's token through the API. The retry schedule, lease and poll
interval are shortened by flags so a test takes seconds.
"""

import concurrent.futures
import glob
import json
import os
import random
import re
import statistics
import time

import pytest
import requests

from conftest import (FAST_HASH, LOGIN, ME, PASSWORD, assert_error, assert_invalid, auth,
                      cli, cli_json, cli_user, invite, login, summary, token_of, user_body)
from smtp_server import SmtpServer, link_token, text_of, to_addr

VERIFY = "/users/email/verify/"
RESEND = "/users/email/verify/resend/"
RESET = "/users/password/reset/"
RESET_CONFIRM = "/users/password/reset/confirm/"
CHANGE = "/users/me/password/"
EMAIL_CONFIRM = "/users/email/change/confirm/"
PUBLIC = "http://roster.test"
NEW_PASSWORD = "another-Staple-battery-7"
RESET_SENT = "If an account uses this email, a password reset link has been sent to it."
TOKEN_MSG = {"token_invalid": "This link is invalid.", "token_expired": "This link has expired.",
             "token_used": "This link has already been used."}


def mail_args(smtp, *more):
    return ["--mail-url", smtp.url, "--public-url", PUBLIC + "/", "--mail-retry-min", "1s",
            "--mail-poll", "1s", "--mail-lease", "10s", *FAST_HASH, *more]


@pytest.fixture
def smtp():
    s = SmtpServer().start()
    yield s
    s.stop()


@pytest.fixture
def mserver(db, start_servers, smtp):
    return start_servers(db, args=mail_args(smtp))[0]


def to(addr):
    return lambda m: to_addr(m) == addr


def subject_has(word):
    return lambda m: word.lower() in str(m["Subject"]).lower()


def register(server, name, **over):
    r = server.register(user_body(name, **over))
    assert r.status_code == 201, r.text
    return r.json()["user"]


def assert_token_error(resp, code):
    assert_error(resp, 400, code, TOKEN_MSG[code])


def me(server, token):
    r = server.get(ME, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def test_verify_flow_link_token_once(mserver, smtp, db):
    register(mserver, "vera")
    msg = smtp.wait_for(to("vera@example.com"))
    assert "roster" in str(msg["Subject"]), msg["Subject"]  # --site-name's default
    assert PUBLIC + "/account/email/verify?token=" in text_of(msg)
    token = link_token(msg, "/account/email/verify")
    t = token_of(mserver, "vera")
    assert me(mserver, t)["email_verified"] is False
    assert_token_error(mserver.post(VERIFY, json={"token": "0" * 64}), "token_invalid")
    assert_token_error(mserver.post(VERIFY, json={"token": "not-a-token"}), "token_invalid")
    assert_invalid(mserver.post(VERIFY, json={}), "token")
    r = mserver.post(VERIFY, json={"token": token})
    assert (r.status_code, r.json()) == (200, {"message": "Your email address has been verified."})
    assert me(mserver, t)["email_verified"] is True
    assert_token_error(mserver.post(VERIFY, json={"token": token}), "token_used")
    # Verified: a resend answers the same and sends nothing.
    r = mserver.post(RESEND, headers=auth(t))
    assert (r.status_code, r.json()) == (202, {"message": "A verification link has been sent."})
    assert mserver.post(RESEND).status_code == 401
    time.sleep(2.5)
    assert len([m for m in smtp.snapshot() if to_addr(m) == "vera@example.com"]) == 1
    rows = db.query("SELECT kind, status FROM mail_outbox")
    assert rows == [("verify", "sent")], rows


def test_verify_resend_sends_a_new_working_link(mserver, smtp):
    register(mserver, "resa")
    first = link_token(smtp.wait_for(to("resa@example.com")), "/account/email/verify")
    t = token_of(mserver, "resa")
    assert mserver.post(RESEND, headers=auth(t)).status_code == 202
    mails = smtp.wait_for(to("resa@example.com"), count=2)
    second = link_token(mails[1], "/account/email/verify")
    assert second != first
    assert mserver.post(VERIFY, json={"token": second}).status_code == 200


def test_require_verified_email_refuses_login_until_verified(db, start_servers, smtp):
    s = start_servers(db, args=mail_args(smtp, "--require-verified-email", "on"))[0]
    register(s, "strict")
    r = s.post(LOGIN, json={"username": "strict", "password": PASSWORD})
    assert_error(r, 403, "email_not_verified", "Verify your email address before logging in.")
    token = link_token(smtp.wait_for(to("strict@example.com")), "/account/email/verify")
    assert s.post(VERIFY, json={"token": token}).status_code == 200
    login(s, username="strict")


def reset_token(server, smtp, addr, n=1):
    r = server.post(RESET, json={"email": addr})
    assert (r.status_code, r.json()) == (202, {"message": RESET_SENT})
    mails = smtp.wait_for(lambda m: to_addr(m) == addr and "/account/password/reset" in text_of(m),
                          count=n)
    return link_token(mails if n == 1 else mails[-1], "/account/password/reset")


def test_reset_flow_old_password_refused_tokens_revoked_single_use(mserver, smtp):
    register(mserver, "rita")
    old = token_of(mserver, "rita")
    first = reset_token(mserver, smtp, "rita@example.com")
    second = reset_token(mserver, smtp, "rita@example.com", n=2)
    assert first != second
    assert_invalid(mserver.post(RESET_CONFIRM, json={"token": first, "password": "12345678"}),
                   "password")
    r = mserver.post(RESET_CONFIRM, json={"token": first, "password": NEW_PASSWORD})
    assert (r.status_code, r.json()) == (200, {"message": "Your password has been reset."})
    assert mserver.get(ME, headers=auth(old)).status_code == 401
    r = mserver.post(LOGIN, json={"username": "rita", "password": PASSWORD})
    assert_error(r, 400, "invalid_credentials")
    t = login(mserver, NEW_PASSWORD, username="rita")["token"]
    assert me(mserver, t)["email_verified"] is True  # the link proved the mailbox
    assert_token_error(mserver.post(RESET_CONFIRM, json={"token": first, "password": NEW_PASSWORD}),
                       "token_used")
    # Every other reset link of the account is spent with it.
    assert_token_error(
        mserver.post(RESET_CONFIRM, json={"token": second, "password": NEW_PASSWORD}),
        "token_used")
    smtp.wait_for(lambda m: to_addr(m) == "rita@example.com" and
                  "password was changed" in str(m["Subject"]).lower())


def test_reset_expired_with_a_short_ttl(db, start_servers, smtp):
    s = start_servers(db, args=mail_args(smtp, "--reset-ttl", "1s"))[0]
    register(s, "tardy")
    token = reset_token(s, smtp, "tardy@example.com")
    time.sleep(2.2)
    assert_token_error(s.post(RESET_CONFIRM, json={"token": token, "password": NEW_PASSWORD}),
                       "token_expired")
    login(s, username="tardy")


def reset_medians(server, addrs, rounds, bodies):
    """Median ms per kind over `rounds` shuffled rounds (5 more first, not counted)."""
    times = {k: [] for k in addrs}
    order = list(addrs)
    rng = random.Random(11)
    with requests.Session() as session:  # one kept-alive connection: the server's time, not TCP's
        for i in range(rounds + 5):
            rng.shuffle(order)  # no address always first after a pause
            for kind in order:
                t0 = time.perf_counter()
                r = session.post(server.url + RESET, json={"email": addrs[kind]}, timeout=30)
                if i >= 5:  # warm-up rounds: caches and prepared statements of every path
                    times[kind].append(time.perf_counter() - t0)
                bodies.add((r.status_code, json.dumps(r.json(), sort_keys=True)))
    return {k: statistics.median(v) * 1000 for k, v in times.items()}


def test_reset_known_unknown_inactive_same_answer_and_timing(mserver, smtp, db):
    register(mserver, "known")
    register(mserver, "sleepy")
    db.execute("UPDATE users SET is_active = ? WHERE username = ?", False, "sleepy")
    addrs = {"known": "known@example.com", "unknown": "nobody@example.com",
             "inactive": "sleepy@example.com"}
    bodies = set()
    # Two cores shared with other builds make a request's time bimodal now and then, which
    # moves a median by far more than the server's work does: a difference in that work
    # shows in every one of three measurements, load in one of them.
    for attempt in range(3):
        medians = reset_medians(mserver, addrs, 100, bodies)
        summary(f"reset timing medians (ms) [{db.backend}], measurement {attempt + 1}: " +
              ", ".join(f"{k} {v:.2f}" for k, v in medians.items()))
        if max(medians.values()) <= min(medians.values()) * 1.2:
            break
    assert max(medians.values()) <= min(medians.values()) * 1.2, medians
    assert bodies == {(202, json.dumps({"message": RESET_SENT}))}, bodies
    # The same database work: one outbox row per request, whatever the address.
    rows = dict(db.query("SELECT kind, count(*) FROM mail_outbox WHERE kind LIKE 'reset%'"
                         " GROUP BY kind"))
    n = 105 * (attempt + 1)
    assert rows == {"reset": n, "reset_unknown": 2 * n}, rows
    time.sleep(3)  # the unknown-account notices are never sent (off by default)
    assert not [m for m in smtp.snapshot() if "/account/email/verify" not in text_of(m) and
                to_addr(m) in (addrs["unknown"], addrs["inactive"])]


def test_password_change_keeps_the_caller_revokes_the_others(mserver, smtp):
    register(mserver, "paul")
    a, b = token_of(mserver, "paul"), token_of(mserver, "paul")
    r = mserver.post(CHANGE, headers=auth(a),
                     json={"current_password": "wrong-Horse-battery-1", "new_password": NEW_PASSWORD})
    body = assert_invalid(r, "current_password")
    assert body["current_password"] == ["Your current password is incorrect."]
    assert_invalid(mserver.post(CHANGE, headers=auth(a),
                                json={"current_password": PASSWORD, "new_password": "123"}),
                   "new_password")
    r = mserver.post(CHANGE, headers=auth(a),
                     json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert (r.status_code, r.json()) == (200, {"message": "Your password has been changed."})
    assert mserver.get(ME, headers=auth(a)).status_code == 200
    assert mserver.get(ME, headers=auth(b)).status_code == 401
    login(mserver, NEW_PASSWORD, username="paul")
    assert mserver.post(CHANGE, json={}).status_code == 401
    smtp.wait_for(lambda m: to_addr(m) == "paul@example.com" and
                  "password was changed" in str(m["Subject"]).lower())


def test_email_change_confirm_and_race_one_wins(mserver, smtp, db):
    register(mserver, "emma")
    register(mserver, "otto")
    te, to_ = token_of(mserver, "emma"), token_of(mserver, "otto")
    r = mserver.patch(ME, headers=auth(te), json={"email": "otto@example.com"})
    assert_error(r, 400, "email_taken")
    for t in (te, to_):
        r = mserver.patch(ME, headers=auth(t), json={"email": "Shared@Example.com"})
        assert (r.status_code, r.json()) == (
            202, {"message": "A confirmation link has been sent to the new address."})
    mails = smtp.wait_for(lambda m: "/account/email/change" in text_of(m), count=2)
    assert {to_addr(m) for m in mails} == {"shared@example.com"}
    smtp.wait_for(to("emma@example.com"), count=2)  # verification + the notice to the old one
    smtp.wait_for(to("otto@example.com"), count=2)
    assert me(mserver, te)["email"] == "emma@example.com"  # unchanged until confirmed
    tokens = [link_token(m, "/account/email/change") for m in mails]
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        rs = list(ex.map(lambda tok: mserver.post(EMAIL_CONFIRM, json={"token": tok}), tokens))
    statuses = sorted(r.status_code for r in rs)
    assert statuses == [200, 400], [r.text for r in rs]
    loser = [r for r in rs if r.status_code == 400][0]
    assert_error(loser, 400, "email_taken")
    winner = [r for r in rs if r.status_code == 200][0].json()
    assert winner["email"] == "Shared@Example.com" and winner["email_verified"] is True
    assert db.scalar("SELECT count(*) FROM users WHERE email_key = ?", "shared@example.com") == 1


def test_invitation_mail_on_create_and_resend(mserver, smtp, db):
    cli_user(db, "teach1", "--can-invite-teachers", email="t@example.com")
    t = token_of(mserver, "teach1")
    inv = invite(mserver, t, "newt@example.com")
    msg = smtp.wait_for(to("newt@example.com"))
    assert "teach1" in text_of(msg)
    mailed = link_token(msg, "/account/invitation")
    assert mailed != inv["token"]
    # Resend: a new returned token and a new mail; the first mail's link dies with the old token.
    r = mserver.post(f"/users/invitations/{inv['id']}/resend/", headers=auth(t))
    assert r.status_code == 200, r.text
    second = link_token(smtp.wait_for(to("newt@example.com"), count=2)[1], "/account/invitation")
    r = mserver.register(user_body("newt", invitation=mailed))
    assert_error(r, 400, "invitation_invalid")
    r = mserver.register(user_body("newt", invitation=second))
    assert r.status_code == 201 and r.json()["user"]["role"] == "teacher", r.text
    # Accepted once: the returned token of the same invitation is now used.
    r = mserver.register(user_body("newt2", email="newt@example.com", invitation=r.json() and second))
    assert r.status_code == 400, r.text


def wait_status(db, status, timeout=20, n=1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.scalar("SELECT count(*) FROM mail_outbox WHERE status = ?", status) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"no {status} mail within {timeout}s: "
                         f"{db.query('SELECT id, status, attempts, last_error FROM mail_outbox')}")


def test_smtp_4xx_then_success_retried_5xx_failed_visible(mserver, smtp, db):
    smtp.fail_next(1, 451)
    register(mserver, "later")
    later = smtp.wait_for(to("later@example.com"), timeout=20)
    row = db.query("SELECT status, attempts, last_error FROM mail_outbox")[0]
    assert row[0] == "sent" and row[1] == 2 and "451" in row[2], row
    smtp.refuse("bounce@example.com", 550)
    register(mserver, "bounce")
    wait_status(db, "failed")
    row = db.query("SELECT attempts, last_error FROM mail_outbox WHERE status = 'failed'")[0]
    assert row[0] == 1 and "550" in row[1], row
    listed = cli_json(db, "mail", "list", "--status", "failed")["mails"]
    assert [(m["to"], m["status"]) for m in listed] == [("bounce@example.com", "failed")]
    assert "550" in listed[0]["last_error"]
    shown = cli_json(db, "mail", "show", str(listed[0]["id"]))
    assert shown["kind"] == "verify" and "token" not in json.dumps(shown).lower()
    # its headers as they are sent: the subject composed now equals the one a verify mail had
    assert shown["subject"] == str(later["Subject"]) and shown["from"] == "roster@localhost", shown
    text = cli(db, "mail", "show", str(listed[0]["id"])).stdout
    assert f"subject:     {later['Subject']}" in text, text
    deadline = time.monotonic() + 10
    while True:
        metrics = mserver.get("/metrics").text
        if 'roster_mail_outbox{status="failed"} 1' in metrics or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert 'roster_mail_deliveries_total{kind="verify",outcome="failed"} 1' in metrics
    assert 'roster_mail_deliveries_total{kind="verify",outcome="retried"} 1' in metrics
    assert 'roster_mail_outbox{status="failed"} 1' in metrics
    assert "roster_mail_oldest_queued_age_seconds" in metrics
    # An operator's retry sends it again (refused again: failed again, attempts 2).
    r = cli(db, "mail", "retry", str(listed[0]["id"]))
    assert r.returncode == 0, r.stderr
    deadline = time.monotonic() + 10
    while db.scalar("SELECT attempts FROM mail_outbox WHERE id = ?", listed[0]["id"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_file_transport_one_parseable_eml_per_mail(db, start_servers, tmp_path):
    import email
    import email.policy
    d = tmp_path / "mail"
    s = start_servers(db, args=["--mail-url", f"file:{d}", "--mail-poll", "1s", *FAST_HASH])[0]
    for n in ("fila", "filb"):
        register(s, n)
    deadline = time.monotonic() + 15
    while len(glob.glob(str(d / "*.eml"))) < 2:
        assert time.monotonic() < deadline, os.listdir(d) if d.exists() else "no dir"
        time.sleep(0.1)
    files = sorted(glob.glob(str(d / "*.eml")))
    assert len(files) == 2
    got = set()
    for f in files:
        with open(f, "rb") as fh:
            msg = email.message_from_binary_file(fh, policy=email.policy.default)
        got.add(to_addr(msg))
        assert msg["Message-ID"] and msg["Date"]
        link_token(msg, "/account/email/verify")
    assert got == {"fila@example.com", "filb@example.com"}
    deadline = time.monotonic() + 10
    while True:  # the log line follows the file's rename
        logged = [r.get("detail") for r in s.log_records() if r.get("msg") == "mail sent"]
        if len(logged) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(logged) == files


def database_text(db):
    """Every byte of the database as the test can read it: SQLite's file and WAL; on
    PostgreSQL every row of every table of the schema, as text."""
    if db.backend == "sqlite":
        return b"".join(open(db.path + x, "rb").read() for x in ("", "-wal")
                        if os.path.exists(db.path + x))
    tables = [r[0] for r in db.query("SELECT tablename FROM pg_tables"
                                     " WHERE schemaname = current_schema()")]
    rows = [repr(db.query(f"SELECT * FROM {t}")) for t in tables]
    return "\n".join(rows).encode()


def test_no_token_in_clear_in_database_or_logs(mserver, smtp, db):
    register(mserver, "secret")
    t = token_of(mserver, "secret")
    reset_token(mserver, smtp, "secret@example.com")
    mserver.patch(ME, headers=auth(t), json={"email": "secret2@example.com"})
    smtp.wait_for(lambda m: True, count=4)
    tokens = set()
    for m in smtp.snapshot():
        tokens |= set(re.findall(r"token=([0-9a-f]{64})", text_of(m)))
    assert len(tokens) == 3, tokens
    raw = database_text(db)
    assert db.scalar("SELECT count(*) FROM one_time_tokens") == 3
    log = mserver.log_text()
    for tok in tokens:
        assert tok.encode() not in raw
        assert tok not in log


def test_janitor_deletes_sent_mails_past_retention_and_expired_links(db, start_servers, smtp):
    s = start_servers(db, args=mail_args(smtp, "--mail-retention", "1s", "--verify-ttl", "1s",
                                         "--janitor-interval", "1s"))[0]
    register(s, "janis")
    smtp.wait_for(to("janis@example.com"))
    deadline = time.monotonic() + 15
    while (db.scalar("SELECT count(*) FROM mail_outbox") or
           db.scalar("SELECT count(*) FROM one_time_tokens")):
        assert time.monotonic() < deadline, (db.query("SELECT status, sent_at FROM mail_outbox"),
                                             db.query("SELECT expires_at FROM one_time_tokens"))
        time.sleep(0.2)
    metrics = s.get("/metrics").text
    assert 'roster_janitor_rows_deleted_total{table="mail_outbox"} 1' in metrics
    assert 'roster_janitor_rows_deleted_total{table="one_time_tokens"} 1' in metrics


# --------------------------------------------------------------------------- scenarios

def delivered(smtp, addrs):
    """(sent, sent twice or more, lost) over `addrs`, from what the SMTP server received."""
    got = {}
    for m in smtp.snapshot():
        got[to_addr(m)] = got.get(to_addr(m), 0) + 1
    sent = sum(1 for a in addrs if got.get(a, 0) >= 1)
    twice = sum(1 for a in addrs if got.get(a, 0) >= 2)
    return sent, twice, len(addrs) - sent


def wait_delivered(smtp, addrs, timeout):
    deadline = time.monotonic() + timeout
    while delivered(smtp, addrs)[0] < len(addrs) and time.monotonic() < deadline:
        time.sleep(0.2)
    return delivered(smtp, addrs)


def register_many(servers, names, workers=16):
    def one(i_name):
        i, name = i_name
        return servers[i % len(servers)].register(user_body(name))

    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        return list(ex.map(one, enumerate(names)))


@pytest.mark.scenario
def test_scenario_smtp_outage_during_a_burst_nothing_lost_none_twice(db, start_servers, smtp):
    from conftest import burst, report
    s = start_servers(db, args=mail_args(smtp, "--mail-retry-max", "3s"))[0]
    names = [f"out{i:03d}" for i in range(100)]
    addrs = [f"{n}@example.com" for n in names]
    smtp.stop()
    t0 = time.monotonic()
    results, _ = burst([s], [user_body(n) for n in names])
    counts = report("outage burst", results)
    assert counts == {"201": 100}, counts
    assert db.scalar("SELECT count(*) FROM mail_outbox WHERE status <> 'sent'") == 100
    time.sleep(max(0.0, 20 - (time.monotonic() - t0)))  # the server is away 20 s
    smtp.start()
    sent, twice, lost = wait_delivered(smtp, addrs, 30)
    summary(f"outage [{db.backend}]: mails queued 100, sent {sent}, sent twice {twice}, lost {lost}")
    assert (sent, twice, lost) == (100, 0, 0)
    errors = db.query("SELECT count(*) FROM mail_outbox WHERE attempts > 1 AND last_error <> ''")
    assert errors[0][0] > 0  # the outage was seen and kept as the last error
    if db.backend == "sqlite":  # no token the mails carried is in the files or the log
        tokens = {link_token(m, "/account/email/verify") for m in smtp.snapshot()}
        raw = b"".join(open(db.path + x, "rb").read() for x in ("", "-wal")
                       if os.path.exists(db.path + x))
        log = s.log_text()
        assert len(tokens) == 100
        assert not [t for t in tokens if t.encode() in raw or t in log]


def kill9(server):
    """SIGKILL of a server this test started (its PID only); teardown then expects nothing."""
    server.proc.kill()
    server.proc.wait()
    server.stopped = True
    server._log.close()


@pytest.mark.scenario
def test_scenario_kill9_holding_claimed_mails_all_delivered_after_the_lease(
        db, start_servers, smtp):
    smtp.delay = 0.3  # slow enough that the instance dies with mails claimed
    a = start_servers(db, args=mail_args(smtp, "--mail-lease", "3s"))[0]
    names = [f"crash{i:02d}" for i in range(40)]
    addrs = [f"{n}@example.com" for n in names]
    assert all(r.status_code == 201 for r in register_many([a], names))
    deadline = time.monotonic() + 15
    while db.scalar("SELECT count(*) FROM mail_outbox WHERE status = 'sending'") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    held = db.scalar("SELECT count(*) FROM mail_outbox WHERE status = 'sending'")
    kill9(a)
    b = start_servers(db, args=mail_args(smtp, "--mail-lease", "3s"))[0]
    sent, twice, lost = wait_delivered(smtp, addrs, 60)
    summary(f"crash [{db.backend}]: mails queued 40, claimed by the killed instance {held}, sent {sent}, "
          f"sent twice {twice}, lost {lost}")
    assert held > 0 and lost == 0 and sent == 40
    assert twice <= 1  # at most the one in flight at the kill is sent again
    assert db.scalar("SELECT count(*) FROM mail_outbox WHERE status <> 'sent'") == 0
    assert b.get("/healthz").status_code == 200


@pytest.mark.scenario
def test_scenario_two_instances_500_mails_each_delivered_exactly_once(db, start_servers, smtp):
    servers = start_servers(db, n=2, args=mail_args(smtp))
    names = [f"pair{i:03d}" for i in range(500)]
    addrs = [f"{n}@example.com" for n in names]
    rs = register_many(servers, names)
    assert all(r.status_code == 201 for r in rs), {r.status_code for r in rs}
    sent, twice, lost = wait_delivered(smtp, addrs, 90)
    time.sleep(2)  # a duplicate would arrive now
    sent, twice, lost = delivered(smtp, addrs)
    per_instance = [sum(1 for r in s.log_records() if r.get("msg") == "mail sent")
                    for s in servers]
    summary(f"two instances [{db.backend}]: mails queued 500, sent {sent}, sent twice {twice}, lost {lost}; "
          f"sent per instance {per_instance}")
    assert (sent, twice, lost) == (500, 0, 0)
    assert len(smtp.snapshot()) == 500
    assert sum(per_instance) == 500


def test_header_injection_and_non_ascii_through_the_flows(db, start_servers, smtp):
    s = start_servers(db, args=mail_args(smtp, "--site-name", "École Zoë"))[0]
    register(s, "Zoë_Ünï", email="zoe@example.com")
    t = token_of(s, "Zoë_Ünï")
    evil = "x@example.com\r\nBcc: victim@example.net"
    assert s.register(user_body("mallory", email=evil)).status_code == 400
    assert_invalid(s.patch(ME, headers=auth(t), json={"email": evil}), "email")
    assert_invalid(s.post(RESET, json={"email": evil}), "email")
    assert_invalid(s.post(RESET, json={"email": "a@example.com\nTo: b@example.com"}), "email")
    assert s.post(RESET, json={"email": "zoe@example.com"}).status_code == 202
    mails = smtp.wait_for(to("zoe@example.com"), count=2)
    time.sleep(1.5)
    assert len(smtp.snapshot()) == 2
    for raw, (mail_from, rcpts), msg in zip(smtp.raw, smtp.envelopes, smtp.snapshot()):
        head = raw.split(b"\r\n\r\n", 1)[0]
        # A Bcc header line, not the three letters: a random Message-ID or boundary may hold them.
        assert not re.search(rb"(?im)^bcc:", head) and b"victim" not in raw, head
        assert rcpts == ["zoe@example.com"], rcpts
        subject_raw = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"subject:")]
        assert len(subject_raw) == 1 and b"=?" in subject_raw[0], subject_raw  # RFC 2047
        assert "École Zoë" in str(msg["Subject"]), msg["Subject"]
        assert "Zoë_Ünï" in text_of(msg)
    assert {m["Subject"] for m in mails}  # both kinds arrived


def test_lifecycle_events_in_the_audit_trail_once_and_not_on_refusal(mserver, smtp, db):
    """Each flow's event commits with its change (docs/security.md, "Audit trail")."""
    def events(name):
        return db.query("SELECT user_id, actor FROM audit_events WHERE event = ? ORDER BY id",
                        name)

    uid = register(mserver, "aude")["id"]
    token = link_token(smtp.wait_for(to("aude@example.com")), "/account/email/verify")
    assert_token_error(mserver.post(VERIFY, json={"token": "0" * 64}), "token_invalid")
    assert events("email_verified") == []  # refused: nothing recorded
    assert mserver.post(VERIFY, json={"token": token}).status_code == 200
    assert_token_error(mserver.post(VERIFY, json={"token": token}), "token_used")
    assert events("email_verified") == [(uid, "anonymous")]

    assert mserver.post(RESET, json={"email": "nobody@example.com"}).status_code == 202
    reset = reset_token(mserver, smtp, "aude@example.com")
    assert events("password_reset_requested") == [(None, "anonymous"), (uid, "anonymous")]
    assert mserver.post(RESET_CONFIRM, json={"token": reset, "password": NEW_PASSWORD}) \
        .status_code == 200
    assert events("password_reset") == [(uid, "anonymous")]

    t = login(mserver, NEW_PASSWORD, username="aude")["token"]
    r = mserver.post(CHANGE, headers=auth(t),
                     json={"current_password": "wrong-Horse-battery-1", "new_password": PASSWORD})
    assert r.status_code == 400
    assert events("password_changed") == []
    r = mserver.post(CHANGE, headers=auth(t),
                     json={"current_password": NEW_PASSWORD, "new_password": PASSWORD})
    assert r.status_code == 200
    assert events("password_changed") == [(uid, f"user:{uid}")]

    assert mserver.patch(ME, headers=auth(t), json={"email": "aude2@example.com"}).status_code == 202
    assert events("email_change_requested") == [(uid, f"user:{uid}")]
    change = link_token(smtp.wait_for(to("aude2@example.com")), "/account/email/change")
    assert mserver.post(EMAIL_CONFIRM, json={"token": change}).status_code == 200
    assert events("email_changed") == [(uid, "anonymous")]
    secrets = (token, reset, change, t, PASSWORD, NEW_PASSWORD)
    for row in db.query("SELECT event, actor, ip, request_id, detail FROM audit_events"):
        assert not any(s in str(row) for s in secrets), row
