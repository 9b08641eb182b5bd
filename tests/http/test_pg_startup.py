"""
PostgreSQL down from the start of a server's life: `roster serve` reads the
schema with a connection of its own and closes it, so stopping the cluster
right after "listening" leaves every I/O and hashing thread with a store that
has never connected (issue 9: such a thread once retried a full connect on
every request). Requests get 503 with Retry-After, connection attempts back
off (roster_db_connect_attempts_total grows far slower than the requests), and
once the database has been up for one full backoff step (2 s) the first
request succeeds, without a restart.

And PostgreSQL already down when `roster serve` starts: it starts anyway
(logging that it serves 503 until the database answers; /readyz stays 503
until then), with the same 503s, the same backoff, and the first request after
the database is up succeeds. A database that does not exist is still refused
at start (test_migrate.py): waiting would not make it appear.
"""

import time

import pytest

from conftest import FAST_HASH, assert_created, assert_error, user_body
from test_faults import metric

DOWN_FOR = 3.0  # seconds of requests while the database is down
BACKOFF_MAX = 2.0  # the store's reconnect backoff cap (src/store/postgres.c)


# The mail delivery thread has a connection of its own too: polling once an hour it looks at the
# outbox at start and then not during the outage, so the counts below are the request workers'.
SERVE_ARGS = ["--threads", "2", "--hash-workers", "2", "--db-workers", "2", "--mail-poll", "1h",
              *FAST_HASH]


def assert_503_retry_after(resp):
    assert_error(resp, 503, "unavailable")
    assert resp.headers.get("Retry-After", "").strip().isdigit(), resp.headers


def requests_while_down(server, prefix, before=None):
    """DOWN_FOR seconds of registrations and /readyz, each 503 with Retry-After.
    Returns (requests sent, connection attempts since `before` (the counter's value
    read before the database went away; default: now), 'unreachable' log lines)."""
    if before is None:
        before = metric(server, "roster_db_connect_attempts_total")  # no database needed
    sent = 0
    end = time.monotonic() + DOWN_FOR
    while time.monotonic() < end:
        assert_503_retry_after(server.register(user_body(f"{prefix}{sent}")))
        assert_503_retry_after(server.get("/readyz"))
        sent += 2
        time.sleep(0.01)
    # The log first, then the counter: an attempt counts itself before it is made
    # and logs after it failed, so every line read here is already counted.
    unreachable = sum(1 for rec in server.log_records()
                      if str(rec.get("msg", "")).startswith("postgresql unreachable"))
    return sent, metric(server, "roster_db_connect_attempts_total") - before, unreachable


def assert_backed_off(sent, attempts):
    assert sent >= 40, sent
    # 4 threads with a store (2 hashing, 2 database workers), each at most once per
    # backoff step (50 ms doubling to 2 s): ~7 each in 3 s.
    assert 1 <= attempts <= 4 * 8, attempts
    assert attempts * 4 <= sent, (attempts, sent)


def assert_first_request_after_recovery_succeeds(server):
    time.sleep(BACKOFF_MAX + 0.3)  # every thread's next attempt is due
    assert_created(server.register(user_body("afterwards")))
    ready = server.get("/readyz")
    assert ready.status_code == 200, ready.text


@pytest.mark.parametrize("backend", ["postgres"])
def test_pg_down_before_first_request_503_backoff_then_first_request_succeeds(
        db, start_servers, pg_cluster):
    server = start_servers(db, 1, SERVE_ARGS)[0]
    # Counted from before the stop: threads holding a connection (database workers, the
    # janitor, the mail loop) try to reconnect while the server shuts down, and log it.
    before = metric(server, "roster_db_connect_attempts_total")
    pg_cluster.stop()
    try:
        sent, attempts, unreachable = requests_while_down(server, "down", before)
    finally:
        pg_cluster.start()
    print(f"database down {DOWN_FOR}s: {sent} requests, {attempts:.0f} connection "
          f"attempts, {unreachable} 'unreachable' log lines")
    assert_backed_off(sent, attempts)
    assert unreachable <= attempts, "a failed attempt is logged at most once"
    assert_first_request_after_recovery_succeeds(server)
    assert metric(server, "roster_db_reconnects_total") >= 1


@pytest.mark.parametrize("backend", ["postgres"])
def test_issue_9_serve_started_while_pg_down_503_then_first_request_after_start_succeeds(
        db, start_servers, pg_cluster):
    pg_cluster.stop()
    try:
        server = start_servers(db, 1, SERVE_ARGS)[0]
        assert any("database unreachable at start" in str(rec.get("msg", ""))
                   for rec in server.log_records()), server.log_text()[-2000:]
        health = server.get("/healthz")
        assert health.status_code == 200, health.text
        sent, attempts, _ = requests_while_down(server, "early")
    finally:
        pg_cluster.start()
    print(f"served while the database was down: {sent} requests, "
          f"{attempts:.0f} connection attempts")
    assert_backed_off(sent, attempts)
    assert_first_request_after_recovery_succeeds(server)
