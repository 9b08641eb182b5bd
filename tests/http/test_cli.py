"""
The admin CLI (docs/cli.md) on the same database as the API: every user and
invite command through its exit code (0 ok, 1 invalid input, 2 usage, 3 not
found, 4 conflict, 5 database unavailable), its stdout (text and --json) and
its stderr (`roster: <message>` lines), and the same validation and
normalisation as the API.
"""

import json

import pytest

from conftest import (ACCEPT, LOGIN, PASSWORD, assert_code, assert_created, auth, cli, cli_json,
                      cli_ok, cli_user, login, parse_time, token_of, user_body)
from pgcluster import free_port

USER_KEYS = {"id", "username", "email", "is_active", "is_admin", "date_joined", "last_login",
             "profile"}
PROFILE_KEYS = {"role", "bio", "can_invite_teachers"}
INVITE_KEYS = {"id", "inviter", "email", "status", "created_at", "expires_at", "accepted_at"}
NEW_PASSWORD = "another-Staple-horse-42"


def assert_exit(r, code, *messages):
    """Exit `code`; on failure stderr is `roster: ...` lines and holds every message."""
    assert r.returncode == code, \
        f"expected exit {code}, got {r.returncode}\nstdout: {r.stdout}\nstderr: {r.stderr}"
    if code != 0:
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert lines, "an error exit with nothing on stderr"
        problems = [line for line in lines if line.startswith("roster: ")]
        assert problems, f"no `roster: <message>` line on stderr: {r.stderr!r}"
        for m in messages:
            assert any(m in line for line in problems), f"{m!r} not on stderr: {r.stderr!r}"
    return r


def create(db, username, *flags, email=None, password=PASSWORD):
    return cli(db, "user", "create", username, "--email", email or f"{username}@example.com",
               *flags, "--password-stdin", stdin=password + "\n")


def assert_user_json(user, username=None, email=None, **want):
    assert set(user) == USER_KEYS, user
    assert set(user["profile"]) == PROFILE_KEYS, user
    assert isinstance(user["id"], int) and not isinstance(user["id"], bool), user
    parse_time(user["date_joined"])
    for key, value in (("username", username), ("email", email)):
        if value is not None:
            assert user[key] == value, user
    for key, value in want.items():
        got = user["profile"][key] if key in PROFILE_KEYS else user[key]
        assert got == value, (key, user)
    return user


# --------------------------------------------------------------------------- user create

def test_user_create_text_0(db):
    r = assert_exit(create(db, "ada", email="Ada@Example.com"), 0)
    assert "ada" in r.stdout and "Ada@Example.com" in r.stdout, r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    [(uid,)] = db.query("SELECT id FROM users")
    row = db.user(uid)
    assert (row["username"], row["email"]) == ("ada", "Ada@Example.com")
    assert (row["username_key"], row["email_key"]) == ("ada", "ada@example.com")
    assert (row["role"], row["bio"], row["can_invite_teachers"], row["is_admin"],
            row["is_active"]) == ("explorer", "", 0, 0, 1), row
    assert row["password_hash"].startswith("$argon2id$"), row
    db.assert_invariants()


def test_user_create_json_0(db):
    user = cli_user(db, "ada", email="ada@example.com")
    assert_user_json(user, "ada", "ada@example.com", is_active=True, is_admin=False,
                     last_login=None, role="explorer", bio="", can_invite_teachers=False)
    assert db.user(user["id"])["username"] == "ada"


def test_user_create_all_flags_json_0(db):
    user = cli_user(db, "Teach", "--role", "teacher", "--bio", "Physics, 20 years.", "--admin",
                    "--can-invite-teachers", email="teach@example.com")
    assert_user_json(user, "Teach", "teach@example.com", is_active=True, is_admin=True,
                     role="teacher", bio="Physics, 20 years.", can_invite_teachers=True)
    row = db.user(user["id"])
    assert (row["role"], row["bio"], row["is_admin"], row["can_invite_teachers"]) == \
        ("teacher", "Physics, 20 years.", 1, 1), row


def test_user_create_password_stdin_first_line_login_200(db, fast_server):
    r = create(db, "ada", password=PASSWORD + "\nsecond line, ignored")
    assert_exit(r, 0)
    token = login(fast_server, username="ada")["token"]
    assert fast_server.get("/users/me/", headers=auth(token)).status_code == 200


@pytest.mark.parametrize("username,email", [("ADA", "other@example.com"),
                                            ("ada", "other@example.com")],
                         ids=["other-case", "same"])
def test_user_create_duplicate_username_4(db, username, email):
    cli_user(db, "ada", email="ada@example.com")
    assert_exit(create(db, username, email=email), 4)
    assert db.count_users() == 1


@pytest.mark.parametrize("email", ["ADA@Example.com", "ada@example.com"])
def test_user_create_duplicate_email_4(db, email):
    cli_user(db, "ada", email="ada@example.com")
    assert_exit(create(db, "other", email=email), 4)
    assert db.count_users() == 1


@pytest.mark.parametrize("password,message", [
    ("short1", "This password is too short. It must contain at least 8 characters."),
    ("12345678901", "This password is entirely numeric."),
    ("password123", "This password is too common."),
], ids=["short", "numeric", "common"])
def test_user_create_weak_password_1(db, password, message):
    r = assert_exit(create(db, "ada", password=password), 1, message)
    assert password not in r.stdout + r.stderr
    assert db.count_users() == 0


@pytest.mark.parametrize("username,email,message", [
    ("ada", "not-an-email", "Enter a valid email address."),
    ("bad name!", "bad@example.com", "Enter a valid username."),
    ("x" * 151, "long@example.com", "Ensure this field has no more than 150 characters."),
], ids=["email", "username", "username-too-long"])
def test_user_create_invalid_input_1(db, username, email, message):
    assert_exit(create(db, username, email=email), 1, message)
    assert db.count_users() == 0


def test_user_create_bio_too_long_1(db):
    assert_exit(create(db, "ada", "--bio", "x" * 501), 1,
                "Ensure this field has no more than 500 characters.")
    assert db.count_users() == 0


@pytest.mark.parametrize("args", [
    ("user", "create", "ada", "--email", "ada@example.com", "--frobnicate", "--password-stdin"),
    ("user", "frobnicate"),
    ("invite", "frobnicate"),
    ("user", "list", "--frobnicate"),
    ("invite", "list", "--frobnicate"),
    ("user", "set", "ada", "--active", "maybe"),
], ids=["unknown-flag", "user-unknown-command", "invite-unknown-command",
        "list-unknown-flag", "invite-list-unknown-flag", "bad-on-off"])
def test_cli_usage_error_2(db, args):
    if args[1] == "set":
        cli_user(db, "ada", email="ada@example.com")
    before = db.query("SELECT * FROM users")
    assert_exit(cli(db, *args, stdin=PASSWORD + "\n"), 2)
    assert db.query("SELECT * FROM users") == before


def test_user_create_help_0(db):
    r = cli(db, "user", "create", "--help")
    assert r.returncode == 0, r.stderr
    assert "--password-stdin" in r.stdout + r.stderr


def test_user_list_database_unavailable_5(backend, make_db, tmp_path):
    class Missing:
        url = "sqlite:" + str(tmp_path / "no" / "such" / "dir" / "roster.db")
    if backend == "postgres":
        Missing.url = f"postgresql://postgres@127.0.0.1:{free_port()}/roster"  # nothing listens
        assert_exit(cli(make_db(migrate=False, create=False), "user", "list"), 5)  # no database
    assert_exit(cli(Missing, "user", "list"), 5)


# --------------------------------------------------------------------------- list, show

def test_user_list_json_oldest_first(db):
    made = [cli_user(db, name) for name in ("zed", "amy", "Mia")]
    got = cli_json(db, "user", "list")
    assert set(got) == {"users"}, got
    assert [u["username"] for u in got["users"]] == ["zed", "amy", "Mia"], got
    assert [u["id"] for u in got["users"]] == [u["id"] for u in made]
    for listed, created in zip(got["users"], made):
        assert_user_json(listed)
        assert listed == created, (listed, created)


def test_user_list_text_0(db):
    for name in ("zed", "amy"):
        cli_user(db, name)
    r = assert_exit(cli(db, "user", "list"), 0)
    assert "zed" in r.stdout and "amy@example.com" in r.stdout, r.stdout


def test_user_list_empty_json(db):
    assert cli_json(db, "user", "list") == {"users": []}


def test_user_show_by_username_email_id_0(db):
    ada = cli_user(db, "Ada", email="ada@example.com")
    cli_user(db, "bob")
    for ref in ("Ada", "ada", "ADA", "ada@example.com", "ADA@Example.com", f"#{ada['id']}"):
        assert cli_json(db, "user", "show", ref) == ada, ref
    r = assert_exit(cli(db, "user", "show", "ada"), 0)
    assert "Ada" in r.stdout and "ada@example.com" in r.stdout


@pytest.mark.parametrize("ref", ["nobody", "nobody@example.com", "#9999"])
def test_user_show_unknown_3(db, ref):
    cli_user(db, "ada")
    assert_exit(cli(db, "user", "show", ref), 3)
    assert_exit(cli(db, "user", "show", ref, "--json"), 3)


# --------------------------------------------------------------------------- set, set-password

@pytest.mark.parametrize("flag,value,key,expect,column,stored", [
    ("--role", "teacher", "role", "teacher", "role", "teacher"),
    ("--active", "off", "is_active", False, "is_active", 0),
    ("--can-invite-teachers", "on", "can_invite_teachers", True, "can_invite_teachers", 1),
    ("--admin", "on", "is_admin", True, "is_admin", 1),
], ids=["role", "active", "can-invite", "admin"])
def test_user_set_json_reflects_0(db, flag, value, key, expect, column, stored):
    ada = cli_user(db, "ada")
    got = cli_json(db, "user", "set", "ada", flag, value)
    assert_user_json(got, "ada", **{key: expect})
    assert db.user(ada["id"])[column] == stored
    assert cli_json(db, "user", "show", "ada") == got
    unchanged = {k: v for k, v in ada.items() if k not in (key, "profile")}
    assert {k: v for k, v in got.items() if k not in (key, "profile")} == unchanged


def test_user_set_several_and_back_0(db):
    ada = cli_user(db, "ada")
    got = cli_json(db, "user", "set", f"#{ada['id']}", "--role", "teacher", "--admin", "on",
                   "--can-invite-teachers", "on", "--active", "off")
    assert_user_json(got, "ada", role="teacher", is_admin=True, can_invite_teachers=True,
                     is_active=False)
    back = cli_json(db, "user", "set", "ADA@example.com", "--role", "explorer", "--admin", "off",
                    "--can-invite-teachers", "off", "--active", "on")
    assert back == ada
    r = assert_exit(cli(db, "user", "set", "ada", "--role", "teacher"), 0)
    assert "teacher" in r.stdout, r.stdout
    db.assert_invariants()


def test_user_set_unknown_user_3(db):
    assert_exit(cli(db, "user", "set", "nobody", "--role", "teacher"), 3)


def test_user_set_unknown_role_refused(db):
    ada = cli_user(db, "ada")
    r = cli(db, "user", "set", "ada", "--role", "wizard")
    assert r.returncode in (1, 2), (r.returncode, r.stderr)  # a validation or a usage error
    assert db.user(ada["id"])["role"] == "explorer"


@pytest.mark.parametrize("password,message", [
    ("short1", "This password is too short. It must contain at least 8 characters."),
    ("12345678901", "This password is entirely numeric."),
], ids=["short", "numeric"])
def test_user_set_password_weak_1(db, fast_server, password, message):
    ada = cli_user(db, "ada")
    token = token_of(fast_server, "ada")
    old_hash = db.user(ada["id"])["password_hash"]
    assert_exit(cli(db, "user", "set-password", "ada", "--password-stdin",
                    stdin=password + "\n"), 1, message)
    assert db.user(ada["id"])["password_hash"] == old_hash
    assert fast_server.get("/users/me/", headers=auth(token)).status_code == 200  # not revoked
    login(fast_server, username="ada")


def test_user_set_password_0_old_fails_new_works(db, fast_server):
    ada = cli_user(db, "ada")
    old_hash = db.user(ada["id"])["password_hash"]
    r = assert_exit(cli(db, "user", "set-password", "ada", "--password-stdin",
                        stdin=NEW_PASSWORD + "\n"), 0)
    assert NEW_PASSWORD not in r.stdout + r.stderr
    new_hash = db.user(ada["id"])["password_hash"]
    assert new_hash != old_hash and new_hash.startswith("$argon2id$"), new_hash
    assert_code(fast_server.post(LOGIN, json={"username": "ada", "password": PASSWORD}),
                "invalid_credentials")
    login(fast_server, NEW_PASSWORD, username="ada")


def test_user_set_password_unknown_user_3(db):
    assert_exit(cli(db, "user", "set-password", "nobody", "--password-stdin",
                    stdin=NEW_PASSWORD + "\n"), 3)


# --------------------------------------------------------------------------- delete

def test_user_delete_0_then_show_3(db, fast_server):
    ada = cli_user(db, "ada")
    bob = cli_user(db, "bob")
    token = token_of(fast_server, "ada")
    assert_exit(cli(db, "user", "delete", "ada"), 0)
    assert_exit(cli(db, "user", "show", "ada"), 3)
    assert_exit(cli(db, "user", "delete", "ada"), 3)
    assert_exit(cli(db, "user", "delete", f"#{ada['id']}"), 3)
    assert db.query("SELECT user_id FROM profiles WHERE user_id = ?", ada["id"]) == []
    assert db.query("SELECT id FROM auth_tokens WHERE user_id = ?", ada["id"]) == []
    assert [u["id"] for u in cli_json(db, "user", "list")["users"]] == [bob["id"]]
    assert_code(fast_server.get("/users/me/", headers=auth(token)), "not_authenticated")
    assert_code(fast_server.post(LOGIN, json={"username": "ada", "password": PASSWORD}),
                "invalid_credentials")
    db.assert_invariants()
    assert_created(fast_server.register(user_body("ada")))  # the names are free again


# --------------------------------------------------------------------------- invitations

@pytest.fixture
def teach(db):
    return cli_user(db, "teach1", "--can-invite-teachers", email="t@example.com")


def test_invite_create_text_token_line_0(db, fast_server, teach):
    r = assert_exit(cli(db, "invite", "create", "--by", "teach1", "--email", "new@example.com"), 0)
    lines = r.stdout.strip().splitlines()
    assert lines and lines[-1].startswith("token: "), r.stdout
    token = lines[-1][len("token: "):].strip()
    assert token and r.stdout.count(token) == 1, r.stdout  # shown once
    assert "new@example.com" in r.stdout
    rows = db.query("SELECT * FROM teacher_invitations")
    assert len(rows) == 1 and all(token not in str(v) for v in rows[0]), rows  # stored hashed
    user = assert_created(fast_server.register(
        {"username": "newbie", "email": "new@example.com", "password": PASSWORD,
         "invitation": token}), role="teacher")
    assert db.user(user["id"])["can_invite_teachers"] == 0


def test_invite_create_json_0(db, fast_server, teach):
    inv = cli_json(db, "invite", "create", "--by", "t@example.com", "--email", "New@Example.com")
    assert set(inv) == INVITE_KEYS | {"token"}, inv
    assert (inv["email"], inv["status"], inv["accepted_at"]) == ("New@Example.com", "pending",
                                                                 None), inv
    assert isinstance(inv["id"], int)
    assert inv["inviter"] in ("teach1", teach["id"]) or isinstance(inv["inviter"], dict), inv
    assert parse_time(inv["expires_at"]) > parse_time(inv["created_at"])
    row = db.invitation(inv["id"])
    assert (row["inviter_id"], row["status"], row["email_key"]) == \
        (teach["id"], "pending", "new@example.com"), row
    # accepted through the API by the invited account
    assert_created(fast_server.register(user_body("newbie", email="new@example.com")))
    t = token_of(fast_server, "newbie")
    r = fast_server.post(ACCEPT, json={"token": inv["token"]}, headers=auth(t))
    assert r.status_code == 200, r.text
    [listed] = cli_json(db, "invite", "list")["invitations"]
    assert listed["status"] == "accepted" and listed["accepted_at"], listed
    assert "token" not in listed


def test_invite_create_by_unknown_3(db, teach):
    for by in ("nobody", "nobody@example.com", "#9999"):
        assert_exit(cli(db, "invite", "create", "--by", by, "--email", "x@example.com"), 3)
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 0


def test_invite_create_by_user_without_permission_refused(db):
    cli_user(db, "plain")
    r = cli(db, "invite", "create", "--by", "plain", "--email", "x@example.com")
    # docs/cli.md does not name the code for "USER must have can_invite_teachers":
    # invalid input (1) or conflict (4); never success, not-found or usage.
    assert r.returncode in (1, 4), (r.returncode, r.stdout, r.stderr)
    assert_exit(r, r.returncode)
    assert "token" not in r.stdout
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 0


def test_invite_create_conflicts_4(db, teach):
    cli_user(db, "has", email="has@example.com")
    cli_ok(db, "invite", "create", "--by", "teach1", "--email", "x@example.com")
    cli_user(db, "teach2", "--can-invite-teachers")
    for by, email in (("teach1", "X@Example.com"), ("teach2", "x@example.com"),
                      ("teach1", "HAS@example.com")):
        assert_exit(cli(db, "invite", "create", "--by", by, "--email", email), 4)
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 1


def test_invite_create_invalid_email_1(db, teach):
    assert_exit(cli(db, "invite", "create", "--by", "teach1", "--email", "not-an-email"), 1,
                "Enter a valid email address.")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 0


def test_invite_list_json_all_and_by(db, teach):
    cli_user(db, "teach2", "--can-invite-teachers")
    a = cli_json(db, "invite", "create", "--by", "teach1", "--email", "a@example.com")
    b = cli_json(db, "invite", "create", "--by", "teach2", "--email", "b@example.com")
    c = cli_json(db, "invite", "create", "--by", "teach1", "--email", "c@example.com")
    got = cli_json(db, "invite", "list")
    assert set(got) == {"invitations"}, got
    assert {i["id"] for i in got["invitations"]} == {a["id"], b["id"], c["id"]}, got
    for inv in got["invitations"]:
        assert set(inv) == INVITE_KEYS, inv
        assert inv["status"] == "pending", inv
        assert all(t["token"] not in json.dumps(inv) for t in (a, b, c)), inv
    mine = cli_json(db, "invite", "list", "--by", "teach1")["invitations"]
    assert {i["id"] for i in mine} == {a["id"], c["id"]}, mine
    assert cli_json(db, "invite", "list", "--by", "teach2")["invitations"][0]["id"] == b["id"]
    assert_exit(cli(db, "invite", "list", "--by", "nobody"), 3)
    r = assert_exit(cli(db, "invite", "list"), 0)
    assert "a@example.com" in r.stdout and a["token"] not in r.stdout


def test_invite_revoke_0_then_4(db, fast_server, teach):
    inv = cli_json(db, "invite", "create", "--by", "teach1", "--email", "x@example.com")
    assert_exit(cli(db, "invite", "revoke", str(inv["id"])), 0)
    assert db.invitation(inv["id"])["status"] == "revoked"
    [listed] = cli_json(db, "invite", "list")["invitations"]
    assert listed["status"] == "revoked", listed
    before = db.invitation(inv["id"])
    assert_exit(cli(db, "invite", "revoke", str(inv["id"])), 4)
    assert_exit(cli(db, "invite", "revoke", "9999"), 3)
    assert db.invitation(inv["id"]) == before
    r = fast_server.register({"username": "x", "email": "x@example.com", "password": PASSWORD,
                              "invitation": inv["token"]})
    assert_code(r, "invitation_revoked")
    # a new one for the same email is allowed once none is pending
    cli_ok(db, "invite", "create", "--by", "teach1", "--email", "x@example.com")


def test_invite_revoke_accepted_4(db, fast_server, teach):
    inv = cli_json(db, "invite", "create", "--by", "teach1", "--email", "x@example.com")
    assert_created(fast_server.register({"username": "x", "email": "x@example.com",
                                         "password": PASSWORD, "invitation": inv["token"]}),
                   role="teacher")
    before = db.invitation(inv["id"])
    assert_exit(cli(db, "invite", "revoke", str(inv["id"])), 4)
    assert db.invitation(inv["id"]) == before


# --------------------------------------------------------------------------- CLI and API agree

def test_cli_user_blocks_api_register_variants_400(db, fast_server):
    cli_user(db, "Ada", email="Ada.Lovelace@Example.com")
    assert_code(fast_server.register(user_body("ada", email="other@example.com")),
                "username_taken")
    assert_code(fast_server.register(user_body("ADA", email="other@example.com")),
                "username_taken")
    assert_code(fast_server.register(user_body("lovelace", email="ada.lovelace@example.com")),
                "email_taken")
    assert db.count_users() == 1
    login(fast_server, username="ada")
    login(fast_server, email="ADA.LOVELACE@example.com")


def test_api_user_blocks_cli_create_variants_4(db, fast_server):
    bob = assert_created(fast_server.register(user_body("Bob", email="Bob@Example.com")))
    assert_exit(create(db, "BOB", email="other@example.com"), 4)
    assert_exit(create(db, "robert", email="bob@EXAMPLE.com"), 4)
    assert db.count_users() == 1
    shown = cli_json(db, "user", "show", "bob@example.com")
    assert (shown["id"], shown["username"], shown["email"]) == (bob["id"], "Bob",
                                                                "Bob@Example.com"), shown
