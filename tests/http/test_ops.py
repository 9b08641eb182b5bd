"""
Operations: health and readiness, the access log, behaviour when the hashing
pool is saturated (503 with Retry-After while /healthz stays fast), and a
graceful stop with requests in flight.
"""

import json
import signal
import socket
import subprocess
import time

import pytest
import requests

from conftest import (FAST_HASH, ME, T, assert_error, assert_healthy, assert_me, auth, burst,
                      outcome, report, roster_bin, roster_env, token_of, user_body)

SLOW_HASH = ["--hash-memory", "65536", "--hash-passes", "3"]


def test_healthz_serving_200(server):
    assert_healthy(server)
    assert server.get("/healthz").headers.get("X-Request-ID")


def test_readyz_migrated_200(server):
    r = server.get("/readyz")
    assert r.status_code == 200, r.text


def test_log_access_line_has_fields(server):
    server.get("/healthz", headers={"X-Request-ID": "ops-log-1"})
    server.register(user_body("logme"), headers={"X-Request-ID": "ops-log-2"})
    server.stop_checked()
    records = server.log_records()
    assert all("ts" in r and "level" in r for r in records), records
    access = {r["request_id"]: r for r in records if "status" in r and "request_id" in r}
    for rid, method, path, status in [("ops-log-1", "GET", "/healthz", 200),
                                      ("ops-log-2", "POST", "/users/register/", 201)]:
        line = access.get(rid)
        assert line, f"no access line for {rid}: {records}"
        assert (line["method"], line["path"], line["status"]) == (method, path, status), line
        assert isinstance(line["duration_us"], int) and line["duration_us"] >= 0, line


def raw_line(server, request_line, rid):
    """Sends one raw request (`request_line` as bytes) and returns its access line."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=T) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\nX-Request-ID: " + rid.encode() +
                     b"\r\nConnection: close\r\n\r\n")
        while sock.recv(65536):
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for rec in server.log_records():  # every line must parse: log_records asserts it
            if rec.get("msg") == "request" and rec.get("request_id") == rid:
                return rec
        time.sleep(0.02)
    raise AssertionError(f"no access line for {rid}: {server.log_text()[-2000:]}")


@pytest.mark.parametrize("backend", ["sqlite"])  # the access log: no database involved
def test_issue_14_access_log_keeps_utf8_escapes_invalid_bytes_bounds_each_field(server):
    """Issue 14, item 13: `/café` was logged as `/cafÃ©` (each byte escaped as a
    code point), and a 3,000-byte method left `path` empty."""
    line = raw_line(server, b"GET /caf%C3%A9 HTTP/1.1", "utf8-pct")
    assert line["path"] == "/caf\u00e9", line
    line = raw_line(server, "GET /\u65e5\u672c HTTP/1.1".encode(), "utf8-raw")
    assert line["path"] == "/\u65e5\u672c", line
    line = raw_line(server, b"GET /a%FFb%C3 HTTP/1.1", "not-utf8")
    assert line["path"] == "/a\\xffb\\xc3", line  # visibly escaped, never a character
    line = raw_line(server, b"GET /q%22%5C%0A HTTP/1.1", "specials")
    assert line["path"] == '/q"\\\n', line
    line = raw_line(server, b"A" * 3000 + b" /healthz HTTP/1.1", "long-method")
    assert line["path"] == "/healthz", line
    assert line["method"].startswith("AAAA") and line["method"].endswith("..."), line
    assert len(line["method"]) < 100, len(line["method"])
    line = raw_line(server, b"GET /" + b"p" * 3000 + b" HTTP/1.1", "long-path")
    assert line["path"].startswith("/ppp") and line["path"].endswith("..."), line
    assert line["status"] == 404 and line["remote"] == "127.0.0.1", line


def test_register_hash_pool_saturated_503_healthz_fast(make_db, start_servers):
    db = make_db()
    server = start_servers(db, 1, ["--hash-workers", "1", "--hash-queue", "2", *SLOW_HASH])[0]
    probe = requests.Session()
    probe.get(server.url + "/healthz", timeout=T)  # connect now, time only the request later
    probes_done = []

    def during():
        times = []
        time.sleep(0.05)
        for _ in range(8):
            t0 = time.monotonic()
            r = probe.get(server.url + "/healthz", timeout=T)
            times.append(time.monotonic() - t0)
            assert r.status_code == 200, r.text
            time.sleep(0.03)
        probes_done.append(time.monotonic())
        return times

    results, times = burst([server], [user_body(f"sat{i}") for i in range(20)], during=during)
    burst_done = time.monotonic()
    probe.close()
    counts = report("saturation x20 (1 worker, queue 2)", results)
    print(f"healthz during saturation: {[round(t * 1000, 1) for t in times]} ms")

    assert max(times) < 0.1, times
    assert burst_done > probes_done[0], "registrations were over before /healthz was probed"
    assert set(counts) <= {"201", "503 unavailable"}, counts
    assert counts.get("201", 0) >= 1 and counts.get("503 unavailable", 0) >= 1, counts
    for r in results:
        if r.status_code == 503:
            assert_error(r, 503, "unavailable")
            assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers
    assert db.count_users() == counts["201"]
    db.assert_invariants()


def test_serve_sigterm_inflight_completed_exit_0(make_db, start_servers):
    db = make_db()
    server = start_servers(db, 1, ["--hash-workers", "1", *SLOW_HASH])[0]

    def during():
        time.sleep(0.1)
        server.proc.send_signal(signal.SIGTERM)  # our own child

    results, _ = burst([server], [user_body(f"term{i}") for i in range(5)], during=during)
    report("SIGTERM during 5 registrations", results)
    assert all(outcome(r) in ("201", "503 unavailable") for r in results), \
        [outcome(r) for r in results]
    server.stop_checked()  # exit code 0 within the timeout
    created = [r.json()["user"]["id"] for r in results if r.status_code == 201]
    assert sorted(i for (i,) in db.query("SELECT id FROM users")) == sorted(created)
    db.assert_invariants()


def test_me_while_hash_queue_full_served_by_database_pool(make_db, start_servers):
    """GET /users/me/ runs on the database pool: a full hashing queue never delays it."""
    db = make_db()
    fast = start_servers(db, 1, FAST_HASH)[0]
    assert fast.register(user_body("meq")).status_code == 201
    token = token_of(fast, "meq")
    fast.stop_checked()
    server = start_servers(db, 1, ["--hash-workers", "1", "--hash-queue", "2", *SLOW_HASH])[0]
    probe = requests.Session()
    assert_me(probe.get(server.url + ME, headers=auth(token), timeout=T), username="meq")

    def during():
        times = []
        time.sleep(0.05)
        for _ in range(8):
            t0 = time.monotonic()
            r = probe.get(server.url + ME, headers=auth(token), timeout=T)
            times.append(time.monotonic() - t0)
            assert_me(r, username="meq")
            time.sleep(0.03)
        return times

    results, times = burst([server], [user_body(f"meqsat{i}") for i in range(20)], during=during)
    probe.close()
    counts = report("/users/me/ during hash saturation x20 (1 worker, queue 2)", results)
    print(f"/users/me/ during saturation: {[round(t * 1000, 1) for t in times]} ms")
    assert counts.get("503 unavailable", 0) >= 1, counts  # the hashing queue was full
    assert max(times) < 0.5, times  # a hash here takes ~0.25 s; behind the queue: 503 or ~1 s


@pytest.mark.parametrize("backend", ["sqlite"])  # the process's life: no database work
def test_systemd_notify_ready_after_listening_stopping_on_sigterm(db, tmp_path):
    """Issue 10, item 5: Type=notify. roster sends READY=1 on $NOTIFY_SOCKET once the
    schema is checked and /healthz answers, and STOPPING=1 when SIGTERM starts the
    drain; without $NOTIFY_SOCKET nothing changes (every other test)."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(T)
    env = dict(roster_env(), NOTIFY_SOCKET=path)
    log_path = tmp_path / "serve.stderr"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([roster_bin(), "serve", "--db", db.url, "--bind", "127.0.0.1:0"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                env=env)
    try:
        ready = sock.recv(4096).decode()
        assert "READY=1" in ready.split("\n"), ready
        rec = [json.loads(line) for line in log_path.read_text().splitlines()
               if '"listening"' in line][0]
        r = requests.get(f"http://127.0.0.1:{rec['port']}/healthz", timeout=T)
        assert r.status_code == 200  # READY=1 came when it already answered
        proc.send_signal(signal.SIGTERM)
        stopping = sock.recv(4096).decode()
        assert "STOPPING=1" in stopping.split("\n"), stopping
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()  # only this PID, which we started
            proc.wait()
        sock.close()
