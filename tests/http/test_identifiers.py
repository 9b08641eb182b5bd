"""
Issue 14, item 2: no identifier resolves to an account other than the one it
names. A new username may not be shaped like an email; an email that is an
existing account's username is taken; login looks an email-shaped name up by
email first (and as a username only when no account has that email, for
usernames imported from Django); the admin CLI takes `--username NAME`,
`--email ADDR` or `#ID`, and refuses (exit 2) a bare email-shaped USER that
is not exactly one account's email.

The "legacy" account is made as an import (or a sign-up before this rule)
would have left it: a username that is another account's email, written
into the database directly.
"""

import pytest

from conftest import (LOGIN, ME, PASSWORD, assert_code, assert_created, assert_invalid, auth, cli,
                      cli_json, cli_user, login, run_roster, user_body)

EMAIL = "t.lee@school.example"  # the teacher's email, and the attacker's username
MSG_USERNAME_EMAIL = "Enter a valid username. This value must not be an email address."
P_ATTACKER = "Mallory-Orchid-77!q"
P_NEW = "another-Staple-horse-42"


def make_legacy(db, username, email, password=P_ATTACKER):
    """An account whose username is `username` as stored by an import: returns its id."""
    user = cli_user(db, "legacy" + username.split("@")[0].replace(".", ""), email=email,
                    password=password)
    db.execute("UPDATE users SET username = ?, username_key = ? WHERE id = ?", username,
               username.lower(), user["id"])
    return user["id"]


@pytest.fixture
def pair(db):
    """(teacher, attacker id): the teacher has EMAIL, the attacker EMAIL as username."""
    teacher = cli_user(db, "tlee", "--role", "teacher", email=EMAIL)
    attacker = make_legacy(db, EMAIL, "mallory@evil.example")
    return teacher, attacker


def assert_exit(r, code, *messages):
    assert r.returncode == code, \
        f"expected exit {code}, got {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    for m in messages:
        assert m in r.stderr, f"{m!r} not on stderr: {r.stderr!r}"
    return r


def state(db):
    return db.query("SELECT u.id, u.username, u.password_hash, u.is_active, u.is_admin,"
                    " p.role, p.can_invite_teachers FROM users u"
                    " JOIN profiles p ON p.user_id = u.id ORDER BY u.id")


# --------------------------------------------------------------------------- the API

@pytest.mark.parametrize("username", [EMAIL, "T.Lee@School.EXAMPLE", "ａ@ｂ.ｃｏ", "x@y.zz"],
                         ids=["same", "case", "fullwidth", "unknown-address"])
def test_issue_14_register_email_shaped_username_400(db, fast_server, username):
    cli_user(db, "tlee", email=EMAIL)
    r = fast_server.register(user_body(username, email="mallory@evil.example"))
    fields = assert_invalid(r, "username")
    assert fields["username"] == [MSG_USERNAME_EMAIL], fields
    assert r.json()["error"] == MSG_USERNAME_EMAIL
    assert db.count_users() == 1


@pytest.mark.parametrize("username", ["ada@home", "@ada", "ada@", "a+b.c-d_e"])
def test_issue_14_register_username_with_at_not_an_email_201(fast_server, username):
    assert_created(fast_server.register(user_body("x", email="x@example.com", username=username)),
                   username)
    login(fast_server, username=username)


def test_issue_14_register_email_that_is_a_username_400_email_taken(db, fast_server):
    make_legacy(db, EMAIL, "legacy@example.com")
    for email in (EMAIL, "T.LEE@School.Example"):
        assert_code(fast_server.register(user_body("tlee", email=email)), "email_taken")
    assert db.count_users() == 1


def test_issue_14_login_email_shaped_name_is_the_email_owner(db, fast_server, pair):
    teacher, attacker = pair
    # The teacher types their email into the username field: their account.
    body = login(fast_server, username=EMAIL)
    assert fast_server.get(ME, headers=auth(body["token"])).json()["id"] == teacher["id"]
    login(fast_server, username=EMAIL.upper())
    # The attacker's password does not open the teacher's account through that name.
    for ident in ({"username": EMAIL}, {"email": EMAIL}):
        assert_code(fast_server.post(LOGIN, json={**ident, "password": P_ATTACKER}),
                    "invalid_credentials")
    # The attacker still logs in by their own email.
    body = login(fast_server, P_ATTACKER, email="mallory@evil.example")
    assert fast_server.get(ME, headers=auth(body["token"])).json()["id"] == attacker


def test_issue_14_login_imported_at_username_still_works(db, fast_server):
    legacy = make_legacy(db, "bob@corp.example", "bob@example.com")
    for name in ("bob@corp.example", "BOB@corp.example"):
        body = login(fast_server, P_ATTACKER, username=name)
        assert fast_server.get(ME, headers=auth(body["token"])).json()["id"] == legacy
    login(fast_server, P_ATTACKER, email="bob@example.com")
    # ... but only in the username field: the email field is only ever an email.
    assert_code(fast_server.post(LOGIN, json={"email": "bob@corp.example",
                                              "password": P_ATTACKER}), "invalid_credentials")


# --------------------------------------------------------------------------- the CLI

def test_issue_14_cli_create_email_shaped_username_1(db):
    assert_exit(cli(db, "user", "create", EMAIL, "--email", "x@example.com", "--password-stdin",
                    stdin=PASSWORD + "\n"), 1, MSG_USERNAME_EMAIL)
    make_legacy(db, "bob@corp.example", "bob@example.com")
    assert_exit(cli(db, "user", "create", "bob", "--email", "Bob@Corp.example",
                    "--password-stdin", stdin=PASSWORD + "\n"), 4, "Email already registered.")
    assert db.count_users() == 1


@pytest.mark.parametrize("cmd", [
    ("user", "show"),
    ("user", "set", "{}", "--can-invite-teachers", "on", "--admin", "on"),
    ("user", "set-password", "{}", "--password-stdin"),
    ("user", "delete"),
], ids=["show", "set", "set-password", "delete"])
def test_issue_14_cli_bare_ambiguous_user_refused_2(db, pair, cmd):
    teacher, attacker = pair
    before = state(db)
    args = [a.format(EMAIL) for a in cmd] if "{}" in cmd else [*cmd, EMAIL]
    r = assert_exit(cli(db, *args, stdin=P_NEW + "\n"), 2, "ambiguous user", f"#{teacher['id']}",
                    f"#{attacker}", "--email", "--username")
    assert "token" not in r.stdout and r.stdout == "", r.stdout
    assert state(db) == before


@pytest.mark.parametrize("how", ["--email", "--username", "#"])
def test_issue_14_cli_show_explicit_0(db, pair, how):
    teacher, attacker = pair
    args = [f"#{attacker}"] if how == "#" else [how, EMAIL.upper()]
    want = teacher["id"] if how == "--email" else attacker
    assert cli_json(db, "user", "show", *args)["id"] == want


def test_issue_14_cli_set_by_email_grants_the_teacher_only(db, pair):
    teacher, attacker = pair
    got = cli_json(db, "user", "set", "--email", EMAIL, "--can-invite-teachers", "on")
    assert got["id"] == teacher["id"] and got["profile"]["can_invite_teachers"] is True
    assert db.user(attacker)["can_invite_teachers"] == 0
    got = cli_json(db, "user", "set", "--username", EMAIL, "--active", "off")
    assert got["id"] == attacker and got["is_active"] is False
    assert db.user(teacher["id"])["is_active"] == 1


def test_issue_14_cli_set_password_by_email_and_username(db, pair, fast_server):
    teacher, attacker = pair
    hashes = {i: db.user(i)["password_hash"] for i in (teacher["id"], attacker)}
    assert_exit(cli(db, "user", "set-password", "--email", EMAIL, "--password-stdin",
                    stdin=P_NEW + "\n"), 0)
    assert db.user(attacker)["password_hash"] == hashes[attacker]
    assert db.user(teacher["id"])["password_hash"] != hashes[teacher["id"]]
    login(fast_server, P_NEW, username=EMAIL)
    assert_exit(cli(db, "user", "set-password", "--username", EMAIL, "--password-stdin",
                    stdin="third-Quiet-lamp-51\n"), 0)
    login(fast_server, "third-Quiet-lamp-51", email="mallory@evil.example")
    login(fast_server, P_NEW, email=EMAIL)


def test_issue_14_cli_delete_by_username_keeps_the_teacher(db, pair):
    teacher, attacker = pair
    assert_exit(cli(db, "user", "delete", "--username", EMAIL), 0)
    assert [u["id"] for u in cli_json(db, "user", "list")["users"]] == [teacher["id"]]
    assert_exit(cli(db, "user", "delete", "--username", EMAIL), 3)
    # No longer ambiguous: the bare email is the teacher's.
    assert cli_json(db, "user", "show", EMAIL)["id"] == teacher["id"]
    assert_exit(cli(db, "user", "delete", "--email", EMAIL), 0)
    assert db.count_users() == 0


def test_issue_14_cli_invite_by_ambiguous_2_by_id_0(db, pair):
    teacher, attacker = pair
    cli_json(db, "user", "set", "--email", EMAIL, "--can-invite-teachers", "on")
    for cmd in (("invite", "create", "--by", EMAIL, "--email", "new@example.com"),
                ("invite", "list", "--by", EMAIL)):
        assert_exit(cli(db, *cmd), 2, "ambiguous user", "#ID")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 0
    inv = cli_json(db, "invite", "create", "--by", f"#{teacher['id']}", "--email",
                   "new@example.com")
    assert db.invitation(inv["id"])["inviter_id"] == teacher["id"]
    assert [i["id"] for i in cli_json(db, "invite", "list", "--by",
                                      f"#{teacher['id']}")["invitations"]] == [inv["id"]]
    assert cli_json(db, "invite", "list", "--by", f"#{attacker}")["invitations"] == []


def test_issue_14_cli_bare_email_only_a_username_has_2(db):
    legacy = make_legacy(db, "bob@corp.example", "bob@example.com")
    for cmd in (("user", "show", "bob@corp.example"),
                ("invite", "list", "--by", "bob@corp.example")):
        assert_exit(cli(db, *cmd), 2, "no user has the email", f"#{legacy}")
    assert cli_json(db, "user", "show", "--username", "bob@corp.example")["id"] == legacy
    assert cli_json(db, "user", "show", "bob@example.com")["id"] == legacy
    assert_exit(cli(db, "user", "show", "--email", "bob@corp.example"), 3)


@pytest.mark.parametrize("args", [
    ("user", "show"),
    ("user", "show", "ada", "--email", "ada@example.com"),
    ("user", "delete", "--username", "ada", "--email", "ada@example.com"),
], ids=["none", "user-and-email", "username-and-email"])
def test_issue_14_cli_user_ref_not_exactly_one_2(db, args):
    cli_user(db, "ada")
    assert_exit(cli(db, *args), 2, "USER, --username NAME or --email ADDR")
    assert db.count_users() == 1


def test_issue_14_check_warns_of_a_username_that_is_another_email_0(db, pair):
    teacher, attacker = pair
    make_legacy(db, "bob@corp.example", "bob@example.com")  # '@' but no one's email: quiet
    r = run_roster("check", "--db", db.url)
    assert r.returncode == 0, r.stdout + r.stderr
    warnings = [line for line in r.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, r.stdout
    assert f"username of #{attacker} is the email of #{teacher['id']}" in warnings[0], warnings
    assert_exit(cli(db, "user", "delete", "--username", EMAIL), 0)
    r = run_roster("check", "--db", db.url)
    assert r.returncode == 0 and "warning:" not in r.stdout, r.stdout
