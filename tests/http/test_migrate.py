"""
The command line on both backends: `serve` refuses a database with pending migrations and names
the fix, `migrate` and `migrate --check`, and flag handling.
"""

import os
import re
import sqlite3
import subprocess
import time

import pytest

from conftest import assert_healthy, roster_bin, roster_env, run_roster


def serve_refusal(db, hint="roster migrate"):
    """Runs serve on `db`; it must exit non-zero within a few seconds, stderr naming `hint`."""
    try:
        r = run_roster("serve", "--db", db.url, "--bind", "127.0.0.1:0", timeout=5)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed it
        pytest.fail(f"serve kept running on a database it cannot use: {e.stderr}")
    assert r.returncode != 0, r.stderr
    assert hint in r.stderr, r.stderr
    return r


def test_serve_pending_migrations_refuses_then_migrate_fixes(make_db, start_servers):
    db = make_db(migrate=False)  # PostgreSQL: an empty database
    if db.backend == "sqlite":
        conn = sqlite3.connect(db.path)  # a valid SQLite file without our schema
        conn.execute("CREATE TABLE scratch (x)")
        conn.execute("DROP TABLE scratch")
        conn.commit()
        conn.close()

    serve_refusal(db)
    assert run_roster("migrate", "--check", "--db", db.url).returncode == 1
    r = run_roster("migrate", "--db", db.url)
    assert r.returncode == 0, r.stderr
    r = run_roster("migrate", "--check", "--db", db.url)
    assert r.returncode == 0, r.stderr
    assert db.scalar("SELECT COUNT(*) FROM schema_migrations") >= 1

    server = start_servers(db)[0]
    assert_healthy(server)
    assert server.get("/readyz").status_code == 200


def test_serve_missing_database_refuses(make_db):
    """SQLite: no file yet, which `roster migrate` creates. PostgreSQL: no such
    database, which only its administrator creates (migrate opens it like serve)."""
    db = make_db(migrate=False, create=False)
    if db.backend == "sqlite":
        serve_refusal(db)
        assert run_roster("migrate", "--check", "--db", db.url).returncode == 1
    else:
        r = serve_refusal(db, "does not exist")
        assert db.name in r.stderr, r.stderr
        for args in (("migrate", "--check"), ("migrate",)):
            r = run_roster(*args, "--db", db.url)
            assert r.returncode != 0, (args, r.stdout, r.stderr)
            assert "does not exist" in r.stderr and db.name in r.stderr, (args, r.stderr)


def test_migrate_twice_unchanged(db):
    before = db.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
    r = run_roster("migrate", "--db", db.url)
    assert r.returncode == 0, r.stderr
    assert db.query("SELECT version, name, applied_at FROM schema_migrations"
                    " ORDER BY version") == before
    versions = [v for v, _, _ in before]
    assert versions == sorted(set(versions)) and versions[0] >= 1, versions


def test_serve_unknown_flag_exit_2(db):
    r = run_roster("serve", "--no-such-flag", "--db", db.url, timeout=5)
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "no-such-flag" in lines[0], r.stderr


@pytest.mark.parametrize("args", [["serve", "--threads"], ["no-such-command"]],
                         ids=["missing-value", "unknown-command"])
def test_cli_bad_usage_exit_2(args):
    r = run_roster(*args, timeout=5)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert r.stderr.strip(), "no error message"


@pytest.mark.parametrize("args", [["--threads", "zero"], ["--threads", "-1"],
                                  ["--bind", "nonsense"], ["--hash-workers", "0"],
                                  ["--token-ttl", "3153600000d"], ["--invitation-ttl", "36501d"]],
                         ids=["threads-word", "threads-negative", "bind", "hash-workers-0",
                              "token-ttl-past-100-years", "invitation-ttl-past-100-years"])
def test_serve_bad_value_refuses(db, args):
    r = run_roster("serve", "--db", db.url, *args, timeout=5)
    assert r.returncode != 0, r.stderr
    assert r.stderr.strip(), "no error message"


def test_cli_version_flag_exit_0():
    r = run_roster("--version", timeout=5)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() or r.stderr.strip()


def test_serve_help_flag_exit_0():
    r = run_roster("serve", "--help", timeout=5)
    assert r.returncode == 0, r.stderr
    assert "--db" in r.stdout + r.stderr



def serve_until_listening(url):
    """`roster serve` on an unreachable PostgreSQL: it starts (issue 9) and is stopped
    once it says so; returns everything it printed."""
    proc = subprocess.Popen([roster_bin(), "serve", "--bind", "127.0.0.1:0", "--db", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=roster_env())
    lines = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            lines.append(line)
            if '"msg":"listening"' in line:
                break
        assert any('"msg":"listening"' in line for line in lines), "".join(lines)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, (proc.returncode, err)
    return "".join(lines) + out + err


def test_database_url_password_never_printed():
    """A password in --db is replaced by *** in every message (logs are not a secret store)."""
    url = "postgresql://postgres:Sekr3t-Pw-77@127.0.0.1:1/x?password=Sekr3t-Pw-78"
    for args in (["migrate", "--check"], ["migrate"], ["check"], ["user", "list"]):
        r = run_roster(*args, "--db", url)
        assert r.returncode != 0, args
        out = r.stdout + r.stderr
        assert "Sekr3t-Pw-7" not in out, (args, out)
        assert "createdb" in out, (args, out)
    out = serve_until_listening(url)  # serve rides the outage out: it logs, then listens
    assert "Sekr3t-Pw-7" not in out, out
    assert "createdb" in out, out


EMBED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                     "embed-migrations.py")


def embed_in(tmp_path, listed, extra=()):
    """Runs embed-migrations.py on a copy of migrations/ holding `listed` plus `extra`."""
    for rel in (*listed, *extra):
        path = tmp_path / "migrations" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"-- roster-compat: 1\n-- {rel}\nSELECT 1;\n")
    out = tmp_path / "migrations.c"
    args = [str(tmp_path / "migrations" / rel) for rel in listed]
    return subprocess.run(["/usr/bin/python3", EMBED, str(out), EMBED, *args],
                          capture_output=True, text=True, timeout=30), out


def test_embed_migrations_all_listed_generates_both_tables(tmp_path):
    r, out = embed_in(tmp_path, ["sqlite/0001_a.sql", "postgres/0001_a.sql"])
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    assert "store_migrations_sqlite[]" in text and "store_migrations_postgres[]" in text


def test_embed_migrations_records_compat_and_refuses_a_file_without_it(tmp_path):
    r, out = embed_in(tmp_path, ["sqlite/0001_a.sql", "postgres/0001_a.sql"])
    assert r.returncode == 0, r.stderr
    assert ".compat = 1" in out.read_text()
    bad = tmp_path / "migrations" / "sqlite" / "0002_b.sql"
    for text, why in (("-- no header\nSELECT 1;\n", "roster-compat"),
                      ("-- roster-compat: 3\nSELECT 1;\n", "not within 1..2")):
        bad.write_text(text)
        r = subprocess.run(["/usr/bin/python3", EMBED, str(out), EMBED,
                            *(str(tmp_path / "migrations" / p) for p in
                              ("sqlite/0001_a.sql", "sqlite/0002_b.sql", "postgres/0001_a.sql"))],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and why in r.stderr and "0002_b.sql" in r.stderr, r.stderr


def test_embed_migrations_file_missing_from_meson_fails_naming_it(tmp_path):
    r, out = embed_in(tmp_path, ["sqlite/0001_a.sql", "postgres/0001_a.sql"],
                      extra=["postgres/0002_forgotten.sql"])
    assert r.returncode != 0
    assert "migrations/postgres/0002_forgotten.sql" in r.stderr, r.stderr
    assert not out.exists()


def test_check_current_schema_every_statement_compiles_0(db):
    r = run_roster("check", "--db", db.url)
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "schema current" in r.stdout and "every statement compiles" in r.stdout, r.stdout


def test_check_schema_drift_statement_does_not_compile_1(db):
    """A schema changed by hand (a column dropped) passes the version check but not
    the statements: `roster check` compiles every one, as serve would on first use."""
    db.execute("ALTER TABLE profiles DROP COLUMN bio")
    r = run_roster("check", "--db", db.url)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "does not compile" in r.stdout, r.stdout
    assert "bio" in r.stderr, r.stderr  # the driver's own message names the column


@pytest.mark.parametrize("backend", ["sqlite"])
def test_issue_14_new_sqlite_database_and_wal_files_0600(make_db, start_servers):
    """Issue 14, item 10: under umask 022, into a directory that already exists,
    `roster migrate` made the database 0644 (and SQLite its -wal and -shm alike):
    password hashes readable by every local user. Now 0600, all three."""
    db = make_db(migrate=False, create=False)
    old = os.umask(0o022)
    try:
        r = run_roster("migrate", "--db", db.url)
        assert r.returncode == 0, r.stderr
        server = start_servers(db, 1, ["--hash-memory", "8192", "--hash-passes", "1"])[0]
        assert server.register({"username": "modes", "email": "modes@example.com",
                                "password": "correct-Horse-battery-9"}).status_code == 201
        modes = {suffix: oct(os.stat(db.path + suffix).st_mode & 0o777)
                 for suffix in ("", "-wal", "-shm")}  # open while serving
    finally:
        os.umask(old)
    assert modes == {"": "0o600", "-wal": "0o600", "-shm": "0o600"}, modes


def test_issue_14_schema_newer_than_binary_says_so_never_minus_one(db):
    """Issue 14, item 6 (its message): a database a newer roster migrated made
    serve and check print "-1 pending migration(s) ... run `roster migrate`"."""
    latest = db.scalar("SELECT max(version) FROM schema_migrations")
    db.execute("INSERT INTO schema_migrations (version, name, applied_at)"
               " VALUES (?, 'from_a_newer_binary', '2026-12-01T00:00:00.000000Z')", latest + 1)
    for args in (("check",), ("migrate", "--check")):
        r = run_roster(*args, "--db", db.url)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "-1 " not in r.stdout and "newer than this binary" in r.stdout, (args, r.stdout)
    r = serve_refusal(db, hint="newer than this binary")
    assert "-1 pending" not in r.stderr, r.stderr


def test_issue_14_db_not_a_database_hint_says_what_is_wrong(tmp_path):
    """Issue 14, item 14: a --db file that is not a database got the advice "create
    it with `roster migrate`". (The permissions hint needs an unprivileged user:
    root reads every file, and the suite runs as root.)"""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not an SQLite file, but it is long enough to look like one\n" * 20)
    for args in (("serve", "--bind", "127.0.0.1:0"), ("check",), ("migrate", "--check")):
        r = run_roster(*args, "--db", f"sqlite:{junk}", timeout=10)
        assert r.returncode != 0, (args, r.stderr)
        assert "not a roster SQLite database" in r.stderr + r.stdout, (args, r.stderr)
        assert "create it with" not in r.stderr + r.stdout, (args, r.stderr)


MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "migrations")


def compat_headers(backend):
    """{version: compat} from the `-- roster-compat: N` line of each shipped migration."""
    out = {}
    d = os.path.join(MIGRATIONS, backend)
    for name in sorted(os.listdir(d)):
        m = re.fullmatch(r"(\d{4})_[a-z0-9_]+\.sql", name)
        if not m:
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            for line in f:
                c = re.fullmatch(r"--\s*roster-compat:\s*(\d+)\s*", line.rstrip("\n"))
                if c:
                    out[int(m.group(1))] = int(c.group(1))
                    break
    return out


def newer_migration(db, version, compat):
    """What `roster migrate` of a newer binary records for migration `version` (its SQL
    adds nothing this test needs): one schema_migrations row, shaped as migrate writes
    them. Checks that shape against the rows the binary under test wrote."""
    cols = ("version", "name", "applied_at", "compat")
    rows = db.query(f"SELECT {', '.join(cols)} FROM schema_migrations ORDER BY version")
    headers = compat_headers("postgres" if db.backend == "postgres" else "sqlite")
    real = {v: c for v, _, _, c in rows if v in headers}
    assert real == headers, (rows, headers)  # migrate records each file's header
    if db.backend == "sqlite":
        names = [r[1] for r in db.query("PRAGMA table_info(schema_migrations)")]
    else:
        names = [r[0] for r in db.query(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'schema_migrations' ORDER BY ordinal_position")]
    assert tuple(names) == cols, names  # nothing else a real migrate would fill
    applied_at = rows[-1][2]
    assert RFC3339.match(applied_at), applied_at  # the format migrate writes, on both
    db.execute("INSERT INTO schema_migrations (version, name, applied_at, compat)"
               " VALUES (?, ?, ?, ?)", version, f"from_a_newer_binary_{version}", applied_at,
               compat)


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_issue_14_rolling_upgrade_old_binary_serves_newer_compatible_schema(db, start_servers):
    """Issue 14, item 6: a running binary reported not-ready as soon as a newer
    `migrate` ran, breaking the rolling upgrade docs/operations.md describes. Now
    each migration records a compatibility version: a binary keeps serving (and
    starting on) a newer schema that says it can, and refuses one that says it
    cannot, with a message saying so in serve, check, migrate --check and /readyz."""
    server = start_servers(db, 1, ["--hash-memory", "8192", "--hash-passes", "1"])[0]
    body = {"username": "before", "email": "before@example.com",
            "password": "correct-Horse-battery-9"}
    assert server.register(body).status_code == 201
    latest = db.scalar("SELECT max(version) FROM schema_migrations")

    newer_migration(db, latest + 1, latest)  # compatible with this binary
    r = server.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["schema_version"] == latest + 1, r.text
    for name in ("during1", "during2"):
        r = server.register({**body, "username": name, "email": f"{name}@example.com"})
        assert r.status_code == 201, r.text
    assert server.post("/users/login/", json={"username": "during1",
                                              "password": body["password"]}).status_code == 200
    second = start_servers(db, 1)[0]  # starts on it too (an instance restarted mid-upgrade)
    assert second.get("/readyz").status_code == 200
    for args in (("check",), ("migrate", "--check"), ("migrate",)):
        r = run_roster(*args, "--db", db.url)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert "compatible" in r.stdout and "-1" not in r.stdout, (args, r.stdout)

    newer_migration(db, latest + 2, latest + 2)  # only binaries that know it may serve it
    for s in (server, second):
        r = s.get("/readyz")
        assert r.status_code == 503, r.text
        assert r.headers.get("Retry-After"), r.headers
    for args in (("check",), ("migrate", "--check"), ("migrate",)):
        r = run_roster(*args, "--db", db.url)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        out = r.stdout + r.stderr
        assert "incompatible" in out and f"version {latest + 2}" in out, (args, out)
    r = serve_refusal(db, hint="incompatible")
    assert "-1 pending" not in r.stderr, r.stderr
    assert db.scalar("SELECT max(version) FROM schema_migrations") == latest + 2


# ------------------------------------------------ issue 14, items 4 and 11: migration 0004

def _legacy_database(db):
    """`db` at schema version 3 (migrations 0001-0003, applied as an older roster did), with
    accounts as that roster stored them: two look-alike usernames (Latin "admin", Cyrillic
    "аdmin"), and an email key with a Unicode domain, lowercased code point by code point."""
    import argon2  # Debian's python3-argon2 (scripts/install-deps)

    from conftest import PASSWORD

    here = os.path.dirname(os.path.abspath(__file__))
    mdir = os.path.join(here, "..", "..", "migrations", db.backend)
    files = sorted(f for f in os.listdir(mdir) if f[:4].isdigit() and int(f[:4]) <= 3)
    assert [f[:4] for f in files] == ["0001", "0002", "0003"], files
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, hash_len=32)
    when = "2026-01-01T00:00:00.000000Z"
    ts = "timestamptz" if db.backend == "postgres" else "TEXT"
    users = [("admin", "admin", "admin@example.com", "admin@example.com"),
             ("\u0430dmin", "\u0430dmin", "cyr@example.com", "cyr@example.com"),
             ("victim", "victim", "victim@B\u00fccher.de", "victim@b\u00fccher.de")]
    conn = db.connect()
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                    f" name text NOT NULL, applied_at {ts} NOT NULL)")
        for f in files:
            with open(os.path.join(mdir, f)) as fh:
                sql = fh.read()
            if db.backend == "sqlite":
                conn.executescript(sql)
            else:
                cur.execute(sql)
            cur.execute(f"INSERT INTO schema_migrations VALUES ({int(f[:4])}, '{f[5:-4]}',"
                        f" '{when}')")
        for i, (name, key, email, email_key) in enumerate(users, 1):
            cols = "username, username_key, email, email_key, password_hash, date_joined"
            values = [name, key, email, email_key, hasher.hash(PASSWORD), when]
            if db.backend == "sqlite":
                cur.execute(f"INSERT INTO users (id, {cols}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [i, *values])
                cur.execute("INSERT INTO profiles (user_id, role) VALUES (?, 'explorer')", [i])
            else:
                cur.execute(f"INSERT INTO users ({cols}) VALUES (%s, %s, %s, %s, %s, %s)"
                            " RETURNING id", values)
                uid = cur.fetchone()[0]
                cur.execute("INSERT INTO profiles (user_id, role) VALUES (%s, 'explorer')",
                            [uid])
        if db.backend == "sqlite":
            conn.commit()
    finally:
        conn.close()


def test_issue_14_migrate_existing_accounts_keep_logins_lookalikes_refused(
        make_db, start_servers):
    from conftest import MSG_EMAIL_TAKEN, MSG_USERNAME_TAKEN, assert_error, login, user_body

    db = make_db(migrate=False)
    if db.backend == "sqlite":
        sqlite3.connect(db.path).close()
    _legacy_database(db)
    serve_refusal(db)  # version 3: migrations pending
    r = run_roster("migrate", "--db", db.url)
    assert r.returncode == 0, r.stderr
    assert "keeps no confusable key" in r.stderr, r.stderr  # the legacy look-alike, named
    rows = {name: (sk, cased, key) for name, sk, cased, key in db.query(
        "SELECT username, username_skeleton, username_skeleton_cased, email_key FROM users")}
    assert rows["admin"][0] and rows["admin"][1], rows
    assert rows["\u0430dmin"][:2] == (None, None), rows  # the younger one of the pair
    assert rows["victim"][2] == "victim@xn--bcher-kva.de", rows

    server = start_servers(db)[0]
    # Every existing account still logs in, the legacy look-alikes both by username.
    login(server, username="admin")
    login(server, username="\u0430dmin")
    login(server, email="victim@b\u00fccher.de")
    login(server, email="victim@xn--bcher-kva.de")
    # A new look-alike of either is taken; so is the other spelling of the domain.
    for name in ("\u0251dmin", "\u0391DMIN", "adrnin"):
        r = server.register(user_body(name, email=f"n{len(name)}{ord(name[0])}@example.com"))
        assert_error(r, 400, "username_taken", MSG_USERNAME_TAKEN)
    r = server.register(user_body("victim2", email="victim@xn--bcher-kva.de"))
    assert_error(r, 400, "email_taken", MSG_EMAIL_TAKEN)
    assert db.scalar("SELECT COUNT(*) FROM users") == 3
