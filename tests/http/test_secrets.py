"""
Secrets never in clear (invariant I5): a full scenario on two instances (debug
logging, rate limits on) with distinctive passwords, every token the API hands
out captured, and wrong tokens sent on purpose; then every log line of every
instance, the admin CLI's output, /metrics, every column of every row of every
table (and, on SQLite, the raw database and WAL files) are searched for each
secret in clear; the audit trail is searched for their hashes too. Error bodies must never echo a password, and no error body
carries a token. Passwords typed into the login's username field (one a
valid username, one shaped like an email) must not show either: rate-limit
counters are keyed by a keyed hash of the login name (issue 14, item 8); on
PostgreSQL a pg_dump of the database is searched too.
"""

import hashlib
import os
import re
import secrets
import subprocess
import urllib.parse

import pytest

from conftest import (ACCEPT, FAST_HASH, INVITATIONS, LOGIN, LOGOUT, ME, REGISTER, TOKEN_RE, PgDb,
                      assert_code, assert_created, assert_error, assert_invalid, auth, cli,
                      roster_bin, roster_env, run_roster, user_body)

# Passwords: distinctive, and each valid under the policy unless named WEAK_*.
P_ALICE = "Zebra-Quartz-91!x"
P_INVITER = "Inviter-Mango-58#k"
P_TEACHER = "Teacher-Lotus-36$w"
P_BOB = "Bob-Falcon-27&zq"
P_WRONG = "Wrong-Guess-Oak-13%"
WEAK_NUMERIC = "90817263544817"
WEAK_SHORT = "Zq7!k"
WEAK_SIMILAR = "quartzfan-1"  # too similar to the username "quartzfan"
WEAK_LONG = "Longpw-" + "Q7" * 2600  # over 4096 bytes
# Passwords typed as the login name: a valid username, and one shaped like an email.
TYPED_AS_NAME = "Quokka-Typed-Name-58"
TYPED_AS_EMAIL = "Lime.Orchard73@Kiwi-Grove.example"
PASSWORDS = [P_ALICE, P_INVITER, P_TEACHER, P_BOB, P_WRONG, WEAK_NUMERIC, WEAK_SHORT, WEAK_SIMILAR,
             WEAK_LONG, TYPED_AS_NAME, TYPED_AS_EMAIL]


class Client:
    """Alternates requests over the servers and keeps every response."""

    def __init__(self, servers):
        self.servers = servers
        self.n = 0
        self.responses = []

    def __call__(self, method, path, **kw):
        server = self.servers[self.n % len(self.servers)]
        self.n += 1
        r = server.request(method, path, **kw)
        self.responses.append(r)
        return r


def sha256(text):
    return hashlib.sha256(text.encode()).hexdigest()


def all_rows(db):
    """(table, row) for every row of every table of the database."""
    if db.backend == "sqlite":
        tables = [t for (t,) in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        tables = [t for (t,) in db.query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
    return tables, [(t, row) for t in tables for row in db.query(f'SELECT * FROM "{t}"')]


def text_of(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        return b.decode("latin-1") + " " + b.hex()
    return str(value)


def hits(haystack, needles):
    """The needles found in `haystack`, as given, upper-cased or lower-cased."""
    return [n for n in needles if n in haystack or n.upper() in haystack or n.lower() in haystack]


def test_secrets_never_in_logs_database_or_error_bodies(make_db, start_servers):
    db = make_db()
    servers = start_servers(db, 2, args=(*FAST_HASH, "--log-level", "debug", "--rate-limits", "on",
                                         "--limit-login-failures", "3"))
    call = Client(servers)
    tokens = []  # every token the API handed out, and every wrong one we sent

    def post(path, body, token=None, **kw):
        return call("POST", path, json=body, headers=auth(token) if token else None, **kw)

    def get(path, token=None):
        return call("GET", path, headers=auth(token) if token else None)

    def token_login(name, password):
        r = post(LOGIN, {"username": name, "password": password})
        assert r.status_code == 200, r.text
        t = r.json()["token"]
        assert TOKEN_RE.match(t)
        tokens.append(t)
        return t

    # An inviter, made with the admin CLI (password on stdin).
    r = cli(db, "user", "create", "inviter", "--email", "inviter@example.com",
            "--can-invite-teachers", "--password-stdin", "--json", stdin=P_INVITER + "\n")
    assert r.returncode == 0, r.stderr
    cli_output = r.stdout + r.stderr

    # Sign-up, login, profile.
    assert_created(post(REGISTER, {"username": "alice", "email": "alice@example.com",
                                   "password": P_ALICE}), "alice")
    t_alice = token_login("alice", P_ALICE)
    assert get(ME, t_alice).status_code == 200
    r = call("PATCH", ME, json={"bio": "hello"}, headers=auth(t_alice))
    assert r.status_code == 200, r.text
    t_alice2 = token_login("alice@example.com", P_ALICE)

    # Invitations through the API: create, register with one, accept one, resend, revoke.
    t_inviter = token_login("inviter", P_INVITER)
    inv_teacher = post(INVITATIONS, {"email": "teacher@example.com"}, t_inviter)
    inv_bob = post(INVITATIONS, {"email": "bob@example.com"}, t_inviter)
    inv_carol = post(INVITATIONS, {"email": "carol@example.com"}, t_inviter)
    for r in (inv_teacher, inv_bob, inv_carol):
        assert r.status_code == 201, r.text
        tokens.append(r.json()["token"])
    r = post(REGISTER, {"username": "teacher", "email": "teacher@example.com",
                        "password": P_TEACHER, "invitation": inv_teacher.json()["token"]})
    assert_created(r, "teacher", role="teacher")
    t_teacher = token_login("teacher", P_TEACHER)
    assert_created(post(REGISTER, {"username": "bob", "email": "bob@example.com",
                                   "password": P_BOB}), "bob")
    t_bob = token_login("bob", P_BOB)
    r = post(ACCEPT, {"token": inv_bob.json()["token"]}, t_bob)
    assert r.status_code == 200, r.text
    r = post(ACCEPT, {"token": inv_bob.json()["token"]}, t_bob)
    assert_code(r, "invitation_used")
    r = post(f"{INVITATIONS}{inv_carol.json()['id']}/resend/", {}, t_inviter)
    assert r.status_code == 200, r.text
    tokens.append(r.json()["token"])
    r = call("DELETE", f"{INVITATIONS}{inv_carol.json()['id']}/", headers=auth(t_inviter))
    assert r.status_code == 204, r.text
    r = get(INVITATIONS, t_inviter)
    assert r.status_code == 200 and "token" not in r.text, r.text

    # Wrong tokens, on purpose.
    fake = [secrets.token_hex(32) for _ in range(4)]
    tokens += fake
    assert_code(get(ME, fake[0]), "not_authenticated")
    assert_code(call("GET", ME, headers=auth(fake[1], "Bearer")), "not_authenticated")
    assert_code(call("GET", ME, headers={"Authorization": "Token " + fake[2][:40]}),
                "not_authenticated")
    assert_code(post(ACCEPT, {"token": fake[2]}, t_bob), "invitation_invalid")
    assert_code(post(REGISTER, {"username": "mallory", "email": "mallory@example.com",
                                "password": P_WRONG + "m", "invitation": fake[3]}),
                "invitation_invalid")

    # Failed logins: a wrong password, an unknown account, then the lockout (limit 3)
    # answered even to the right password.
    for _ in range(3):
        assert_code(post(LOGIN, {"username": "alice", "password": P_WRONG}), "invalid_credentials")
    assert_code(post(LOGIN, {"username": "nobody", "password": P_WRONG}), "invalid_credentials")
    assert_code(post(LOGIN, {"email": "nobody@example.com", "password": P_ALICE}),
                "invalid_credentials")
    assert_error(post(LOGIN, {"username": "alice", "password": P_ALICE}), 429, "rate_limited")
    # A password typed into the username field (and the password field holding the name).
    for typed in (TYPED_AS_NAME, TYPED_AS_EMAIL):
        assert_code(post(LOGIN, {"username": typed, "password": "bob"}), "invalid_credentials")

    # Weak passwords: refused, never echoed.
    for name, pw in (("weaknum", WEAK_NUMERIC), ("weakshort", WEAK_SHORT),
                     ("quartzfan", WEAK_SIMILAR), ("weaklong", WEAK_LONG)):
        assert_invalid(post(REGISTER, {"username": name, "email": f"{name}@example.com",
                                       "password": pw}), "password")

    # Logout revokes; the revoked token then fails.
    r = post(LOGOUT, {}, t_alice)
    assert r.status_code == 204, r.text
    assert_code(get(ME, t_alice), "not_authenticated")
    metrics = servers[0].get("/metrics").text

    for s in servers:
        s.stop_checked()
    assert len(set(tokens)) == len(tokens) == 13

    # 1. No response body echoes a password; no error body carries any token.
    problems = []
    for r in call.responses:
        found = hits(r.text, PASSWORDS)
        if found:
            problems.append(f"{r.request.method} {r.request.path_url} -> {r.status_code}: "
                            f"password echoed: {found}")
        if r.status_code >= 400 and hits(r.text, tokens):
            problems.append(f"{r.request.method} {r.request.path_url} -> {r.status_code}: "
                            f"token in an error body: {r.text[:200]}")
    errors = sum(r.status_code >= 400 for r in call.responses)
    assert errors >= 15, f"only {errors} error responses: the scenario did not run as meant"

    # 2. Logs of every instance, the CLI's output and /metrics.
    secrets_all = PASSWORDS + tokens
    lines = 0
    for s in servers:
        for n, line in enumerate(s.log_text().splitlines(), 1):
            lines += 1
            for found in hits(line, secrets_all):
                problems.append(f"{s.log_path}:{n}: secret {found[:24]}... in: {line[:300]}")
    access = sum(rec.get("msg") == "request" for s in servers for rec in s.log_records())
    assert access > len(call.responses), f"{access} access lines for {len(call.responses)} requests"
    for found in hits(cli_output, secrets_all):
        problems.append(f"roster user create output holds {found[:24]}...")
    for found in hits(metrics, secrets_all):
        problems.append(f"/metrics holds {found[:24]}...")

    # 3. Every column of every row of every table.
    tables, rows = all_rows(db)
    for t in ("users", "profiles", "auth_tokens", "teacher_invitations", "rate_limits"):
        assert t in tables, tables
    cells = 0
    for table, row in rows:
        for value in row:
            cells += 1
            for found in hits(text_of(value), secrets_all):
                problems.append(f"table {table}: secret {found[:24]}... in row {row}")
    # ... where tokens are stored hashed, and passwords as argon2id.
    stored = {h for (h,) in db.query("SELECT token_hash FROM auth_tokens")}
    assert sha256(t_alice2) in stored and sha256(t_teacher) in stored
    assert sha256(t_alice) not in stored  # logged out
    inv_hashes = {h for (h,) in db.query("SELECT token_hash FROM teacher_invitations")}
    assert sha256(inv_teacher.json()["token"]) in inv_hashes
    for (h,) in db.query("SELECT password_hash FROM users"):
        assert h.startswith("$argon2id$"), h[:20]
    # ... and the audit trail holds neither a secret (above) nor a hash of one: not
    # the tokens' SHA-256 (as stored), not a password hash, not the typed names'.
    audit = [row for table, row in rows if table == "audit_events"]
    events = {row[2] for row in audit}
    assert {"register", "login", "login_failed", "logout", "profile_updated",
            "invitation_created", "invitation_resent", "invitation_revoked",
            "invitation_accepted", "user_created"} <= events, events
    hashed = ([sha256(t) for t in tokens] + [h for (h,) in db.query(
        "SELECT password_hash FROM users")] + [sha256(p) for p in PASSWORDS])
    for row in audit:
        for found in hits(" ".join(text_of(v) for v in row), hashed):
            problems.append(f"audit_events: a hash {found[:24]}... in row {row}")

    # 4. SQLite: the raw bytes of the database and its WAL (freed pages included).
    raw_scanned = []
    if db.backend == "sqlite":
        visible = False
        for suffix in ("", "-wal"):
            path = db.path + suffix
            if not os.path.exists(path):
                continue
            with open(path, "rb") as f:
                blob = f.read()
            raw_scanned.append(f"{os.path.basename(path)} ({len(blob)} B)")
            visible = visible or b"alice@example.com" in blob
            for s in secrets_all:
                if s.encode() in blob:
                    problems.append(f"{path}: raw bytes hold {s[:24]}...")
        # The scan can see clear text: in the file, or still in the WAL when no
        # checkpoint has run yet (which of the two holds it depends on timing).
        assert visible, raw_scanned
    # 5. PostgreSQL: everything pg_dump writes out (schema, data, sequences).
    if db.backend == "postgres":
        dump = subprocess.run([os.path.join(db.cluster.bindir, "pg_dump"), "-d", db.url],
                              capture_output=True, text=True, timeout=60)
        assert dump.returncode == 0, dump.stderr
        assert "alice@example.com" in dump.stdout  # the scan can see clear text
        raw_scanned.append(f"pg_dump ({len(dump.stdout)} B)")
        for found in hits(dump.stdout, secrets_all):
            problems.append(f"pg_dump holds {found[:24]}...")
    print(f"secrets scan [{db.backend}]: {len(secrets_all)} secrets, {len(call.responses)} "
          f"responses ({errors} errors), {lines} log lines, {len(tables)} tables, "
          f"{len(rows)} rows, {cells} cells, raw: {raw_scanned or '-'}; hits: {len(problems)}")
    assert not problems, "\n".join(problems)
    # Rate-limit counters are keyed "<limit>:<keyed hash>", whatever the subject was.
    rate_keys = [k for (k,) in db.query("SELECT key FROM rate_limits")]
    assert rate_keys and all(re.match(r"^[a-z_]+:[0-9a-f]{64}$", k) for k in rate_keys), rate_keys


# --------------------------------------------------------------------------- PostgreSQL URLs

# A password with every character that breaks a URL when left unescaped; each
# fragment between them is distinctive, so a partial leak shows too.
PG_PW_PARTS = ("Qx7Vault", "Beta4Mesa", "Gamma5Rook", "Delta6Fern", "Eps8Lynx")
PG_PW = "%".join(PG_PW_PARTS[:2]) + "/" + PG_PW_PARTS[2] + "@" + PG_PW_PARTS[3] + "[" + \
    PG_PW_PARTS[4]


def pg_leaks(text, encoded=None):
    """Fragments of the password (or its percent-encoded form) found in `text`."""
    return [p for p in (*PG_PW_PARTS, PG_PW, *((encoded,) if encoded else ())) if p in text]


def unescaped_urls(port):
    """URLs whose password breaks libpq's parse, or is parsed into the host or database."""
    a, b = PG_PW_PARTS[0], PG_PW_PARTS[1]
    return {"%": f"postgresql://postgres:{a}%zz{b}@127.0.0.1:{port}/x",
            "/": f"postgresql://postgres:{a}/{b}@127.0.0.1:{port}/x",
            "@": f"postgresql://postgres:{a}@{b}@127.0.0.1:{port}/x",
            "[": f"postgresql://postgres:{a}{b}@[::1/x",
            "all": f"postgresql://postgres:{PG_PW}@127.0.0.1:{port}/x",
            "query": f"postgresql://127.0.0.1:{port}/x?password={a}%zz{b}"}


def test_issue_14_postgres_url_unescaped_password_refused_never_echoed():
    """Issue 14, item 7: an unescaped %, /, @ or a bad [ in the password of --db
    made libpq quote the URL (or part of the password as a host name) in its
    message, and roster's own "redacted" URL kept the rest. Now such a URL is
    refused at once with a sentence that says what to escape and quotes nothing."""
    problems = []
    for what, url in unescaped_urls(1).items():
        for args in (["migrate", "--check"], ["migrate"], ["check"], ["user", "list"],
                     ["serve", "--bind", "127.0.0.1:0"]):
            r = run_roster(*args, "--db", url, timeout=10)
            out = r.stdout + r.stderr
            if r.returncode == 0:
                problems.append(f"{what} {args}: exit 0")
            if "not shown" not in out:
                problems.append(f"{what} {args}: no refusal that says the URL is not shown: {out}")
            if pg_leaks(out):
                problems.append(f"{what} {args}: password fragments {pg_leaks(out)} in: {out}")
        env_r = subprocess.run([roster_bin(), "check"], capture_output=True, text=True,
                               timeout=10, env={**roster_env(), "ROSTER_DB": url})
        if env_r.returncode == 0 or pg_leaks(env_r.stdout + env_r.stderr):
            problems.append(f"{what} ROSTER_DB: exit {env_r.returncode}, {env_r.stderr}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("backend", ["postgres"])
def test_issue_14_postgres_url_escaped_special_password_never_in_logs_metrics_bodies(
        make_db, start_servers):
    """The same password percent-encoded is a valid URL: roster serves with it (the
    throwaway cluster trusts every password, so it connects) and, on an unreachable
    port, rides the outage out; neither form of the password, nor any fragment of
    it, reaches a log line, stderr, /metrics or an error body."""
    encoded = urllib.parse.quote(PG_PW, safe="")
    live = make_db()
    live.url = live.url.replace("postgresql://postgres@",
                                f"postgresql://postgres:{encoded}@")
    assert encoded in live.url
    down = PgDb(live.cluster, "x", live.dir)
    down.url = f"postgresql://postgres:{encoded}@127.0.0.1:1/x"
    outputs = []
    for args in (["migrate", "--check"], ["check"], ["user", "list"]):
        for db in (live, down):
            r = run_roster(*args, "--db", db.url)
            assert (r.returncode == 0) == (db is live), (args, db.url, r.stdout, r.stderr)
            outputs.append((f"{args} {'live' if db is live else 'down'}", r.stdout + r.stderr))
    servers = start_servers(live, 1, args=(*FAST_HASH, "--log-level", "debug")) + \
        start_servers(down, 1, args=(*FAST_HASH, "--log-level", "debug"))
    bodies = []
    for s in servers:
        bodies.append(s.register(user_body("pgsecret")))
        bodies.append(s.post(LOGIN, json={"username": "pgsecret", "password": "wrong-Pass-1"}))
        bodies.append(s.get("/readyz"))
        bodies.append(s.get("/metrics"))
    assert [r.status_code for r in bodies] == [201, 400, 200, 200, 503, 503, 503, 200], \
        [(r.status_code, r.text[:100]) for r in bodies]
    for s in servers:
        s.stop_checked()
        outputs.append((s.log_path, s.log_text()))
    assert any("127.0.0.1:1" in text for _, text in outputs)  # the redacted URL is shown
    outputs += [(f"{r.request.method} {r.request.path_url} -> {r.status_code}", r.text)
                for r in bodies]
    problems = [f"{where}: {pg_leaks(text, encoded)}" for where, text in outputs
                if pg_leaks(text, encoded)]
    assert not problems, "\n".join(problems)
