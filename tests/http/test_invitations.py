"""
Teacher invitations: the seed analysis' Test 3 both ways (register with an
invitation; register as explorer, then accept), single use under concurrent
attempts on two instances sharing one database (I3), every refusal with its
own code and the invitation row untouched, and the inviter's lifecycle (list,
resend, revoke). Inviters are made with the admin CLI, as an operator would.
"""

import threading
import time

import pytest

from conftest import (ACCEPT, FAST_HASH, INVITATIONS, ME, PASSWORD, TOKEN_RE, assert_code,
                      assert_created, assert_invalid, assert_me, auth, burst, cli_ok, cli_user,
                      invite, outcome, parse_time, raw_request, report, request_head,
                      token_of, user_body)

UNISSUED = "fedcba9876543210" * 4  # 64 hex characters, never issued
MSG_ACCEPTED = "Invitation accepted."
SHORT_TTL = (*FAST_HASH, "--invitation-ttl", "2s")


@pytest.fixture
def teach(db, fast_server):
    """An inviter made by the CLI (--can-invite-teachers), logged in: its token."""
    cli_user(db, "teach1", "--can-invite-teachers", email="t@example.com")
    return token_of(fast_server, "teach1")


def register_invited(server, username, email, token, **extra):
    body = {"username": username, "email": email, "password": PASSWORD, "invitation": token}
    body.update(extra)
    return server.register({k: v for k, v in body.items() if v is not None})


def explorer(server, username, email=None):
    """Registers an explorer through the API and logs in: (user, token)."""
    email = email or f"{username}@example.com"
    user = assert_created(server.register(user_body(username, email=email, role=None)))
    return user, token_of(server, username)


def accept(server, token, inv_token):
    return server.post(ACCEPT, json={"token": inv_token}, headers=auth(token))


def assert_accepted(resp):
    assert resp.status_code == 200, f"{resp.status_code} {resp.text}"
    assert resp.json() == {"message": MSG_ACCEPTED,
                           "profile": {"role": "teacher", "can_invite_teachers": False}}


def assert_teacher(db, user_id, inv_id):
    """The account is a teacher that cannot invite, and the invitation names it (I3)."""
    row = db.user(user_id)
    assert (row["role"], row["can_invite_teachers"]) == ("teacher", 0), row
    inv = db.invitation(inv_id)
    assert (inv["status"], inv["accepted_by"]) == ("accepted", user_id), inv
    assert inv["accepted_at"], inv
    db.assert_invariants()


def assert_invitation(body, email):
    """The documented 201 of POST /users/invitations/."""
    assert set(body) == {"id", "email", "token", "status", "expires_at"}, body
    assert isinstance(body["id"], int) and not isinstance(body["id"], bool), body
    assert (body["email"], body["status"]) == (email, "pending"), body
    assert isinstance(body["token"], str) and len(body["token"]) >= 32, body
    parse_time(body["expires_at"])
    return body


def wait_past(expires_at):
    time.sleep(max(0.0, parse_time(expires_at) - time.time()) + 1.0)


def inv_path(inv_id, action=""):
    return f"{INVITATIONS}{inv_id}/{action}"


def resend(server, token, inv_id):
    return server.post(inv_path(inv_id, "resend/"), json={}, headers=auth(token))


def revoke(server, token, inv_id):
    return server.delete(inv_path(inv_id), headers=auth(token))


def listing(server, token):
    r = server.get(INVITATIONS, headers=auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"invitations"}, body
    for inv in body["invitations"]:
        assert set(inv) == {"id", "email", "status", "created_at", "expires_at",
                            "accepted_at"}, inv
    return body["invitations"]


# --------------------------------------------------------------------------- seed Test 3

@pytest.mark.parametrize("role", [None, "teacher", "explorer"], ids=["no-role", "teacher",
                                                                     "explorer"])
def test_register_with_invitation_teacher_201(fast_server, db, teach, role):
    before = time.time()
    inv = assert_invitation(invite(fast_server, teach, "new@example.com"), "new@example.com")
    assert abs(parse_time(inv["expires_at"]) - before - 7 * 86400) < 60, inv  # default 7d
    row = db.invitation(inv["id"])
    assert row["status"] == "pending" and row["token_hash"] != inv["token"], row
    assert all(inv["token"] not in str(v) for v in row.values()), row  # stored hashed (I5)

    r = register_invited(fast_server, "newbie", "new@example.com", inv["token"], role=role)
    user = assert_created(r, "newbie", "new@example.com", role="teacher")
    t = token_of(fast_server, "newbie")
    assert_me(fast_server.get(ME, headers=auth(t)), "newbie", role="teacher", can_invite=False)
    assert_teacher(db, user["id"], inv["id"])
    [listed] = listing(fast_server, teach)
    assert (listed["id"], listed["status"]) == (inv["id"], "accepted"), listed
    parse_time(listed["accepted_at"])


def test_register_with_invitation_email_other_case_201(fast_server, db, teach):
    inv = invite(fast_server, teach, "Case.Person@example.com")
    user = assert_created(register_invited(fast_server, "caseperson", "CASE.PERSON@Example.COM",
                                           inv["token"]), role="teacher")
    assert_teacher(db, user["id"], inv["id"])


def test_accept_registered_explorer_200_teacher(fast_server, db, teach):
    inv = invite(fast_server, teach, "x@example.com")
    user, t = explorer(fast_server, "xavier", "x@example.com")
    assert_me(fast_server.get(ME, headers=auth(t)), role="explorer", can_invite=False)
    assert db.invitation(inv["id"])["status"] == "pending"

    assert_accepted(accept(fast_server, t, inv["token"]))
    assert_me(fast_server.get(ME, headers=auth(t)), "xavier", role="teacher", can_invite=False)
    assert_teacher(db, user["id"], inv["id"])
    assert listing(fast_server, teach)[0]["status"] == "accepted"


def test_accept_bearer_no_slash_200(fast_server, db, teach):
    inv = invite(fast_server, teach, "bear@example.com")
    user, t = explorer(fast_server, "bear")
    r = fast_server.post(ACCEPT.rstrip("/"), json={"token": inv["token"]},
                         headers=auth(t, "Bearer"))
    assert_accepted(r)
    assert_teacher(db, user["id"], inv["id"])


def test_invited_teacher_cannot_invite_403(fast_server, db, teach):
    inv = invite(fast_server, teach, "chain@example.com")
    assert_created(register_invited(fast_server, "chain", "chain@example.com", inv["token"]),
                   role="teacher")
    t = token_of(fast_server, "chain")
    assert_code(fast_server.post(INVITATIONS, json={"email": "next@example.com"},
                                 headers=auth(t)), "forbidden")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 1


# --------------------------------------------------------------------------- concurrency (I3)

@pytest.fixture
def two(db, start_servers):
    """Two instances sharing one database, cheap hashing; an inviter's token."""
    servers = start_servers(db, 2, args=FAST_HASH)
    cli_user(db, "teach1", "--can-invite-teachers", email="t@example.com")
    return servers, token_of(servers[0], "teach1")


def test_accept_concurrent_same_invitee_two_instances_one_200(db, two):
    servers, teach = two
    failures = []
    for run in range(3):
        email = f"race{run}@example.com"
        inv = invite(servers[0], teach, email)  # before the account: email_taken after
        user, t = explorer(servers[1], f"race{run}", email)
        results, _ = burst(servers, [{"token": inv["token"]}] * 20, path=ACCEPT,
                           headers=auth(t))
        counts = report(f"accept x20 same invitee [2 instances] run {run}", results)
        try:
            assert counts.get("200") == 1 and counts.get("400 invitation_used") == 19, counts
            for r in results:
                assert_accepted(r) if r.status_code == 200 else assert_code(r, "invitation_used")
            assert_teacher(db, user["id"], inv["id"])
            assert_me(servers[0].get(ME, headers=auth(t)), role="teacher", can_invite=False)
        except AssertionError as e:
            failures.append(f"run {run}: {e}")
    assert not failures, "\n".join(failures)
    for s in servers:
        s.stop_checked()


def test_register_concurrent_same_invitation_two_instances_one_201(db, two):
    servers, teach = two
    failures = []
    for run in range(2):
        email = f"regrace{run}@example.com"
        inv = invite(servers[run % 2], teach, email)
        users_before = db.count_users()
        bodies = [{"username": f"reg{run}_{i}", "email": email, "password": PASSWORD,
                   "invitation": inv["token"]} for i in range(20)]
        results, _ = burst(servers, bodies)
        counts = report(f"register x20 same invitation [2 instances] run {run}", results)
        try:
            assert counts.get("201") == 1, counts
            assert set(counts) <= {"201", "400 invitation_used", "400 email_taken"}, counts
            winner = None
            for r in results:
                if r.status_code == 201:
                    winner = assert_created(r, email=email, role="teacher")
                else:
                    assert_code(r, r.json()["code"])
            rows = db.query("SELECT id FROM users WHERE email_key = ?", email)
            assert rows == [(winner["id"],)], rows
            assert db.count_users() == users_before + 1
            assert_teacher(db, winner["id"], inv["id"])
        except AssertionError as e:
            failures.append(f"run {run}: {e}")
    assert not failures, "\n".join(failures)
    for s in servers:
        s.stop_checked()


# --------------------------------------------------------------------------- refusals

def invitation_rows(db):
    return db.query("SELECT * FROM teacher_invitations ORDER BY id")


def test_register_invitation_other_email_403_unchanged(fast_server, db, teach):
    inv = invite(fast_server, teach, "invited@example.com")
    before = invitation_rows(db)
    r = register_invited(fast_server, "intruder", "intruder@example.com", inv["token"])
    assert_code(r, "invitation_email_mismatch")
    assert invitation_rows(db) == before
    assert db.query("SELECT id FROM users WHERE username_key = 'intruder'") == []
    user = assert_created(register_invited(fast_server, "invited", "invited@example.com",
                                           inv["token"]), role="teacher")
    assert_teacher(db, user["id"], inv["id"])


def test_accept_other_email_403_unchanged(fast_server, db, teach):
    inv = invite(fast_server, teach, "invited@example.com")
    user, t = explorer(fast_server, "intruder")
    before = invitation_rows(db)
    assert_code(accept(fast_server, t, inv["token"]), "invitation_email_mismatch")
    assert invitation_rows(db) == before
    assert db.user(user["id"])["role"] == "explorer"
    assert_me(fast_server.get(ME, headers=auth(t)), role="explorer", can_invite=False)


def test_invitation_expired_400_unchanged(db, start_servers):
    server = start_servers(db, args=SHORT_TTL)[0]
    cli_user(db, "teach1", "--can-invite-teachers", email="t@example.com")
    teach = token_of(server, "teach1")
    before = time.time()
    for_register = invite(server, teach, "late1@example.com")
    for_accept = invite(server, teach, "late2@example.com")
    assert before + 0.5 <= parse_time(for_register["expires_at"]) <= before + 3.5, for_register
    user, t = explorer(server, "late2", "late2@example.com")
    rows = {i: db.invitation(i) for i in (for_register["id"], for_accept["id"])}
    wait_past(for_accept["expires_at"])

    assert_code(register_invited(server, "late1", "late1@example.com", for_register["token"]),
                "invitation_expired")
    assert_code(accept(server, t, for_accept["token"]), "invitation_expired")
    assert db.query("SELECT id FROM users WHERE email_key = 'late1@example.com'") == []
    assert db.user(user["id"])["role"] == "explorer"
    for i, row in rows.items():
        now = db.invitation(i)
        assert now["status"] in ("pending", "expired"), now  # stored pending reads as expired
        assert {**now, "status": row["status"]} == row, (row, now)
    assert {inv["status"] for inv in listing(server, teach)} == {"expired"}


def test_invitation_revoked_400_unchanged(fast_server, db, teach):
    for_register = invite(fast_server, teach, "gone1@example.com")
    for_accept = invite(fast_server, teach, "gone2@example.com")
    user, t = explorer(fast_server, "gone2", "gone2@example.com")
    for inv in (for_register, for_accept):
        r = revoke(fast_server, teach, inv["id"])
        assert r.status_code == 204, r.text
        assert r.content == b""
        assert db.invitation(inv["id"])["status"] == "revoked"
    before = invitation_rows(db)
    assert_code(register_invited(fast_server, "gone1", "gone1@example.com",
                                 for_register["token"]), "invitation_revoked")
    assert_code(accept(fast_server, t, for_accept["token"]), "invitation_revoked")
    assert invitation_rows(db) == before
    assert db.query("SELECT id FROM users WHERE email_key = 'gone1@example.com'") == []
    assert db.user(user["id"])["role"] == "explorer"


def test_invitation_used_400_unchanged(fast_server, db, teach):
    # accepted by registration, then presented again by the same account
    inv1 = invite(fast_server, teach, "used1@example.com")
    u1 = assert_created(register_invited(fast_server, "used1", "used1@example.com",
                                         inv1["token"]), role="teacher")
    # accepted through accept, then presented again
    inv2 = invite(fast_server, teach, "used2@example.com")
    u2, t2 = explorer(fast_server, "used2", "used2@example.com")
    assert_accepted(accept(fast_server, t2, inv2["token"]))
    before = invitation_rows(db)

    t1 = token_of(fast_server, "used1")
    assert_code(accept(fast_server, t1, inv1["token"]), "invitation_used")
    assert_code(accept(fast_server, t2, inv2["token"]), "invitation_used")
    r = register_invited(fast_server, "used1bis", "used1@example.com", inv1["token"])
    assert outcome(r) in ("400 invitation_used", "400 email_taken"), r.text
    assert_code(r, r.json()["code"])
    assert invitation_rows(db) == before
    assert_teacher(db, u1["id"], inv1["id"])
    assert_teacher(db, u2["id"], inv2["id"])


def test_register_used_invitation_email_free_400(fast_server, db, teach):
    """The account that used it is deleted: the email is free, the token stays used."""
    inv = invite(fast_server, teach, "reuse@example.com")
    assert_created(register_invited(fast_server, "reuse", "reuse@example.com", inv["token"]),
                   role="teacher")
    cli_ok(db, "user", "delete", "reuse")
    before = invitation_rows(db)
    assert_code(register_invited(fast_server, "reuse2", "reuse@example.com", inv["token"]),
                "invitation_used")
    assert invitation_rows(db) == before
    assert db.query("SELECT id FROM users WHERE email_key = 'reuse@example.com'") == []


@pytest.mark.parametrize("bad", [UNISSUED, "abc", ""], ids=["unissued-64-hex", "abc", "empty"])
def test_invitation_unknown_token_400_invalid(fast_server, db, teach, bad):
    invite(fast_server, teach, "someone@example.com")  # a real, pending one: untouched
    user, t = explorer(fast_server, "probe")
    before = invitation_rows(db)
    r = register_invited(fast_server, "someone", "someone@example.com", bad)
    if bad == "":
        assert outcome(r) in ("400 invitation_invalid", "400 invalid"), r.text
    else:
        assert_code(r, "invitation_invalid")
    r = accept(fast_server, t, bad)
    if bad == "":
        assert outcome(r) in ("400 invitation_invalid", "400 invalid"), r.text
    else:
        assert_code(r, "invitation_invalid")
    assert invitation_rows(db) == before
    assert db.query("SELECT id FROM users WHERE email_key = 'someone@example.com'") == []
    assert db.user(user["id"])["role"] == "explorer"


def test_accept_missing_token_400_invalid(fast_server, teach):
    _, t = explorer(fast_server, "notoken")
    assert_invalid(fast_server.post(ACCEPT, json={}, headers=auth(t)), "token")


def test_invitations_no_token_401(fast_server, db, teach):
    inv = invite(fast_server, teach, "anon@example.com")
    before = invitation_rows(db)
    for resp in (fast_server.post(INVITATIONS, json={"email": "anon2@example.com"}),
                 fast_server.get(INVITATIONS),
                 fast_server.post(inv_path(inv["id"], "resend/"), json={}),
                 fast_server.delete(inv_path(inv["id"])),
                 fast_server.post(ACCEPT, json={"token": inv["token"]}),
                 fast_server.get(INVITATIONS, headers=auth(UNISSUED))):
        assert_code(resp, "not_authenticated")
    assert invitation_rows(db) == before


# --------------------------------------------------------------------------- lifecycle

def test_invitations_list_statuses_own_newest_first(db, start_servers):
    """Pending, accepted, expired, revoked; only the caller's. Then: an expired one
    cannot be revoked (409) but can be resent (200, pending again, a new expiry)."""
    server = start_servers(db, args=FAST_HASH)[0]
    short = start_servers(db, args=SHORT_TTL)[0]  # same database, invitations live 2 s
    cli_user(db, "teach1", "--can-invite-teachers", email="t1@example.com")
    cli_user(db, "teach2", "--can-invite-teachers", email="t2@example.com")
    t1, t2 = token_of(server, "teach1"), token_of(server, "teach2")

    exp = invite(short, t1, "exp@example.com")
    pend = invite(server, t1, "pend@example.com")
    acc = invite(server, t1, "acc@example.com")
    rev = invite(server, t1, "rev@example.com")
    other = invite(server, t2, "other@example.com")
    assert_created(register_invited(server, "acc", "acc@example.com", acc["token"]),
                   role="teacher")
    assert revoke(server, t1, rev["id"]).status_code == 204
    wait_past(exp["expires_at"])

    mine = listing(server, t1)
    assert [i["id"] for i in mine] == [rev["id"], acc["id"], pend["id"], exp["id"]], mine
    status = {i["email"]: i["status"] for i in mine}
    assert status == {"exp@example.com": "expired", "pend@example.com": "pending",
                      "acc@example.com": "accepted", "rev@example.com": "revoked"}, mine
    for i in mine:
        parse_time(i["created_at"])
        parse_time(i["expires_at"])
        if i["status"] == "accepted":
            parse_time(i["accepted_at"])
        else:
            assert i["accepted_at"] is None, i
    assert [(i["id"], i["status"]) for i in listing(server, t2)] == [(other["id"], "pending")]

    before = db.invitation(exp["id"])
    assert_code(revoke(server, t1, exp["id"]), "conflict")
    now = db.invitation(exp["id"])
    assert {**now, "status": before["status"]} == before, (before, now)

    r = resend(server, t1, exp["id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"token", "expires_at"} <= set(body), body
    assert body["token"] != exp["token"]
    assert parse_time(body["expires_at"]) > time.time() + 6 * 86400, body  # server's 7d
    assert {i["id"]: i["status"] for i in listing(server, t1)}[exp["id"]] == "pending"
    user, t = explorer(server, "exp", "exp@example.com")
    assert_code(accept(server, t, exp["token"]), "invitation_invalid")
    assert_accepted(accept(server, t, body["token"]))
    assert_teacher(db, user["id"], exp["id"])


def test_resend_pending_new_token_200(fast_server, db, teach):
    inv = invite(fast_server, teach, "again@example.com")
    old_row = db.invitation(inv["id"])
    r = resend(fast_server, teach, inv["id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"token", "expires_at"} <= set(body), body
    assert body.get("id", inv["id"]) == inv["id"] and body.get("status", "pending") == "pending"
    assert body["token"] != inv["token"]
    assert parse_time(body["expires_at"]) >= parse_time(inv["expires_at"]), (inv, body)
    row = db.invitation(inv["id"])
    assert row["status"] == "pending" and row["token_hash"] != old_row["token_hash"], row
    assert all(body["token"] not in str(v) for v in row.values()), row

    assert_code(register_invited(fast_server, "again", "again@example.com", inv["token"]),
                "invitation_invalid")
    user = assert_created(register_invited(fast_server, "again", "again@example.com",
                                           body["token"]), role="teacher")
    assert_teacher(db, user["id"], inv["id"])


def test_resend_revoke_accepted_or_revoked_409(fast_server, db, teach):
    acc = invite(fast_server, teach, "acc@example.com")
    assert_created(register_invited(fast_server, "acc", "acc@example.com", acc["token"]),
                   role="teacher")
    rev = invite(fast_server, teach, "rev@example.com")
    assert revoke(fast_server, teach, rev["id"]).status_code == 204
    before = invitation_rows(db)
    for inv in (acc, rev):
        assert_code(resend(fast_server, teach, inv["id"]), "conflict")
        assert_code(revoke(fast_server, teach, inv["id"]), "conflict")
    assert invitation_rows(db) == before


def test_resend_revoke_other_inviters_404(fast_server, db, teach):
    inv = invite(fast_server, teach, "mine@example.com")
    cli_user(db, "teach2", "--can-invite-teachers", email="t2@example.com")
    t2 = token_of(fast_server, "teach2")
    before = invitation_rows(db)
    for path in (inv_path(inv["id"]), inv_path(999999), inv_path("abc")):
        assert_code(fast_server.delete(path, headers=auth(t2)), "not_found")
    for inv_id in (inv["id"], 999999):
        assert_code(resend(fast_server, t2, inv_id), "not_found")
    assert invitation_rows(db) == before
    assert listing(fast_server, t2) == []


def test_create_second_pending_same_email_409(fast_server, db, teach):
    first = invite(fast_server, teach, "twice@example.com")
    cli_user(db, "teach2", "--can-invite-teachers", email="t2@example.com")
    t2 = token_of(fast_server, "teach2")
    for t, email in ((teach, "twice@example.com"), (t2, "TWICE@Example.com")):
        r = fast_server.post(INVITATIONS, json={"email": email}, headers=auth(t))
        assert_code(r, "invitation_pending")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 1
    assert revoke(fast_server, teach, first["id"]).status_code == 204
    second = invite(fast_server, t2, "twice@example.com")  # none pending any more
    assert second["id"] != first["id"]


def test_create_email_with_account_400_email_taken(fast_server, db, teach):
    explorer(fast_server, "has", "has.account@example.com")
    for email in ("has.account@example.com", "HAS.Account@Example.com", "t@example.com"):
        r = fast_server.post(INVITATIONS, json={"email": email}, headers=auth(teach))
        assert_code(r, "email_taken")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 0


@pytest.mark.parametrize("body", [{}, {"email": "not-an-email"}, {"email": ""}, {"email": 5}],
                         ids=["missing", "bad-syntax", "blank", "not-string"])
def test_create_invalid_email_400(fast_server, db, teach, body):
    assert_invalid(fast_server.post(INVITATIONS, json=body, headers=auth(teach)), "email")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 0


def test_invitations_without_permission_403(fast_server, db, teach):
    inv = invite(fast_server, teach, "target@example.com")
    _, t = explorer(fast_server, "plain")
    before = invitation_rows(db)
    assert_code(fast_server.post(INVITATIONS, json={"email": "z@example.com"}, headers=auth(t)),
                "forbidden")
    assert_code(fast_server.get(INVITATIONS, headers=auth(t)), "forbidden")
    assert_code(resend(fast_server, t, inv["id"]), "forbidden")
    assert_code(revoke(fast_server, t, inv["id"]), "forbidden")
    assert invitation_rows(db) == before


def test_invitations_permission_granted_by_cli_201(fast_server, db):
    _, t = explorer(fast_server, "promoted")
    assert_code(fast_server.get(INVITATIONS, headers=auth(t)), "forbidden")
    cli_ok(db, "user", "set", "promoted", "--can-invite-teachers", "on")
    assert_me(fast_server.get(ME, headers=auth(t)), can_invite=True)
    assert_invitation(invite(fast_server, t, "p@example.com"), "p@example.com")
    cli_ok(db, "user", "set", "promoted", "--can-invite-teachers", "off")
    assert_code(fast_server.get(INVITATIONS, headers=auth(t)), "forbidden")


def test_invitation_token_is_random(fast_server, teach):
    tokens = {invite(fast_server, teach, f"r{i}@example.com")["token"] for i in range(3)}
    assert len(tokens) == 3
    assert all(TOKEN_RE.match(t) or len(t) >= 43 for t in tokens), tokens


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "0"}], ids=["no-length", "length-0"])
def test_resend_no_body_200(fast_server, teach, headers):
    """Resend has no documented body: a body-less POST must work."""
    inv = invite(fast_server, teach, "nobody@example.com")
    r = raw_request(fast_server, request_head(fast_server, "POST", inv_path(inv["id"], "resend/"),
                                              {**auth(teach), **headers}))
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.json()["token"] != inv["token"]


def test_create_after_expired_same_email_201(db, start_servers):
    """An expired invitation is not pending: a new one for that email may be created."""
    server = start_servers(db, args=SHORT_TTL)[0]
    cli_user(db, "teach1", "--can-invite-teachers", email="t@example.com")
    teach = token_of(server, "teach1")
    old = invite(server, teach, "slow@example.com")
    wait_past(old["expires_at"])
    new = invite(server, teach, "SLOW@example.com")
    assert new["id"] != old["id"] and new["token"] != old["token"]
    statuses = {i["id"]: i["status"] for i in listing(server, teach)}
    assert statuses == {old["id"]: "expired", new["id"]: "pending"}, statuses
    assert_code(register_invited(server, "slow", "slow@example.com", old["token"]),
                "invitation_expired")
    user = assert_created(register_invited(server, "slow", "slow@example.com", new["token"]),
                          role="teacher")
    assert_teacher(db, user["id"], new["id"])
    assert db.invitation(old["id"])["accepted_by"] is None


def test_create_concurrent_same_email_two_instances_one_201(db, two):
    servers, teach = two
    results, _ = burst(servers, [{"email": "popular@example.com"}] * 10, path=INVITATIONS,
                       headers=auth(teach))
    counts = report("invite x10 same email [2 instances]", results)
    assert counts == {"201": 1, "409 invitation_pending": 9}, counts
    for r in results:
        if r.status_code != 201:
            assert_code(r, "invitation_pending")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 1


def test_revoke_and_accept_concurrent_one_wins(db, two):
    """I3: a revoked invitation is never accepted, an accepted one never revoked."""
    servers, teach = two
    seen = set()
    for run in range(6):
        email = f"rv{run}@example.com"
        inv = invite(servers[0], teach, email)
        user, t = explorer(servers[1], f"rv{run}", email)
        barrier = threading.Barrier(2)
        out = {}

        def go(key, call):
            barrier.wait(timeout=30)
            out[key] = call()

        threads = [threading.Thread(target=go, args=(
                       "revoke", lambda: revoke(servers[run % 2], teach, inv["id"]))),
                   threading.Thread(target=go, args=(
                       "accept", lambda: accept(servers[(run + 1) % 2], t, inv["token"])))]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=60)
        rv = out["revoke"]
        pair = ("204" if getattr(rv, "status_code", None) == 204 else outcome(rv),
                outcome(out["accept"]))
        seen.add(pair)
        row = db.invitation(inv["id"])
        if pair == ("204", "400 invitation_revoked"):
            assert (row["status"], row["accepted_by"]) == ("revoked", None), row
            assert db.user(user["id"])["role"] == "explorer"
        else:
            assert pair == ("409 conflict", "200"), pair
            assert_teacher(db, user["id"], inv["id"])
    print(f"revoke vs accept outcomes: {sorted(seen)}")
