"""
The audit trail (issue 10, item 3): every recorded action leaves exactly one
row in audit_events with the right event, account, actor, client IP, request id
and detail, written in the transaction of the change (a refused or rolled-back
action leaves none); the admin CLI records its operator as `cli:<Unix user>`;
`roster audit` filters by user, event and since; the janitor deletes only rows
past --audit-retention, with two instances pruning at once. Both backends.
"""

import datetime
import json
import os
import pwd
import re
import time

import pytest

from conftest import (ACCEPT, FAST_HASH, INVITATIONS, LOGIN, LOGOUT, ME, PASSWORD,
                      assert_code, assert_created, auth, burst, cli, cli_ok, cli_user, outcome,
                      user_body)

OPERATOR = "cli:" + pwd.getpwuid(os.geteuid()).pw_name
PROXY = ("--trusted-proxies", "127.0.0.1")
CLIENT_IP = "203.0.113.7"  # what a trusted proxy says the client is


def rows(db, where="1 = 1", *params):
    """Audit rows as dicts, oldest first; detail parsed (jsonb and text alike)."""
    out = []
    for r in db.query("SELECT id, ts, event, user_id, actor, ip, request_id,"
                      f" CAST(detail AS text) FROM audit_events WHERE {where} ORDER BY id",
                      *params):
        out.append(dict(zip(("id", "ts", "event", "user_id", "actor", "ip", "request_id"), r[:7]),
                        detail=json.loads(r[7])))
    return out


def by_request(db, rid):
    return rows(db, "request_id = ?", rid)


def one(db, rid, event, user_id, actor, ip=CLIENT_IP, detail=None):
    """The request `rid` left exactly one row, `event`, with these fields."""
    got = by_request(db, rid)
    assert [r["event"] for r in got] == [event], got
    r = got[0]
    assert (r["user_id"], r["actor"], r["ip"]) == (user_id, actor, ip), r
    assert r["detail"] == (detail if detail is not None else {}), r
    return r


def hdr(rid, token=None, xff=True):
    h = {"X-Request-ID": rid}
    if xff:
        h["X-Forwarded-For"] = CLIENT_IP
    if token is not None:
        h.update(auth(token))
    return h


def login_token(server, rid, **ident):
    r = server.post(LOGIN, json={**ident, "password": PASSWORD}, headers=hdr(rid))
    assert r.status_code == 200, r.text
    return r.json()["token"]


def metric(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    m = re.search(rf"^{re.escape(name)}{{{re.escape(want)}}} (\d+)$", text, re.M)
    assert m, f"{name}{{{want}}} not in /metrics"
    return int(m.group(1))


@pytest.mark.parametrize("limits", ["on", "off"])
def test_audit_each_http_action_recorded_once_with_its_fields(make_db, start_servers, limits):
    db = make_db()
    server = start_servers(db, args=(*FAST_HASH, *PROXY, "--rate-limits", limits))[0]

    r = server.register(user_body("alice"), headers=hdr("r-reg"))
    alice = assert_created(r, "alice")["id"]
    one(db, "r-reg", "register", alice, "anonymous",
        detail={"role": "explorer", "invitation": False})

    r = server.post(LOGIN, json={"username": "alice", "password": "Wrong-" + PASSWORD},
                    headers=hdr("r-fail"))
    assert_code(r, "invalid_credentials")
    one(db, "r-fail", "login_failed", alice, "anonymous", detail={"reason": "password"})
    # An unknown name: no account, and the name typed (maybe a password) is not kept.
    r = server.post(LOGIN, json={"username": "Typed-Secret-Name-77", "password": PASSWORD},
                    headers=hdr("r-unknown"))
    assert_code(r, "invalid_credentials")
    row = one(db, "r-unknown", "login_failed", None, "anonymous",
              detail={"reason": "unknown_account"})
    assert "typed" not in json.dumps(row).lower()

    token = login_token(server, "r-login", username="alice")
    one(db, "r-login", "login", alice, f"user:{alice}")
    r = server.patch(ME, json={"bio": "hello"}, headers=hdr("r-patch", token))
    assert r.status_code == 200, r.text
    one(db, "r-patch", "profile_updated", alice, f"user:{alice}", detail={"fields": ["bio"]})
    # Without a proxy header the address is the peer's.
    r = server.post(LOGOUT, headers=hdr("r-logout", token, xff=False))
    assert r.status_code == 204, r.text
    one(db, "r-logout", "logout", alice, f"user:{alice}", ip="127.0.0.1")

    inviter = cli_user(db, "inviter", "--can-invite-teachers")["id"]
    t_inv = login_token(server, "r-login-inviter", username="inviter")
    r = server.post(INVITATIONS, json={"email": "teacher@example.com"},
                    headers=hdr("r-invite", t_inv))
    assert r.status_code == 201, r.text
    inv_teacher = r.json()
    one(db, "r-invite", "invitation_created", inviter, f"user:{inviter}",
        detail={"email": "teacher@example.com"})
    r = server.post(INVITATIONS, json={"email": "carol@example.com"}, headers=hdr("r-inv2", t_inv))
    carol = r.json()["id"]
    r = server.post(f"{INVITATIONS}{carol}/resend/", json={}, headers=hdr("r-resend", t_inv))
    assert r.status_code == 200, r.text
    one(db, "r-resend", "invitation_resent", inviter, f"user:{inviter}",
        detail={"invitation_id": carol})
    r = server.delete(f"{INVITATIONS}{carol}/", headers=hdr("r-revoke", t_inv))
    assert r.status_code == 204, r.text
    one(db, "r-revoke", "invitation_revoked", inviter, f"user:{inviter}",
        detail={"invitation_id": carol})

    # Registration with an invitation: the account and the acceptance, one transaction.
    r = server.register(user_body("teacher", invitation=inv_teacher["token"]),
                        headers=hdr("r-reg-teacher"))
    teacher = assert_created(r, "teacher", role="teacher")["id"]
    got = by_request(db, "r-reg-teacher")
    assert [(g["event"], g["user_id"], g["actor"], g["ip"]) for g in got] == [
        ("invitation_accepted", teacher, "anonymous", CLIENT_IP),
        ("register", teacher, "anonymous", CLIENT_IP)], got
    assert got[1]["detail"] == {"role": "teacher", "invitation": True}

    # Accepting by the endpoint: one row, the acceptance.
    r = server.post(INVITATIONS, json={"email": "bob@example.com"}, headers=hdr("r-inv3", t_inv))
    inv_bob = r.json()
    bob = assert_created(server.register(user_body("bob"), headers=hdr("r-reg-bob")))["id"]
    t_bob = login_token(server, "r-login-bob", username="bob")
    r = server.post(ACCEPT, json={"token": inv_bob["token"]}, headers=hdr("r-accept", t_bob))
    assert r.status_code == 200, r.text
    one(db, "r-accept", "invitation_accepted", bob, f"user:{bob}")

    # Nothing else was recorded, and each row was counted at COMMIT.
    events = [r["event"] for r in rows(db)]
    assert sorted(events) == sorted(
        ["register", "login_failed", "login_failed", "login", "profile_updated", "logout",
         "user_created", "login", "invitation_created", "invitation_created",
         "invitation_resent", "invitation_revoked", "invitation_accepted", "register",
         "invitation_created", "register", "login", "invitation_accepted"]), events
    text = server.get("/metrics").text
    for event in set(events) - {"user_created"}:  # the CLI's row is another process's
        assert metric(text, "roster_audit_events_total", event=event) == events.count(event), event
    assert metric(text, "roster_audit_events_total", event="user_created") == 0


def test_audit_refused_actions_leave_no_row(make_db, start_servers):
    db = make_db()
    server = start_servers(db, args=(*FAST_HASH, *PROXY))[0]
    assert_created(server.register(user_body("alice"), headers=hdr("ok-reg")))
    cli_user(db, "inviter", "--can-invite-teachers")
    t_inv = login_token(server, "ok-login", username="inviter")
    r = server.post(INVITATIONS, json={"email": "carol@example.com"}, headers=hdr("ok-inv", t_inv))
    carol = r.json()["id"]
    assert server.delete(f"{INVITATIONS}{carol}/", headers=hdr("ok-rev", t_inv)).status_code == 204
    before = len(rows(db))

    refused = [
        ("dup-email", server.register(user_body("alice2", email="alice@example.com"),
                                      headers=hdr("dup-email")), "email_taken"),
        ("dup-name", server.register(user_body("alice", email="other@example.com"),
                                     headers=hdr("dup-name")), "username_taken"),
        ("bad-inv", server.register(user_body("mallory", invitation="ab" * 32),
                                    headers=hdr("bad-inv")), "invitation_invalid"),
        ("bad-accept", server.post(ACCEPT, json={"token": "cd" * 32},
                                   headers=hdr("bad-accept", t_inv)), "invitation_invalid"),
        ("inv-taken", server.post(INVITATIONS, json={"email": "alice@example.com"},
                                  headers=hdr("inv-taken", t_inv)), "email_taken"),
        ("resend-revoked", server.post(f"{INVITATIONS}{carol}/resend/", json={},
                                       headers=hdr("resend-revoked", t_inv)), None),
        ("revoke-again", server.delete(f"{INVITATIONS}{carol}/",
                                       headers=hdr("revoke-again", t_inv)), None),
        ("patch-bad", server.patch(ME, json={"bio": 5}, headers=hdr("patch-bad", t_inv)), None),
        ("logout-bad", server.post(LOGOUT, headers=hdr("logout-bad", "ef" * 32)),
         "not_authenticated"),
    ]
    for rid, r, code in refused:
        assert r.status_code >= 400, f"{rid}: {r.status_code} {r.text}"
        if code is not None:
            assert_code(r, code)
        assert by_request(db, rid) == [], rid
    # The CLI's refusals too: a taken username, an unknown user.
    r = cli(db, "user", "create", "alice", "--email", "x@example.com", "--password-stdin",
            stdin=PASSWORD + "\n")
    assert r.returncode == 4, r.stderr
    assert cli(db, "user", "delete", "nobody").returncode == 3
    assert cli(db, "invite", "revoke", str(carol)).returncode == 4
    assert len(rows(db)) == before


def test_audit_racing_registrations_record_only_the_winner(make_db, start_servers):
    """Two instances, 16 concurrent sign-ups for one email (case variants) and 16 for
    one username: one account each, and exactly one `register` row each, the
    winner's; every loser's transaction rolled its row back."""
    db = make_db()
    servers = start_servers(db, 2, args=FAST_HASH)
    bodies = ([user_body(f"racer{i}", email="same@example.com" if i % 2 else "SAME@Example.com")
               for i in range(16)]
              + [user_body("samename", email=f"n{i}@example.com") for i in range(16)])
    results, _ = burst(servers, bodies)
    counts = {}
    for r in results:
        counts[outcome(r)] = counts.get(outcome(r), 0) + 1
    assert counts.get("201") == 2, counts
    winners = sorted(r.json()["user"]["id"] for r in results if outcome(r) == "201")
    got = rows(db, "event = 'register'")
    assert sorted(g["user_id"] for g in got) == winners, got
    assert len(rows(db)) == 2


def test_audit_cli_actions_record_the_operator(db):
    cli_user(db, "carol", "--can-invite-teachers")
    carol = db.scalar("SELECT id FROM users WHERE username = 'carol'")
    cli_ok(db, "user", "set", "carol", "--admin", "on", "--role", "teacher")
    cli_ok(db, "user", "set-password", "carol", "--password-stdin",
           stdin="Another-" + PASSWORD + "\n")
    out = cli_ok(db, "invite", "create", "--by", "carol", "--email", "t@example.com", "--json")
    inv = json.loads(out.stdout)["id"]
    cli_ok(db, "invite", "revoke", str(inv))
    # A token, so that deactivation has one to revoke.
    db.execute("INSERT INTO auth_tokens (user_id, token_hash, created_at, expires_at)"
               " VALUES (?, ?, ?, ?)", carol, "0" * 64, "2026-01-01T00:00:00.000000Z",
               "2999-01-01T00:00:00.000000Z")
    cli_ok(db, "user", "set", "carol", "--active", "off")
    cli_ok(db, "user", "delete", "carol")

    got = [(r["event"], r["user_id"], r["actor"], r["ip"], r["request_id"], r["detail"])
           for r in rows(db)]
    assert got == [
        ("user_created", carol, OPERATOR, None, None,
         {"role": "explorer", "admin": False, "can_invite_teachers": True}),
        ("user_updated", carol, OPERATOR, None, None, {"admin": True, "role": "teacher"}),
        ("password_set", carol, OPERATOR, None, None, {}),
        ("invitation_created", carol, OPERATOR, None, None, {"email": "t@example.com"}),
        ("invitation_revoked", None, OPERATOR, None, None, {"invitation_id": inv}),
        ("tokens_revoked", carol, OPERATOR, None, None, {"count": 1, "why": "deactivated"}),
        ("user_updated", carol, OPERATOR, None, None, {"active": False}),
        ("user_deleted", carol, OPERATOR, None, None,
         {"username": "carol", "email": "carol@example.com"}),
    ], got
    # The history outlives the account.
    assert db.scalar("SELECT count(*) FROM users") == 0


def audit_json(db, *args):
    r = cli_ok(db, "audit", "--json", *args)
    return [json.loads(line) for line in r.stdout.splitlines()]


def test_audit_command_filters_by_user_event_and_since(db):
    alice = cli_user(db, "alice")["id"]
    bob = cli_user(db, "bob")["id"]
    cli_ok(db, "user", "set", "alice", "--admin", "on")
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=2))
    db.execute("INSERT INTO audit_events (ts, event, user_id, actor, ip, request_id, detail)"
               " VALUES (?, 'login', ?, ?, '192.0.2.9', 'old-1', ?)",
               old.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), alice, f"user:{alice}", '{"x": 1}')

    every = audit_json(db)
    assert [e["event"] for e in every] == ["user_updated", "user_created", "user_created",
                                           "login"], every
    assert set(every[0]) == {"id", "ts", "event", "user_id", "actor", "ip", "request_id",
                             "detail"}
    assert every[3] == {"id": every[3]["id"], "ts": every[3]["ts"], "event": "login",
                        "user_id": alice, "actor": f"user:{alice}", "ip": "192.0.2.9",
                        "request_id": "old-1", "detail": {"x": 1}}
    assert [e["user_id"] for e in audit_json(db, "--user", "alice")] == [alice] * 3
    assert [e["user_id"] for e in audit_json(db, "--user", "bob@example.com")] == [bob]
    assert [e["event"] for e in audit_json(db, "--user", f"#{alice}", "--event", "login")] == [
        "login"]
    assert [e["event"] for e in audit_json(db, "--since", "1d")] == [
        "user_updated", "user_created", "user_created"]
    since = (old - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(audit_json(db, "--since", since)) == 4
    future = (old + datetime.timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S+00:00")
    assert audit_json(db, "--since", future) == []
    assert [e["event"] for e in audit_json(db, "--limit", "1")] == ["user_updated"]
    # Text output: a header and a line per row.
    text = cli_ok(db, "audit", "--event", "user_created").stdout.splitlines()
    assert text[0].split()[:4] == ["TIME", "EVENT", "USER", "ACTOR"] and len(text) == 3, text
    assert OPERATOR in text[1]
    # Refused filters: exit 2, or 3 for an unknown user.
    assert cli(db, "audit", "--event", "nope").returncode == 2
    assert cli(db, "audit", "--since", "yesterday").returncode == 2
    assert cli(db, "audit", "--user", "nobody").returncode == 3


def insert_rows(db, n, age):
    """`n` audit rows `age` old, in one transaction."""
    ts = (datetime.datetime.now(datetime.timezone.utc) - age).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ph = "?" if db.backend == "sqlite" else "%s"
    conn = db.connect()
    try:
        cur = conn.cursor()
        cur.execute("BEGIN")
        cur.executemany(f"INSERT INTO audit_events (ts, event, user_id, actor, detail)"
                        f" VALUES ({ph}, 'login', 1, 'user:1', '{{}}')", [(ts,)] * n)
        cur.execute("COMMIT")
    finally:
        conn.close()


def test_audit_prune_takes_only_rows_past_retention_with_two_instances(make_db, start_servers):
    db = make_db()
    insert_rows(db, 1500, datetime.timedelta(hours=2))
    insert_rows(db, 40, datetime.timedelta(minutes=50))
    servers = start_servers(db, 2, args=(*FAST_HASH, "--audit-retention", "1h",
                                         "--janitor-interval", "1s", "--janitor-batch", "100"))
    deadline = time.monotonic() + 30
    while db.scalar("SELECT count(*) FROM audit_events") > 40 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.5)  # a few more runs of both: they must not take the younger rows
    assert db.scalar("SELECT count(*) FROM audit_events") == 40
    texts = [s.get("/metrics").text for s in servers]
    deleted = [metric(t, "roster_janitor_rows_deleted_total", table="audit_events")
               for t in texts]
    assert sum(deleted) == 1500, deleted
    for t in texts:
        assert metric(t, "roster_janitor_runs_total", outcome="error") == 0
        assert metric(t, "roster_janitor_runs_total", outcome="ok") >= 1
