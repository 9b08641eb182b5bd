"""
`roster import django` (issue 13): source databases made by Django's own code
(tests/django_seed/seed.py, the seed's models) on SQLite and on PostgreSQL, once
per session each, imported into both roster backends. The SQLite source also
holds a duplicate group made by a real race: the seed's check-then-insert
register view under gunicorn with four workers. The PostgreSQL source's profile
table lacks can_invite_teachers (the seed's missing migration).
"""

import concurrent.futures
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import (FAST_HASH, LOGIN, ME, T, assert_error, assert_me, auth, cli_ok,
                      cli_user, roster_bin, run_roster, summary)

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "..", "django_seed", "seed.py")
GUNICORN = shutil.which("gunicorn") or "/usr/bin/gunicorn"
PW = "Imported-pass-7"  # every user's password, with its own hasher

HASHERS = ["pbkdf2_sha256", "pbkdf2_sha1", "argon2", "bcrypt_sha256", "bcrypt"]


def u(name, email=None, **kw):
    d = {"username": name, "email": f"{name.lower()}@example.com" if email is None else email,
         "password": PW}
    d.update(kw)
    return d


# Who must be where after the import (most-recent-login policy).
SPEC = {"users": [
    *[u(f"h_{h}", hasher=h, token=True, first_name="Hash", last_name=h,
        last_login="2024-02-01T08:00:00") for h in HASHERS],
    # several accounts with one email, the way the seed's view makes them
    u("dupA", email="dupe@example.com", last_login="2024-01-01T10:00:00", token=True),
    u("dupB", email="dupe@example.com", last_login="2024-06-01T10:00:00", token=True),
    u("dupC", email="dupe@example.com"),
    # case variants of username and email, equal last_login: the lowest id wins
    u("Carla", email="Carla@Example.com", last_login="2024-03-03T03:03:03"),
    u("carla", email="carla@example.com", last_login="2024-03-03T03:03:03", token=True),
    u("noemail1", email=""), u("noemail2", email="  "),
    u("noprofile", profile=False),
    u("sleeper", is_active=False, token=True),
    u("root", is_superuser=True, is_staff=True, profile={"role": "teacher"}),
    u("staffer", is_staff=True),
    u("locked", password=None), u("md5user", hasher="unsalted_md5"),
    u("Jürgen", email="juergen@example.com",
      profile={"role": "teacher", "bio": "Grüße, 先生! 🎓", "can_invite_teachers": True}),
    u("carol smith", email="carol@example.com", profile={"role": "admin", "bio": "boss"}),
], "invitations": [
    {"email": "newteacher@example.com", "token": "p" * 40, "status": "pending",
     "invited_by": "Jürgen", "created_at": "2024-01-01T00:00:00", "expires_at": "2099-01-01T00:00:00"},
    {"email": "carla@example.com", "token": "a" * 40, "status": "accepted", "invited_by": "Jürgen",
     "accepted_by": "carla", "created_at": "2024-01-01T00:00:00",
     "expires_at": "2024-01-08T00:00:00", "accepted_at": "2024-01-02T00:00:00"},
    {"email": "late@example.com", "token": "e" * 40, "status": "expired", "invited_by": "Jürgen",
     "created_at": "2023-01-01T00:00:00", "expires_at": "2023-01-08T00:00:00"},
]}
MUST_RESET = {"locked", "md5user"}
LOSERS = {"dupA": "dupB", "dupC": "dupB", "carla": "Carla"}


def seed_env(url, no_can_invite=False):
    env = dict(os.environ, SEED_DB=url)
    env["SEED_NO_CAN_INVITE"] = "1" if no_can_invite else "0"
    return env


def seed_make(url, spec, tmp, no_can_invite=False):
    path = os.path.join(tmp, f"spec{time.monotonic_ns()}.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    r = subprocess.run(["/usr/bin/python3", SEED, "make", url, path], capture_output=True,
                       text=True, timeout=120, env=seed_env(url, no_can_invite))
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def race(url, tmp):
    """Eight concurrent registrations with one email against the seed's view under gunicorn
    (4 workers): the check-then-insert lets several through. Returns their usernames."""
    port = free_port()
    log = open(os.path.join(tmp, "gunicorn.log"), "w")
    g = subprocess.Popen([GUNICORN, "-w", "4", "-b", f"127.0.0.1:{port}", "--timeout", "30",
                          "--chdir", os.path.dirname(SEED), "seed:app"],
                         env=seed_env(url), stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and g.poll() is None, "gunicorn did not start"
                time.sleep(0.1)
        time.sleep(1.0)  # every worker booted

        def one(i):  # urllib: gunicorn's answers are not roster's, so not OpenAPI-checked
            req = urllib.request.Request(
                f"http://127.0.0.1:{port}/register/", method="POST",
                data=json.dumps({"username": f"racer{i}", "email": "race@example.com"}).encode(),
                headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=T) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            codes = list(ex.map(one, range(8)))
        made = [f"racer{i}" for i, c in enumerate(codes) if c == 201]
        assert len(made) >= 2, codes
        return made
    finally:
        g.terminate()
        g.wait(timeout=15)
        log.close()


class Source:
    def __init__(self, kind, url, made, racers, no_can_invite, tmp):
        self.kind, self.url, self.made, self.racers = kind, url, made, racers
        self.no_can_invite, self.tmp = no_can_invite, tmp

    @property
    def ids(self):
        return self.made["users"]


@pytest.fixture(scope="session")
def sources(tmp_path_factory, request):
    built = {}

    def get(kind):
        if kind in built:
            return built[kind]
        tmp = str(tmp_path_factory.mktemp(f"django_{kind}"))
        if kind == "sqlite":
            url = f"sqlite:{tmp}/django.db"
            seed_make(url, {"users": []}, tmp)  # the schema, for gunicorn
            racers = race(url, tmp)
            made = seed_make(url, SPEC, tmp)
            src = Source(kind, url, made, racers, False, tmp)
        else:
            cluster = request.getfixturevalue("pg_cluster")
            name = f"django_src_{os.getpid()}_{time.monotonic_ns()}"
            cluster.create_database(name)
            url = cluster.url(name)
            made = seed_make(url, SPEC, tmp, no_can_invite=True)
            src = Source(kind, url, made, [], True, tmp)
        built[kind] = src
        return src
    return get


@pytest.fixture(params=["sqlite", "postgres"], ids=["src-sqlite", "src-postgres"])
def source(request, sources):
    return sources(request.param)


def do_import(db, src, *args, rc=0):
    r = run_roster("import", "django", "--db", db.url, "--from", src.url, *args, timeout=120)
    assert r.returncode == rc, f"exit {r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def dump(db):
    """Every row a run could change, in a stable order (token rows without their times)."""
    return {
        "users": db.query("SELECT id, username, username_key, email, email_key, password_hash,"
                          " password_must_reset, is_active, is_admin, date_joined, last_login,"
                          " first_name, last_name FROM users ORDER BY id"),
        "profiles": db.query("SELECT * FROM profiles ORDER BY user_id"),
        "tokens": db.query("SELECT user_id, token_hash FROM auth_tokens ORDER BY token_hash"),
        "invitations": db.query("SELECT * FROM teacher_invitations ORDER BY id"),
        "import_rows": db.query("SELECT tbl, source_id, digest, outcome FROM import_rows"
                                " ORDER BY tbl, source_id"),
    }


def check_report(src, path):
    with open(path) as f:
        rep = json.load(f)
    users = [e for e in rep["rows"] if e["table"] == "auth_user"]
    ids = [e["id"] for e in users]
    # the race's accounts: its 201s, and any a 500 left behind half-created
    racers = [e for e in users if e["username"].startswith("racer")]
    assert len(racers) >= len(src.racers)
    assert len(ids) == len(set(ids)) == len(SPEC["users"]) + len(racers), \
        "one entry per source row"
    assert set(src.ids.values()) <= set(ids), ids
    by_name = {e["username"]: e for e in users}
    for name, winner in LOSERS.items():
        e = by_name[name]
        assert e["outcome"] == "merged" and e["winner"] == src.ids[winner], e
    for e in users:
        assert e["outcome"] in ("imported", "merged"), e  # nothing in the seed is refused
    assert "email_blank" in by_name["noemail1"]["notes"]
    assert "email_blank" in by_name["noemail2"]["notes"]
    assert "profile_missing" in by_name["noprofile"]["notes"]
    assert "staff_not_admin" in by_name["staffer"]["notes"]
    assert "superuser_admin" in by_name["root"]["notes"]
    assert "role_admin_mapped" in by_name["carol smith"]["notes"]
    assert "username_nonconforming" in by_name["carol smith"]["notes"]
    assert "password_unusable" in by_name["locked"]["notes"]
    assert "password_hasher_unsupported" in by_name["md5user"]["notes"]
    tokens = {e["user_id"]: e["outcome"] for e in rep["rows"] if e["table"] == "authtoken_token"}
    assert tokens[src.ids["dupA"]] == "dropped" and tokens[src.ids["dupB"]] == "imported"
    assert tokens[src.ids["carla"]] == "dropped"
    invs = [e for e in rep["rows"] if e["table"] == "users_teacherinvitation"]
    assert sorted(e["status"] for e in invs) == ["accepted", "expired", "pending"]
    assert all(e["outcome"] == "imported" for e in invs), invs
    groups = {g["winner"]: sorted(g["members"]) for g in rep["duplicate_groups"]}
    assert groups[src.ids["dupB"]] == sorted(src.ids[n] for n in ("dupA", "dupB", "dupC"))
    assert groups[src.ids["Carla"]] == sorted(src.ids[n] for n in ("Carla", "carla"))
    assert any("can_invite_teachers" in n for n in rep["notes"]) == src.no_can_invite
    return rep


def test_import_logins_tokens_profiles_groups(source, make_db, start_servers, tmp_path):
    db = make_db()
    report = str(tmp_path / "report.json")
    r = do_import(db, source, "--report", report)
    assert "duplicate groups:" in r.stdout and "winner #" in r.stdout, r.stdout
    for line in r.stdout.splitlines():
        summary(f"import {source.kind} -> {db.backend}: {line}")
    rep = check_report(source, report)
    db.assert_invariants()
    ids = source.ids
    # ids kept; losers absent; the race's group has one account, the earliest
    assert db.scalar("SELECT COUNT(*) FROM users WHERE id IN (%s)"
                     % ",".join(str(ids[n]) for n in LOSERS)) == 0
    racers = {e["username"]: e for e in rep["rows"]
              if e["table"] == "auth_user" and e["username"].startswith("racer")}
    if source.racers:
        kept = [n for n in racers if racers[n]["outcome"] == "imported"]
        assert len(kept) == 1, racers
        assert all(racers[n]["winner"] == racers[kept[0]]["id"] for n in racers if n != kept[0])
        assert db.scalar("SELECT COUNT(*) FROM users WHERE email_key = ?", "race@example.com") == 1
    srv = start_servers(db, args=(*FAST_HASH, "--rate-limits", "off"))[0]
    # every imported, active user with a usable password logs in, and is rehashed
    for spec in SPEC["users"]:
        name = spec["username"]
        r = srv.post(LOGIN, json={"username": name, "password": PW})
        if name in LOSERS and name.lower() == LOSERS[name].lower():
            # a case variant: the name is the winner's now, and logs in as the winner
            me = assert_me(srv.get(ME, headers=auth(r.json()["token"])), LOSERS[name])
            assert me["id"] == ids[LOSERS[name]]
            continue
        if name in LOSERS or name in MUST_RESET or spec.get("is_active") is False:
            assert_error(r, 400, "invalid_credentials", "Invalid credentials.")
            continue
        assert r.status_code == 200, (name, r.text)
        stored = db.scalar("SELECT password_hash FROM users WHERE id = ?", ids[name])
        assert stored.startswith("$argon2id$"), (name, stored)
    # a must-reset account: flagged, and a new password (here the admin CLI's) ends that
    assert db.scalar("SELECT password_must_reset FROM users WHERE id = ?", ids["md5user"]) == 1
    cli_ok(db, "user", "set-password", "md5user", "--password-stdin",
           stdin="New-md5user-pass-1\n")
    assert db.scalar("SELECT password_must_reset FROM users WHERE id = ?", ids["md5user"]) == 0
    r = srv.post(LOGIN, json={"username": "md5user", "password": "New-md5user-pass-1"})
    assert r.status_code == 200, r.text
    # the winners' DRF tokens authenticate as their users; the losers' do not
    for name, key in source.made["tokens"].items():
        r = srv.get(ME, headers=auth(key))
        if name in LOSERS or name == "sleeper":
            assert_error(r, 401, "not_authenticated")
        else:
            me = assert_me(r, name)
            assert me["id"] == ids[name]
    # profiles and names
    tok = srv.post(LOGIN, json={"username": "Jürgen", "password": PW}).json()["token"]
    me = assert_me(srv.get(ME, headers=auth(tok)), "Jürgen", "juergen@example.com", "teacher",
                   "Grüße, 先生! 🎓", can_invite=not source.no_can_invite)
    tok = srv.post(LOGIN, json={"username": "h_bcrypt", "password": PW}).json()["token"]
    me = assert_me(srv.get(ME, headers=auth(tok)))
    assert (me["first_name"], me["last_name"]) == ("Hash", "bcrypt")
    tok = srv.post(LOGIN, json={"username": "noemail1", "password": PW}).json()["token"]
    assert assert_me(srv.get(ME, headers=auth(tok)))["email"] == ""
    for name, admin in (("root", 1), ("carol smith", 1), ("staffer", 0), ("h_argon2", 0)):
        assert db.scalar("SELECT is_admin FROM users WHERE id = ?", ids[name]) == admin, name
    assert db.scalar("SELECT role FROM profiles WHERE user_id = ?", ids["noprofile"]) == "explorer"
    assert db.scalar("SELECT role FROM profiles WHERE user_id = ?", ids["carol smith"]) == "teacher"
    assert db.scalar("SELECT is_active FROM users WHERE id = ?", ids["sleeper"]) == 0
    # the pending invitation works with its Django link token; the others are history
    inv = db.query("SELECT status, inviter_id FROM teacher_invitations ORDER BY id")
    assert inv == [("pending", ids["Jürgen"]), ("accepted", ids["Jürgen"]),
                   ("expired", ids["Jürgen"])], inv
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations WHERE token_hash LIKE 'ppp%'") == 0
    r = srv.post("/users/register/", json={"username": "newteacher",
                                           "email": "newteacher@example.com",
                                           "password": "correct-Horse-battery-9",
                                           "invitation": "p" * 40})
    assert r.status_code == 201 and r.json()["user"]["role"] == "teacher", r.text
    r = srv.post("/users/register/", json={"username": "late", "email": "late@example.com",
                                           "password": "correct-Horse-battery-9",
                                           "invitation": "e" * 40})
    assert_error(r, 400, "invitation_expired")
    # a new registration gets an id past the highest imported one
    r = srv.post("/users/register/", json={"username": "newbie", "email": "newbie@example.com",
                                           "password": "correct-Horse-battery-9"})
    assert r.status_code == 201, r.text
    assert r.json()["user"]["id"] > max(ids.values())
    db.assert_invariants()
    srv.stop_checked()


def test_import_dry_run_writes_nothing_second_run_changes_nothing(source, make_db, tmp_path):
    db = make_db()
    before = dump(db)
    files = {}
    if db.backend == "sqlite":
        with open(db.path, "rb") as f:
            files["main"] = f.read()
    r = do_import(db, source, "--dry-run", "--report", str(tmp_path / "dry.json"))
    assert "dry run: nothing written" in r.stdout
    assert dump(db) == before
    if db.backend == "sqlite":
        with open(db.path, "rb") as f:
            assert f.read() == files["main"], "--dry-run changed the database file"
    first = do_import(db, source, "--report", str(tmp_path / "one.json"))
    after = dump(db)
    assert after != before
    second = do_import(db, source, "--report", str(tmp_path / "two.json"))
    assert dump(db) == after, "a second run over an unchanged source changed the database"
    n = len(after["users"])
    assert f"(created 0, updated 0, unchanged {n})" in second.stdout, second.stdout
    with open(tmp_path / "dry.json") as a, open(tmp_path / "one.json") as b:
        assert [e["outcome"] for e in json.load(a)["rows"]] == \
            [e["outcome"] for e in json.load(b)["rows"]]
    assert first.stdout.replace("created", "") != ""
    # the audit trail: one `import` event per writing run (none for the dry run), with counts
    events = db.query("SELECT actor, detail FROM audit_events WHERE event = 'import' ORDER BY id")
    assert len(events) == 2, events
    for actor, detail in events:
        assert actor.startswith("cli:"), actor
        d = json.loads(detail) if isinstance(detail, str) else detail
        assert set(d) == {"imported", "merged", "refused", "groups"}, d
        assert d["imported"] + d["merged"] + d["refused"] == \
            len([e for e in json.load(open(tmp_path / "one.json"))["rows"]
                 if e["table"] == "auth_user"]), d


def test_import_after_django_changes_applies_them(sources, make_db, start_servers, tmp_path):
    """A fresh SQLite source (changed here), into each roster backend."""
    tmp = str(tmp_path)
    url = f"sqlite:{tmp}/django.db"
    made = seed_make(url, {"users": [u("anna", token=True), u("ben"), u("cleo")]}, tmp)
    src = Source("sqlite", url, made, [], False, tmp)
    db = make_db()
    do_import(db, src)
    before = dump(db)
    srv = start_servers(db, args=(*FAST_HASH, "--rate-limits", "off"))[0]
    r = srv.post(LOGIN, json={"username": "cleo", "password": PW})  # rehashed in roster
    assert r.status_code == 200
    srv.stop_checked()
    rehashed = db.scalar("SELECT password_hash FROM users WHERE username = 'cleo'")
    # in Django: anna changes her email and first name, ben his password, dora is new
    seed_make(url, {"users": [
        {"username": "anna", "update": True, "email": "anna.new@example.com", "first_name": "A"},
        {"username": "ben", "update": True, "password": "Ben-new-pass-8", "hasher": "bcrypt"},
        u("dora")]}, tmp)
    r = do_import(db, src)
    assert "(created 1, updated 2, unchanged 1)" in r.stdout, r.stdout
    after = dump(db)
    row = {x[1]: x for x in after["users"]}
    assert row["anna"][3] == "anna.new@example.com" and row["anna"][11] == "A"
    assert row["ben"][5].startswith("bcrypt$$2b$")
    assert row["cleo"][5] == rehashed, "an unchanged account keeps its roster rehash"
    assert row["dora"][0] == made["users"]["cleo"] + 1
    assert {x[1] for x in before["users"]} | {"dora"} == set(row)
    srv = start_servers(db, args=(*FAST_HASH, "--rate-limits", "off"))[0]
    assert srv.post(LOGIN, json={"username": "ben", "password": "Ben-new-pass-8"}).status_code == 200
    assert srv.post(LOGIN, json={"username": "anna.new@example.com",
                                 "password": PW}).status_code == 200
    assert assert_me(srv.get(ME, headers=auth(made["tokens"]["anna"])), "anna")
    srv.stop_checked()
    db.assert_invariants()


def test_import_target_with_own_accounts_refused_nothing_written(source, make_db):
    db = make_db()
    cli_user(db, "native")  # id 1, which the source uses too
    before = dump(db)
    r = do_import(db, source, rc=4)
    assert "accounts of its own" in r.stderr and "nothing was written" in r.stderr, r.stderr
    assert dump(db) == before


def test_import_on_duplicate_fail_writes_nothing_exit_4(source, make_db):
    db = make_db()
    before = dump(db)
    r = do_import(db, source, "--on-duplicate", "fail", rc=4)
    assert "duplicate groups" in r.stdout and "nothing was written" in r.stderr
    assert dump(db) == before


def test_import_on_duplicate_oldest_then_back(source, make_db):
    db = make_db()
    do_import(db, source, "--on-duplicate", "oldest")
    ids = source.ids
    assert db.scalar("SELECT COUNT(*) FROM users WHERE id = ?", ids["dupA"]) == 1
    assert db.scalar("SELECT COUNT(*) FROM users WHERE id = ?", ids["dupB"]) == 0
    do_import(db, source)  # most-recent-login: dupB replaces dupA
    assert db.scalar("SELECT COUNT(*) FROM users WHERE id = ?", ids["dupA"]) == 0
    assert db.scalar("SELECT COUNT(*) FROM users WHERE id = ?", ids["dupB"]) == 1
    db.assert_invariants()


@pytest.mark.parametrize("args,msg", [
    ((), "--from URL is required"),
    (("--from", "sqlite:/nonexistent/x.db"), "cannot open the Django SQLite database"),
    (("--from", "mysql://x"), "--from takes"),
    (("--from", "sqlite:/x", "--on-duplicate", "newest"), "--on-duplicate takes"),
    (("--from", "sqlite:/x", "--profile-table", "a;b"), "plain table names"),
])
def test_import_bad_options_clear_message(make_db, args, msg):
    db = make_db()
    r = run_roster("import", "django", "--db", db.url, *args)
    assert r.returncode in (2, 5) and msg in r.stderr, (r.returncode, r.stderr)


@pytest.mark.scenario
def test_import_kill9_midway_rerun_same_result(make_db, tmp_path):
    tmp = str(tmp_path)
    url = f"sqlite:{tmp}/big.db"
    made = seed_make(url, {"users": [u("first", token=True)],
                           "bulk": {"prefix": "bulk", "n": 3000, "password": PW}}, tmp)
    src = Source("sqlite", url, made, [], False, tmp)
    whole, cut = make_db(), make_db()
    do_import(whole, src)
    p = subprocess.Popen([roster_bin(), "import", "django", "--db", cut.url,
                          "--from", url, "--batch", "10"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        n = cut.scalar("SELECT COUNT(*) FROM import_rows")
        if n >= 200 or p.poll() is not None or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert p.poll() is None, "the import ended before it could be killed"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=10)
    partial = cut.count_users()
    assert 0 < partial < 3001, partial
    do_import(cut, src)
    a, b = dump(whole), dump(cut)
    for k in ("users", "profiles", "tokens", "invitations"):
        assert a[k] == b[k], k
    assert [r[:2] + r[3:] for r in a["import_rows"]] == [r[:2] + r[3:] for r in b["import_rows"]]
    cut.assert_invariants()


def test_import_key_held_by_roster_account_refused_reported(source, make_db, tmp_path):
    """A roster account of its own (an id past the source's) holding a source username."""
    db = make_db()
    top = max(source.ids.values()) + len(source.racers) + 5
    for n in range(top - 1):
        cli_user(db, f"filler{n}", *FAST_HASH)
    native = cli_user(db, "H_Bcrypt", *FAST_HASH, email="someone@example.com")
    assert native["id"] == top
    db.execute("DELETE FROM profiles WHERE user_id IN"
               " (SELECT id FROM users WHERE username LIKE 'filler%')")  # no FK enforcement here
    db.execute("DELETE FROM users WHERE username LIKE 'filler%'")
    report = str(tmp_path / "r.json")
    r = do_import(db, source, "--report", report)
    assert "username_held_by_roster_account" in r.stdout, r.stdout
    with open(report) as f:
        e = [x for x in json.load(f)["rows"]
             if x["table"] == "auth_user" and x["username"] == "h_bcrypt"][0]
    assert e["outcome"] == "refused" and e["roster_account"] == top, e
    assert db.scalar("SELECT COUNT(*) FROM users WHERE id = ?", source.ids["h_bcrypt"]) == 0
    assert db.scalar("SELECT username FROM users WHERE id = ?", top) == "H_Bcrypt"
    db.assert_invariants()
