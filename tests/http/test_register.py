"""
POST /users/register/: the happy path, uniqueness across case and Unicode
variants, field validation with every problem listed, and what is stored.
A rejected request writes nothing.
"""

import pytest

from conftest import (MSG_EMAIL_TAKEN, MSG_REQUIRED, MSG_USERNAME_TAKEN, PASSWORD, assert_created,
                      assert_error, assert_invalid, user_body)


def test_register_valid_input_201(server, db):
    r = server.register(user_body("alice"))
    user = assert_created(r, "alice", "alice@example.com")
    row = db.user(user["id"])
    assert (row["username"], row["email"]) == ("alice", "alice@example.com")
    assert (row["username_key"], row["email_key"]) == ("alice", "alice@example.com")
    assert row["role"] == "explorer" and row["bio"] == ""
    assert not row["can_invite_teachers"] and not row["is_admin"]
    db.assert_invariants()


def test_register_role_omitted_explorer_201(server, db):
    r = server.register(user_body("bob", role=None, bio="Hello, I am Bob."))
    user = assert_created(r, "bob", "bob@example.com", role="explorer")
    row = db.user(user["id"])
    assert (row["role"], row["bio"]) == ("explorer", "Hello, I am Bob.")


def test_register_no_trailing_slash_201(server):
    assert_created(server.post("/users/register", json=user_body("noslash")), "noslash")


def test_register_json_charset_content_type_201(server):
    r = server.post("/users/register/", data=str.encode(
        '{"username": "charset", "email": "charset@example.com", "password": "%s"}' % PASSWORD),
        headers={"Content-Type": "application/json; charset=utf-8"})
    assert_created(r, "charset")


def test_register_chunked_small_body_201(server):
    body = ('{"username": "chunked", "email": "chunked@example.com", "password": "%s"}'
            % PASSWORD).encode()
    chunks = (body[i:i + 16] for i in range(0, len(body), 16))  # a generator: chunked upload
    r = server.post("/users/register/", data=chunks, headers={"Content-Type": "application/json"})
    assert_created(r, "chunked")


def test_register_request_id_sane_echoed(server):
    r = server.register(user_body("reqid"), headers={"X-Request-ID": "test-req-0001"})
    assert_created(r)
    assert r.headers["X-Request-ID"] == "test-req-0001"
    r = server.register(user_body("reqid", email="other@example.com"),
                        headers={"X-Request-ID": "test-req-0002"})
    assert assert_error(r, 400, "username_taken")["request_id"] == "test-req-0002"


def test_register_request_id_insane_replaced(server):
    insane = "x" * 1000
    r = server.register(user_body("reqid2"), headers={"X-Request-ID": insane})
    assert_created(r)
    assert r.headers["X-Request-ID"] not in ("", insane)


def test_register_display_values_kept_keys_folded(server, db):
    r = server.register(user_body("Bob.Smith", email="  Bob.Smith@Example.COM "))
    user = assert_created(r, "Bob.Smith")
    assert user["email"].strip() == "Bob.Smith@Example.COM"
    row = db.user(user["id"])
    assert row["username"] == "Bob.Smith" and row["email"].strip() == "Bob.Smith@Example.COM"
    assert (row["username_key"], row["email_key"]) == ("bob.smith", "bob.smith@example.com")


def test_register_fullwidth_username_stored_nfkc_201(server, db):
    user = assert_created(server.register(user_body("\uff26ull\uff4eame", email="fw@example.com")))
    assert user["username"] == "Fullname"
    row = db.user(user["id"])
    assert (row["username"], row["username_key"]) == ("Fullname", "fullname")


@pytest.mark.parametrize("username", ["Alice", "ALICE", "\uff41\uff4c\uff49\uff43\uff45",
                                      "\uff21lice"], ids=["title", "upper", "fullwidth", "mixed"])
def test_register_username_variant_taken_400(server, db, username):
    assert_created(server.register(user_body("alice")))
    r = server.register(user_body(username, email="other@example.com"))
    assert_error(r, 400, "username_taken", MSG_USERNAME_TAKEN)
    assert db.count_users() == 1


@pytest.mark.parametrize("email", [
    "alice@example.com", "ALICE@Example.com", " alice@example.com ", "\talice@example.com\n",
    "\uff41\uff4c\uff49\uff43\uff45@example.com",
    "\uff21\uff2c\uff29\uff23\uff25\uff20"  # ＡＬＩＣＥ＠ｅｘａｍｐｌｅ．ｃｏｍ
    "\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
], ids=["same", "case", "spaces", "whitespace", "fullwidth-local", "fullwidth-all"])
def test_register_email_variant_taken_400(server, db, email):
    assert_created(server.register(user_body("alice")))
    r = server.register(user_body("someoneelse", email=email))
    assert_error(r, 400, "email_taken", MSG_EMAIL_TAKEN)
    assert db.count_users() == 1


# -------------------------------------------------------------------- validation: nothing stored

@pytest.fixture
def rejects(server, db):
    """rejects(body) -> response, asserting afterwards that nothing was stored."""
    def send(body):
        return server.register(body)
    yield send
    assert db.count_users() == 0
    assert db.scalar("SELECT COUNT(*) FROM profiles") == 0


@pytest.mark.parametrize("body, missing", [
    ({}, ["username", "email", "password"]),
    ({"username": "carol"}, ["email", "password"]),
    ({"username": "carol", "email": "carol@example.com"}, ["password"]),
    ({"email": "carol@example.com", "password": PASSWORD}, ["username"]),
], ids=["all", "email+password", "password", "username"])
def test_register_missing_fields_400(rejects, body, missing):
    fields = assert_invalid(rejects(body), *missing)
    for f in missing:
        assert MSG_REQUIRED in fields[f], fields


@pytest.mark.parametrize("password, message", [
    ("password123", "This password is too common."),
    ("12345678", "This password is entirely numeric."),
    ("qwerty123", "This password is too common."),
    ("short", "This password is too short. It must contain at least 8 characters."),
    ("daveyjones1", "The password is too similar to the username."),
])
def test_register_weak_password_400(rejects, password, message):
    r = rejects(user_body("daveyjones", email="dj@example.org", password=password))
    fields = assert_invalid(r, "password")
    assert message in fields["password"], fields
    if len(password) >= 8:
        assert password not in r.text  # I5: no password in error bodies


@pytest.mark.parametrize("username", ["bad name!", "", "a" * 151, "tab\tname", "semi;colon"],
                         ids=["space-bang", "blank", "151-chars", "tab", "semicolon"])
def test_register_invalid_username_400(rejects, username):
    assert_invalid(rejects(user_body("x", username=username, email="x@example.com")), "username")


def test_register_username_150_chars_201(server):
    assert_created(server.register(user_body("a" * 150, email="long@example.com")), "a" * 150)


@pytest.mark.parametrize("username", ["ali\u200bce", "\u200balice", "ali\u202ece", "ali\u2060ce"],
                         ids=["zwsp", "zwsp-leading", "rlo", "word-joiner"])
def test_register_invisible_char_username_400(rejects, username):
    assert_invalid(rejects(user_body("x", username=username, email="x@example.com")), "username")


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "@example.com", "a@@example.com",
                                   "a b@example.com", "", "alice@exa mple.com"])
def test_register_invalid_email_400(rejects, email):
    assert_invalid(rejects(user_body("erin", email=email)), "email")


def test_register_every_problem_listed_400(rejects):
    fields = assert_invalid(rejects({"username": "bad name!", "email": "nope",
                                     "password": "123", "role": "wizard", "bio": "b" * 501}),
                            "username", "email", "password", "role", "bio")
    assert len(fields["password"]) >= 2, fields  # too short and entirely numeric


def test_register_unknown_role_400(rejects):
    assert_invalid(rejects(user_body("frank", role="wizard")), "role")


def test_register_teacher_without_invitation_403(rejects):
    assert_error(rejects(user_body("grace", role="teacher")), 403, "role_not_allowed")


def test_register_bio_501_chars_400(rejects):
    assert_invalid(rejects(user_body("heidi", bio="\u00e9" * 501)), "bio")


def test_register_bio_500_chars_201(server, db):
    user = assert_created(server.register(user_body("ivan", bio="\u00e9" * 500)))  # 1000 bytes
    assert db.user(user["id"])["bio"] == "\u00e9" * 500


# -------------------------------------------------------------------- secrets

def test_register_password_stored_argon2id_only(server, db):
    password = "Unique-Secret-Phrase-4711"
    user = assert_created(server.register(user_body("judy", password=password)))
    stored = db.user(user["id"])["password_hash"]
    assert stored.startswith("$argon2id$"), stored
    assert password not in stored
    r = server.register(user_body("judy", email="judy2@example.com", password=password))
    assert_error(r, 400, "username_taken")
    server.stop_checked()
    assert password not in server.log_text()
    assert stored not in server.log_text()


# -------------------------------------------------- look-alike usernames (issue 14, item 4)

LOOKALIKES_OF_ADMIN = {
    "cyrillic-a": "\u0430dmin", "greek-capital-alpha": "\u0391dmin", "latin-alpha": "\u0251dmin",
    "cyrillic-i": "adm\u0456n", "dotless-i": "adm\u0131n", "armenian-vo": "admi\u0578",
    "cyrillic-komi-de": "a\u0501min", "palochka": "adm\u04cfn", "rn": "adrnin",
    "greek-all-capitals": "\u0391DMIN", "cherokee": "\u13aaDMIN",
}


@pytest.mark.parametrize("username", list(LOOKALIKES_OF_ADMIN.values()),
                         ids=list(LOOKALIKES_OF_ADMIN))
def test_issue_14_lookalike_username_taken_400(server, db, username):
    assert_created(server.register(user_body("admin")))
    plain = assert_error(server.register(user_body("admin", email="plain@example.com")), 400,
                         "username_taken", MSG_USERNAME_TAKEN)
    r = server.register(user_body(username, email="other@example.com"))
    body = assert_error(r, 400, "username_taken", MSG_USERNAME_TAKEN)
    # The answer says no more than a plain "taken" does (which account, why).
    assert set(body) == set(plain) and body.keys() - {"request_id"} == {"error", "code"}, body
    assert db.count_users() == 1


def test_issue_14_lookalike_first_then_latin_taken_400(server, db):
    assert_created(server.register(user_body("\u0430dmin", email="cyr@example.com")))
    assert_error(server.register(user_body("admin")), 400, "username_taken", MSG_USERNAME_TAKEN)
    # Capital I against small l, and a case variant of a look-alike.
    assert_created(server.register(user_body("paypal")))
    for name in ("paypaI", "PAYPAI", "\u0440\u0430\u0443\u0440\u0430l"):
        r = server.register(user_body(name, email=f"p{ord(name[0])}{ord(name[-1])}@example.com"))
        assert_error(r, 400, "username_taken", MSG_USERNAME_TAKEN)
    assert db.count_users() == 2


@pytest.mark.parametrize("username", ["admins", "adm1n_", "jos\u00e9", "\u00e4dmin"],
                         ids=["longer", "other-name", "accent", "diaeresis"])
def test_issue_14_distinct_lookalike_username_201(server, db, username):
    assert_created(server.register(user_body("admin")))
    assert_created(server.register(user_body("jose", email="jose@example.com")))
    assert_created(server.register(user_body(username, email="distinct@example.com")), username)
    row = db.query("SELECT username_skeleton, username_skeleton_cased FROM users"
                   " WHERE username = ?", username)[0]
    assert all(row), row


# -------------------------------------------------- IDNA email domains (issue 14, item 11)

@pytest.mark.parametrize("first, second", [
    ("victim@b\u00fccher.de", "victim@xn--bcher-kva.de"),
    ("victim@xn--bcher-kva.de", "Victim@B\u00dcCHER.de"),
    ("victim@fa\u00df.de", "victim@XN--FA-HIA.DE"),
], ids=["unicode-first", "a-label-first", "sharp-s"])
def test_issue_14_idna_domain_spellings_one_account_400(server, db, first, second):
    from conftest import login

    user = assert_created(server.register(user_body("victim", email=first)), email=first)
    assert db.user(user["id"])["email"] == first  # the user's spelling is kept
    key = db.user(user["id"])["email_key"]
    assert key.startswith("victim@xn--") and key.isascii(), key
    r = server.register(user_body("other", email=second))
    assert_error(r, 400, "email_taken", MSG_EMAIL_TAKEN)
    assert db.count_users() == 1
    login(server, email=second)  # either spelling logs in


def test_issue_14_dotted_capital_i_domain_not_ascii_201(server, db):
    assert_created(server.register(user_body("victim", email="victim@examplei.com")))
    user = assert_created(server.register(user_body("other", email="victim@examplE\u0130.com")))
    key = db.user(user["id"])["email_key"]
    assert key != "victim@examplei.com" and key.startswith("victim@xn--"), key


@pytest.mark.parametrize("email", ["a@xn--zz.com", "a@xn--ab.com", "a@ab--cd.com",
                                   "a@\u0661\u0662\u0663abc.com"],
                         ids=["bad-punycode", "disallowed", "hyphens-3-4", "bidi"])
def test_issue_14_invalid_idna_domain_400(rejects, email):
    assert_invalid(rejects(user_body("erin", email=email)), "email")


def test_issue_14_longest_skeleton_username_201(server, db):
    """150 Hangul syllables whose confusable keys are 1,030 jamo (3,090 bytes), past
    PostgreSQL's btree limit of 2,704 bytes for an uncompressed index row: still a 201,
    then taken, never a 500 (PostgreSQL compresses the index entry)."""
    syllables = [0xAC00 + (lead * 21 + vowel) * 28 + tail for lead in (1, 4, 8, 10, 13)
                 for vowel in (10, 15) for tail in (2, 3, 5, 6, 9, 10, 11, 12, 13, 14, 15, 18, 20)]
    syllables += [0xAC00 + (lead * 21 + 10) * 28 + tail for lead in (0, 2, 3, 5)
                  for tail in (2, 3, 5, 6, 9)]
    name = "".join(chr(c) for c in sorted(syllables, key=lambda c: (c * 7919) % 10007))
    assert len(name) == 150
    assert_created(server.register(user_body(name, email="hangul@example.com")), name)
    assert db.scalar("SELECT length(username_skeleton_cased) FROM users") > 1000
    assert_error(server.register(user_body(name, email="hangul2@example.com")), 400,
                 "username_taken", MSG_USERNAME_TAKEN)
