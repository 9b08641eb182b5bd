"""
Sessions and the profile: POST /users/login/ (by username, by email, uniform
failure in body and timing, imported Django hashes rehashed to argon2id),
token authentication of GET/PATCH /users/me/ (Token and Bearer; every way a
token stops being valid: unknown, expired, logged out, password changed,
account deactivated) and POST /users/logout/. Users are made with the admin
CLI on the same database, as an operator would.
"""

import statistics
import subprocess
import time

import pytest
import requests

from conftest import (FAST_HASH, LOGIN, LOGOUT, ME, PASSWORD, T, assert_code, assert_invalid,
                      assert_me, auth, cli_ok, cli_user, login, parse_time, raw_request,
                      request_head, token_of, user_body)

UNISSUED = "0123456789abcdef" * 4  # 64 hex characters, never issued
NEW_PASSWORD = "another-Staple-horse-42"


@pytest.fixture
def ada(db):
    """An explorer made by the CLI: user JSON of `roster user create ada`."""
    return cli_user(db, "ada", email="ada@example.com")


def me(server, token, scheme="Token"):
    return server.get(ME, headers=auth(token, scheme))


def assert_no_secrets_stored(db, *secrets):
    """I5: no column of auth_tokens or users holds a secret in clear."""
    for table in ("auth_tokens", "users"):
        for row in db.query(f"SELECT * FROM {table}"):
            for value in row:
                for secret in secrets:
                    assert secret not in str(value), f"{table} stores a secret in clear: {row}"


# --------------------------------------------------------------------------- login

def test_login_username_200_token(fast_server, db, ada):
    before = time.time()
    body = login(fast_server, username="ada")
    ttl = parse_time(body["expires_at"]) - before
    assert 14 * 86400 - 60 <= ttl <= 14 * 86400 + 60, body  # default --token-ttl 14d
    assert_me(me(fast_server, body["token"]), "ada", "ada@example.com")
    assert db.scalar("SELECT COUNT(*) FROM auth_tokens WHERE user_id = ?", ada["id"]) == 1
    assert_no_secrets_stored(db, body["token"], PASSWORD)
    fast_server.stop_checked()
    log = fast_server.log_text()
    assert body["token"] not in log and PASSWORD not in log


def test_login_twice_distinct_tokens_200(fast_server, ada):
    first, second = (login(fast_server, username="ada")["token"] for _ in range(2))
    assert first != second
    for token in (first, second):
        assert_me(me(fast_server, token), "ada")


@pytest.mark.parametrize("ident", [{"username": "ADA"}, {"username": "Ada"}],
                         ids=["upper", "title"])
def test_login_username_other_case_200(fast_server, ada, ident):
    assert_me(me(fast_server, login(fast_server, **ident)["token"]), "ada")


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@Example.com"])
def test_login_email_field_200(fast_server, ada, email):
    assert_me(me(fast_server, login(fast_server, email=email)["token"]), "ada")


@pytest.mark.parametrize("value", ["ada@example.com", "ADA@Example.com"])
def test_login_username_field_holding_email_200(fast_server, ada, value):
    assert_me(me(fast_server, login(fast_server, username=value)["token"]), "ada")


@pytest.mark.parametrize("body", [
    {"username": "nobody", "password": PASSWORD},
    {"email": "nobody@example.com", "password": PASSWORD},
    {"username": "nobody@example.com", "password": PASSWORD},
    {"username": "ada", "password": PASSWORD + "x"},
    {"username": "ADA", "password": "wrong-Password-1"},
    {"email": "ADA@example.com", "password": PASSWORD.upper()},
    {"username": "ada@example.com", "password": PASSWORD[:-1]},
], ids=["unknown-username", "unknown-email", "unknown-email-in-username", "wrong-pw",
        "wrong-pw-other-case", "wrong-pw-by-email", "wrong-pw-email-in-username"])
def test_login_bad_credentials_400_uniform(fast_server, ada, body):
    r = fast_server.post(LOGIN, json=body)
    got = assert_code(r, "invalid_credentials")
    assert set(got) == {"error", "code", "request_id"}, got  # nothing says which part was wrong


@pytest.mark.parametrize("body,field,message", [
    ({"username": "ada"}, "password", "This field is required."),
    ({"password": PASSWORD}, "username", "This field is required."),
    ({"username": 5, "password": PASSWORD}, "username", "Not a valid string."),
    ({"username": "ada", "password": 5}, "password", "Not a valid string."),
    ({"username": ["ada"], "password": PASSWORD}, "username", "Not a valid string."),
], ids=["no-password", "no-username", "username-number", "password-number", "username-list"])
def test_login_invalid_body_400_invalid(fast_server, ada, body, field, message):
    fields = assert_invalid(fast_server.post(LOGIN, json=body), field)
    assert fields[field] == [message], fields


def test_login_inactive_user_right_password_400(fast_server, db, ada):
    cli_ok(db, "user", "set", "ada", "--active", "off")
    assert_code(fast_server.post(LOGIN, json={"username": "ada", "password": PASSWORD}),
                "invalid_credentials")
    assert_code(fast_server.post(LOGIN, json={"email": "ada@example.com", "password": PASSWORD}),
                "invalid_credentials")
    cli_ok(db, "user", "set", "ada", "--active", "on")
    login(fast_server, username="ada")


def test_login_unknown_user_and_wrong_password_same_timing(db, start_servers):
    """
    A security property, not a benchmark: without a dummy verification an unknown
    user answers ~100x faster than a wrong password. Real hashing cost (the
    server's defaults), the account registered through the same server so the
    stored hash and the dummy have the same parameters; attempts interleaved.
    """
    server = start_servers(db)[0]
    assert server.register(user_body("timed")).status_code == 201
    unknown = {"username": "nosuchuser", "password": "wrong-Password-1"}
    wrong = {"username": "timed", "password": "wrong-Password-1"}
    samples = {"unknown": [], "wrong": []}
    with requests.Session() as s:
        for body in (unknown, wrong):  # warm-up: connection, caches, the pool's threads
            s.post(server.url + LOGIN, json=body, timeout=T)
        for _ in range(7):
            for key, body in (("unknown", unknown), ("wrong", wrong)):
                t0 = time.perf_counter()
                r = s.post(server.url + LOGIN, json=body, timeout=T)
                samples[key].append(time.perf_counter() - t0)
                assert_code(r, "invalid_credentials")
    med = {k: statistics.median(v) for k, v in samples.items()}
    ratio = med["unknown"] / med["wrong"]
    print(f"login timing: median seconds {med}, unknown/wrong = {ratio:.2f}")
    assert 0.5 <= ratio <= 2.0, f"median seconds {med}, unknown/wrong = {ratio:.2f}"


def django_hash(password, hasher):
    """A hash made by Django itself (Debian's python3-django), as an imported account has."""
    code = ("import sys\n"
            "from django.conf import settings\n"
            "settings.configure(PASSWORD_HASHERS=["
            "'django.contrib.auth.hashers.PBKDF2PasswordHasher',"
            "'django.contrib.auth.hashers.Argon2PasswordHasher',"
            "'django.contrib.auth.hashers.BCryptSHA256PasswordHasher',"
            "'django.contrib.auth.hashers.BCryptPasswordHasher'])\n"
            "from django.contrib.auth.hashers import make_password\n"
            "print(make_password(sys.argv[1], hasher=sys.argv[2]))\n")
    r = subprocess.run(["/usr/bin/python3", "-c", code, password, hasher],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def stored_hash(db, user_id):
    return db.scalar("SELECT password_hash FROM users WHERE id = ?", user_id)


@pytest.mark.parametrize("hasher,prefix", [("pbkdf2_sha256", "pbkdf2_sha256$"),
                                           ("argon2", "argon2$argon2id$"),
                                           ("bcrypt_sha256", "bcrypt_sha256$$2b$"),
                                           ("bcrypt", "bcrypt$$2b$")])
def test_login_django_hash_200_rehashed_argon2id(fast_server, db, hasher, prefix):
    password = "Imported-from-django-7"
    user = cli_user(db, "imported", password=PASSWORD)
    dj = django_hash(password, hasher)
    assert dj.startswith(prefix), dj
    assert db.execute("UPDATE users SET password_hash = ? WHERE id = ?", dj, user["id"]) == 1

    for wrong in (PASSWORD, password + "x"):
        assert_code(fast_server.post(LOGIN, json={"username": "imported", "password": wrong}),
                    "invalid_credentials")
    assert stored_hash(db, user["id"]) == dj  # a failed login rewrites nothing

    token = login(fast_server, password, username="imported")["token"]
    assert_me(me(fast_server, token), "imported")
    deadline = time.monotonic() + 3
    while stored_hash(db, user["id"]) == dj and time.monotonic() < deadline:
        time.sleep(0.05)
    new = stored_hash(db, user["id"])
    assert new.startswith("$argon2id$"), f"not rehashed after a successful login: {new}"
    assert password not in new

    login(fast_server, password, email="imported@example.com")
    assert_code(fast_server.post(LOGIN, json={"username": "imported", "password": PASSWORD}),
                "invalid_credentials")
    assert stored_hash(db, user["id"]) == new


# --------------------------------------------------------------------------- /users/me/

@pytest.mark.parametrize("scheme", ["Token", "Bearer", "token", "BEARER"])
def test_me_valid_token_scheme_200(fast_server, ada, scheme):
    token = token_of(fast_server, "ada")
    got = assert_me(me(fast_server, token, scheme), "ada", "ada@example.com", role="explorer",
                    bio="", can_invite=False)
    assert got["id"] == ada["id"]
    assert abs(parse_time(got["date_joined"]) - parse_time(ada["date_joined"])) < 1.5, (got, ada)


def test_me_no_header_401(fast_server):
    assert_code(fast_server.get(ME), "not_authenticated")


@pytest.mark.parametrize("header", [
    "Token", "Token ", "Bearer", "Basic xxx", "Basic {t}", "Token abc", "Token {t} extra",
    "Bearer {t} {t}", "{t}", "Token{t}", "Token {t}x", "Token {t_short}", "Token {t40}",
    "Token {t41}",
], ids=["token-alone", "token-space", "bearer-alone", "basic", "basic-real-token", "short",
        "extra-word", "two-tokens", "no-scheme", "no-space", "one-char-more", "one-char-less",
        "drf-length-prefix", "drf-length-plus-one"])
def test_me_malformed_header_401(fast_server, ada, header):
    t = token_of(fast_server, "ada")
    value = header.format(t=t, t_short=t[:-1], t40=t[:40], t41=t[:41])
    assert_code(fast_server.get(ME, headers={"Authorization": value}), "not_authenticated")
    assert_me(me(fast_server, t), "ada")  # the token itself is fine


def test_me_unknown_token_401(fast_server, ada):
    token_of(fast_server, "ada")
    for scheme in ("Token", "Bearer"):
        assert_code(me(fast_server, UNISSUED, scheme), "not_authenticated")


def test_me_expired_token_401(db, start_servers, ada):
    server = start_servers(db, args=(*FAST_HASH, "--token-ttl", "2s"))[0]
    before = time.time()
    body = login(server, username="ada")
    expires = parse_time(body["expires_at"])
    assert before + 0.5 <= expires <= before + 3.5, (before, body)
    assert_me(me(server, body["token"]), "ada")
    time.sleep(max(0.0, expires - time.time()) + 1.0)
    for scheme in ("Token", "Bearer"):
        assert_code(me(server, body["token"], scheme), "not_authenticated")
    assert_me(me(server, token_of(server, "ada")), "ada")  # a new login works


def test_logout_token_204_then_401(fast_server, ada):
    kept = token_of(fast_server, "ada")
    token = token_of(fast_server, "ada")
    r = fast_server.post(LOGOUT, json={}, headers=auth(token))
    assert r.status_code == 204, r.text
    assert r.content == b""
    assert_code(me(fast_server, token), "not_authenticated")
    assert_code(me(fast_server, token, "Bearer"), "not_authenticated")
    assert_code(fast_server.post(LOGOUT, json={}, headers=auth(token)), "not_authenticated")
    assert_me(me(fast_server, kept), "ada")  # only the presented token is revoked


def test_logout_bearer_204_then_401(fast_server, ada):
    token = token_of(fast_server, "ada")
    assert fast_server.post(LOGOUT, json={}, headers=auth(token, "Bearer")).status_code == 204
    assert_code(me(fast_server, token), "not_authenticated")


def test_logout_no_token_401(fast_server):
    assert_code(fast_server.post(LOGOUT, json={}), "not_authenticated")
    assert_code(fast_server.post(LOGOUT, json={}, headers=auth(UNISSUED)), "not_authenticated")


@pytest.mark.parametrize("headers", [{}, {"Content-Length": "0"},
                                     {"Content-Length": "0", "Content-Type": "application/json"}],
                         ids=["no-length", "length-0", "length-0-json"])
def test_logout_no_body_204(fast_server, ada, headers):
    """Logout has no documented body: `curl -X POST -H 'Authorization: ...'` must work."""
    token = token_of(fast_server, "ada")
    r = raw_request(fast_server, request_head(fast_server, "POST", LOGOUT,
                                              {**auth(token), **headers}))
    assert r.status_code == 204, f"{r.status_code} {r.text}"
    assert_code(me(fast_server, token), "not_authenticated")
    r = raw_request(fast_server, request_head(fast_server, "POST", LOGOUT, headers))
    assert_code(r, "not_authenticated")  # no token: 401, not a complaint about the body


def test_me_after_cli_set_password_401(fast_server, db, ada):
    tokens = [token_of(fast_server, "ada") for _ in range(2)]
    cli_ok(db, "user", "set-password", "ada", "--password-stdin", stdin=NEW_PASSWORD + "\n")
    for token in tokens:
        assert_code(me(fast_server, token), "not_authenticated")
    assert_code(fast_server.post(LOGIN, json={"username": "ada", "password": PASSWORD}),
                "invalid_credentials")
    assert_me(me(fast_server, token_of(fast_server, "ada", NEW_PASSWORD)), "ada")


def test_me_after_cli_deactivate_401(fast_server, db, ada):
    token = token_of(fast_server, "ada")
    cli_ok(db, "user", "set", "ada", "--active", "off")
    assert_code(me(fast_server, token), "not_authenticated")
    assert_code(fast_server.patch(ME, json={"bio": "x"}, headers=auth(token)), "not_authenticated")
    cli_ok(db, "user", "set", "ada", "--active", "on")
    assert_code(me(fast_server, token), "not_authenticated")  # deactivation revoked it
    assert_me(me(fast_server, token_of(fast_server, "ada")), "ada")


def test_me_deactivated_in_db_401(fast_server, db, ada):
    """A token of an account made inactive by any means (here the row itself) is refused."""
    token = token_of(fast_server, "ada")
    assert db.execute("UPDATE users SET is_active = ? WHERE id = ?", False, ada["id"]) == 1
    assert_code(me(fast_server, token), "not_authenticated")


def test_me_after_cli_delete_401(fast_server, db, ada):
    token = token_of(fast_server, "ada")
    cli_ok(db, "user", "delete", "ada")
    assert_code(me(fast_server, token), "not_authenticated")
    assert db.scalar("SELECT COUNT(*) FROM auth_tokens") == 0


# --------------------------------------------------------------------------- PATCH /users/me/

def me_state(server, db, token, user_id):
    """(GET /users/me/ body, database row): what must not change after a refused PATCH."""
    return assert_me(me(server, token)), db.user(user_id)


@pytest.mark.parametrize("bio", ["hi", "x" * 500, "Grüße, 先生! 🎓", ""],
                         ids=["short", "500-chars", "unicode", "empty"])
def test_me_patch_bio_200(fast_server, db, ada, bio):
    token = token_of(fast_server, "ada")
    assert fast_server.patch(ME, json={"bio": "before"}, headers=auth(token)).status_code == 200
    r = fast_server.patch(ME, json={"bio": bio}, headers=auth(token))
    got = assert_me(r, "ada", "ada@example.com", role="explorer", bio=bio, can_invite=False)
    assert got["id"] == ada["id"]
    assert_me(me(fast_server, token), bio=bio)
    assert db.user(ada["id"])["bio"] == bio
    db.assert_invariants()


def test_me_patch_bio_bearer_no_slash_200(fast_server, ada):
    token = token_of(fast_server, "ada")
    r = fast_server.patch(ME.rstrip("/"), json={"bio": "hi"}, headers=auth(token, "Bearer"))
    assert_me(r, bio="hi")


def test_me_patch_bio_501_chars_400_unchanged(fast_server, db, ada):
    token = token_of(fast_server, "ada")
    fast_server.patch(ME, json={"bio": "kept"}, headers=auth(token))
    before = me_state(fast_server, db, token, ada["id"])
    r = fast_server.patch(ME, json={"bio": "x" * 501}, headers=auth(token))
    fields = assert_invalid(r, "bio")
    assert fields["bio"] == ["Ensure this field has no more than 500 characters."], fields
    assert me_state(fast_server, db, token, ada["id"]) == before


@pytest.mark.parametrize("body,field", [
    ({"username": "x"}, "username"),
    ({"role": "teacher"}, "role"),
    ({"can_invite_teachers": True}, "can_invite_teachers"),
    ({"email": "other@example.com", "bio": "changed"}, "email"),  # alone it is an email change
    ({"bio": "changed", "role": "teacher"}, "role"),
], ids=["username", "role", "can-invite", "email", "bio-and-role"])
def test_me_patch_unknown_field_400_unchanged(fast_server, db, ada, body, field):
    token = token_of(fast_server, "ada")
    fast_server.patch(ME, json={"bio": "kept"}, headers=auth(token))
    before = me_state(fast_server, db, token, ada["id"])
    fields = assert_invalid(fast_server.patch(ME, json=body, headers=auth(token)), field)
    assert fields[field] == ["Unknown field."], fields
    assert me_state(fast_server, db, token, ada["id"]) == before
    assert before[0]["profile"]["bio"] == "kept"


def test_me_patch_no_token_401(fast_server, db, ada):
    assert_code(fast_server.patch(ME, json={"bio": "hi"}), "not_authenticated")
    assert_code(fast_server.patch(ME, json={"bio": "hi"}, headers=auth(UNISSUED)),
                "not_authenticated")
    assert db.user(ada["id"])["bio"] == ""


def test_me_patch_bio_not_string_400(fast_server, db, ada):
    token = token_of(fast_server, "ada")
    for bad in (5, None, ["x"], {"a": 1}):
        r = fast_server.patch(ME, json={"bio": bad}, headers=auth(token))
        assert_invalid(r, "bio")
    assert db.user(ada["id"])["bio"] == ""



# --------------------------------------------------------------------------- first and last name

@pytest.mark.parametrize("first,last", [("Ada", "Lovelace"), ("Ærø", "先生 🎓"), ("x" * 150, ""),
                                        ("", "")], ids=["ascii", "unicode", "max", "empty"])
def test_me_patch_names_200(fast_server, db, ada, first, last):
    token = login(fast_server, username="ada")["token"]
    got = assert_me(me(fast_server, token))
    assert (got["first_name"], got["last_name"]) == ("", "")  # default of a new account
    r = fast_server.patch(ME, json={"first_name": first, "last_name": last, "bio": "b"},
                          headers=auth(token))
    got = assert_me(r, "ada", bio="b")
    assert (got["first_name"], got["last_name"]) == (first, last)
    got = assert_me(me(fast_server, token))
    assert (got["first_name"], got["last_name"]) == (first, last)
    row = db.query("SELECT first_name, last_name FROM users WHERE id = ?", ada["id"])[0]
    assert tuple(row) == (first, last)


def test_me_patch_one_name_keeps_other_200(fast_server, ada):
    token = login(fast_server, username="ada")["token"]
    fast_server.patch(ME, json={"first_name": "A", "last_name": "L"}, headers=auth(token))
    got = assert_me(fast_server.patch(ME, json={"last_name": "M"}, headers=auth(token)))
    assert (got["first_name"], got["last_name"]) == ("A", "M")


@pytest.mark.parametrize("body,fields", [
    ({"first_name": "x" * 151}, ("first_name",)),
    ({"last_name": "é" * 151}, ("last_name",)),
    ({"first_name": 3, "last_name": None}, ("first_name", "last_name")),
    ({"first_name": "x" * 151, "bio": "y" * 501}, ("first_name", "bio")),
], ids=["first-long", "last-long", "not-strings", "with-bio"])
def test_me_patch_names_invalid_400(fast_server, db, ada, body, fields):
    token = login(fast_server, username="ada")["token"]
    got = assert_invalid(fast_server.patch(ME, json=body, headers=auth(token)), *fields)
    if "first_name" in got and body.get("first_name") == "x" * 151:
        assert got["first_name"] == ["Ensure this field has no more than 150 characters."]
    row = db.query("SELECT first_name, last_name FROM users WHERE id = ?", ada["id"])[0]
    assert tuple(row) == ("", "")  # nothing written
