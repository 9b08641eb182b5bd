"""
A database that answers reads but refuses writes, or is damaged (issue 14, item
5): `/readyz` kept saying ready while every write failed with 503, and the
rate-limit counters failed open, so login became unlimited guessing with a yes/no
answer (right password 503, wrong one 400). In each case below: `/readyz` is 503,
and wrong passwords end in 429 or 503, never 400, as does the right one.

- a read-only SQLite file, served by an unprivileged user (root ignores modes);
- a full disk: a small tmpfs, when the test may mount one (else it is skipped,
  saying so: a skip is not a pass);
- a damaged page in a copy of a migrated database: named in the log once;
- PostgreSQL with `default_transaction_read_only = on` for the database.
"""

import errno
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time

import pytest

from conftest import (FAST_HASH, LOGIN, PASSWORD, SqliteDb, assert_error, roster_bin, roster_env,
                      run_roster, user_body)
from pgcluster import ensure_user

LIMITS = ("--rate-limits", "on", "--limit-login-failures", "3", "--limit-login-per-ip", "1000")
WRONG = "not-the-Password-42"


PROBE_EVERY_S = 1.0  # /readyz probes writes at most once a second per process (api/ops.c)


def assert_not_ready(server):
    time.sleep(PROBE_EVERY_S + 0.1)  # past the answer of the last probe, made while writable
    r = server.get("/readyz")
    assert_error(r, 503, "unavailable")
    assert r.headers.get("Retry-After", "").isdigit(), r.headers


def assert_no_password_oracle(server, name="victim", tries=8):
    """Wrong passwords past the failure limit, then the right one: 429 or 503 each
    time, never 400 (a verdict) nor 200. Returns the statuses."""
    got = []
    for password in [WRONG + str(i) for i in range(tries)] + [PASSWORD]:
        r = server.post(LOGIN, json={"username": name, "password": password})
        got.append(r.status_code)
        assert r.status_code in (429, 503), (password == PASSWORD, r.status_code, r.text)
        assert_error(r, r.status_code, "rate_limited" if r.status_code == 429 else "unavailable")
        assert r.headers.get("Retry-After", "").isdigit(), r.headers
    return got


def unprivileged():
    """The passwd entry to run roster as: the throwaway cluster's owner when we are root."""
    if os.geteuid() != 0:
        import pwd
        return pwd.getpwuid(os.geteuid())
    return ensure_user()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_issue_14_read_only_sqlite_file_not_ready_no_password_oracle(backend, start_servers):
    user = unprivileged()
    d = tempfile.mkdtemp(prefix="roster-ro-")
    try:
        os.chown(d, user.pw_uid, user.pw_gid)
        os.chmod(d, 0o755)
        db = SqliteDb(os.path.join(d, "roster.db"))
        r = subprocess.run([roster_bin(), "migrate", "--db", db.url], capture_output=True,
                           text=True, timeout=30, env=roster_env(), user=user.pw_uid,
                           group=user.pw_gid, extra_groups=[])
        assert r.returncode == 0, r.stderr
        s = start_servers(db, 1, args=(*FAST_HASH, *LIMITS), user=user)[0]
        assert s.register(user_body("victim")).status_code == 201
        assert s.get("/readyz").status_code == 200
        s.stop_checked()

        os.chmod(db.path, 0o444)  # the operator's mistake, or a read-only mount
        s = start_servers(db, 1, args=(*FAST_HASH, *LIMITS), user=user)[0]
        assert_not_ready(s)
        got = assert_no_password_oracle(s)
        assert s.register(user_body("newcomer")).status_code == 503
        s.stop_checked()
        print(f"read-only file: /readyz 503; logins {got}")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_issue_14_full_disk_not_ready_no_password_oracle(backend, start_servers, tmp_path):
    mnt = tempfile.mkdtemp(prefix="roster-full-")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", mnt],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        os.rmdir(mnt)
        pytest.skip(f"cannot mount a tmpfs here ({(r.stderr or r.stdout).strip()}): the "
                    "full-disk case was NOT run")
    servers, problems = [], []
    try:
        db = SqliteDb(os.path.join(mnt, "roster.db")).migrate()
        db.dir = str(tmp_path)  # server logs off the full disk
        servers = start_servers(db, 1, args=(*FAST_HASH, *LIMITS))
        s = servers[0]
        assert s.register(user_body("victim")).status_code == 201
        assert s.get("/readyz").status_code == 200
        with open(os.path.join(mnt, "filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        assert_not_ready(s)
        got = assert_no_password_oracle(s)
        print(f"full disk: /readyz 503; logins {got}")
    finally:
        for s in servers:
            problems += s.stop()  # before the unmount: the fixture's stop comes too late
        r = subprocess.run(["umount", mnt], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", mnt], capture_output=True, timeout=30)
        os.rmdir(mnt)
    assert not problems, problems


@pytest.mark.parametrize("backend", ["sqlite"])
def test_issue_14_damaged_page_not_ready_named_in_log_once(backend, start_servers, tmp_path):
    (tmp_path / "orig").mkdir()
    (tmp_path / "copy").mkdir()
    orig = SqliteDb(str(tmp_path / "orig" / "roster.db")).migrate()
    s = start_servers(orig, 1, args=FAST_HASH)[0]
    assert s.register(user_body("victim")).status_code == 201
    s.stop_checked()
    conn = sqlite3.connect(orig.path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'users'").fetchone()
    (size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.close()
    copy = SqliteDb(str(tmp_path / "copy" / "roster.db"))
    shutil.copyfile(orig.path, copy.path)
    with open(copy.path, "r+b") as f:  # the b-tree page of users: not a page type at all
        f.seek((root - 1) * size)
        f.write(b"\xff" * 64)

    s = start_servers(copy, 1, args=(*FAST_HASH, *LIMITS))[0]
    got = assert_no_password_oracle(s)
    assert_not_ready(s)
    assert_not_ready(s)
    assert s.register(user_body("newcomer")).status_code == 503
    s.stop_checked()
    r = run_roster("check", "--db", copy.url)  # reads every page: says so before serving
    assert r.returncode == 1 and "damaged" in r.stdout, (r.stdout, r.stderr)
    assert run_roster("check", "--db", orig.url).returncode == 0
    damaged = [rec for rec in s.log_records() if rec.get("msg") == "database damaged"]
    assert len(damaged) == 1, damaged
    assert "malformed" in damaged[0].get("detail", ""), damaged
    assert "docs/operations.md" in damaged[0].get("action", ""), damaged
    print(f"damaged page: /readyz 503; logins {got}; logged once: {damaged[0]}")


@pytest.mark.parametrize("backend", ["postgres"])
def test_issue_14_postgres_read_only_database_not_ready_no_password_oracle(make_db,
                                                                          start_servers):
    db = make_db()
    s = start_servers(db, 1, args=(*FAST_HASH, *LIMITS))[0]
    assert s.register(user_body("victim")).status_code == 201
    s.stop_checked()
    db.cluster.admin(f'ALTER DATABASE "{db.name}" SET default_transaction_read_only = on')
    s = start_servers(db, 1, args=(*FAST_HASH, *LIMITS))[0]
    assert_not_ready(s)
    got = assert_no_password_oracle(s)
    assert s.register(user_body("newcomer")).status_code == 503
    print(f"read-only PostgreSQL: /readyz 503; logins {got}")
