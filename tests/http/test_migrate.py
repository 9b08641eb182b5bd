"""
The command line: `serve` refuses a database with pending migrations and names
the fix, `migrate` and `migrate --check`, and flag handling.
"""

import sqlite3
import subprocess

import pytest

from conftest import assert_healthy, run_roster


def serve_refusal(db):
    """Runs serve on `db`; it must exit non-zero within a few seconds naming `roster migrate`."""
    try:
        r = run_roster("serve", "--db", db.url, "--bind", "127.0.0.1:0", timeout=5)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed it
        pytest.fail(f"serve kept running on a database with pending migrations: {e.stderr}")
    assert r.returncode != 0, r.stderr
    assert "roster migrate" in r.stderr, r.stderr


def test_serve_pending_migrations_refuses_then_migrate_fixes(make_db, start_servers):
    db = make_db(migrate=False)
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
    db = make_db(migrate=False)
    serve_refusal(db)
    assert run_roster("migrate", "--check", "--db", db.url).returncode == 1


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
                                  ["--bind", "nonsense"], ["--hash-workers", "0"]],
                         ids=["threads-word", "threads-negative", "bind", "hash-workers-0"])
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

