"""
Faults under load: the database going away and coming back (PostgreSQL),
SIGTERM with requests in flight, SIGKILL in the middle of a registration load
and a restart (I2, I4), one of several --reuse-port processes dying, SIGHUP.
Every fault test keeps a steady load of distinct registrations and records
every attempt with its start and end time, so the window each response falls
in is known; counts per status are reported.
"""

import collections
import re
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import (FAST_HASH, REGISTER, T, assert_created, assert_error, assert_healthy,
                      outcome, report, user_body)

SLOW_HASH = ["--hash-memory", "65536", "--hash-passes", "4"]  # ~0.25 s per hash here
LOAD_TIMEOUT = 10  # seconds: each request of a load
OUTAGE = 2.0  # seconds the database stays down
RECOVER_WITHIN = 15.0


class Rec:
    __slots__ = ("t0", "t1", "target", "username", "result")

    def __init__(self, t0, t1, target, username, result):
        self.t0, self.t1, self.target, self.username, self.result = t0, t1, target, username, result


class Load:
    """`threads` threads registering distinct users in a loop (thread i -> targets[i % n],
    one keep-alive Session each, reconnecting after an error) until stop()."""

    def __init__(self, targets, threads, prefix, pause=0.0):
        self.targets = list(targets)
        self.prefix = prefix
        self.pause = pause
        self.records = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                         for i in range(threads)]

    def _run(self, i):
        t = i % len(self.targets)
        url = self.targets[t].url + REGISTER
        s = requests.Session()
        k = 0
        while not self._stop.is_set():
            name = f"{self.prefix}{i}n{k}"
            k += 1
            t0 = time.monotonic()
            try:
                r = s.post(url, json=user_body(name), timeout=LOAD_TIMEOUT)
            except requests.RequestException as e:
                r = e
                s.close()
                s = requests.Session()
            t1 = time.monotonic()
            with self._lock:
                self.records.append(Rec(t0, t1, t, name, r))
            if isinstance(r, Exception) or self.pause:
                time.sleep(self.pause or 0.02)
        s.close()

    def start(self):
        for th in self._threads:
            th.start()
        return self

    def stop(self):
        self._stop.set()
        for th in self._threads:
            th.join(timeout=LOAD_TIMEOUT + 5)
        assert not any(th.is_alive() for th in self._threads), "load threads did not finish"
        return self.records

    def snapshot(self):
        with self._lock:
            return list(self.records)

    def wait_for(self, pred, timeout):
        """Waits until some record satisfies pred; returns it, or None at the timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rec in self.snapshot():
                if pred(rec):
                    return rec
            time.sleep(0.02)
        return None


def status_of(rec):
    return rec.result.status_code if not isinstance(rec.result, Exception) else None


def metric(server, sample):
    """The value of one sample line (`name` or `name{labels}`) of GET /metrics."""
    r = server.get("/metrics")
    assert r.status_code == 200, r.text
    for line in r.text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    pytest.fail(f"no sample {sample} in /metrics:\n{r.text}", pytrace=False)


def log_context(servers, resp, before=3):
    """The server log lines up to the one naming this response's request id."""
    rid = getattr(resp, "headers", {}).get("X-Request-ID")
    for s in servers:
        lines = s.log_text().splitlines()
        for k, line in enumerate(lines):
            if rid and rid in line:
                return "\n".join(lines[max(0, k - before):k + 1])
    return "(not found)"


def killed(server):
    """SIGKILL our own child; the fixture's teardown then ignores its exit status."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=10)
    server.stopped = True
    server._log.close()


def assert_acknowledged_present(db, records, unanswered=None):
    """I4 + I2: every 201 is a whole account in the database; any other account came from
    a request that got no answer (it was in flight when the process died), or one of
    `unanswered` (names whose outcome could not be known). Returns counts."""
    acked = {}
    for rec in records:
        if status_of(rec) == 201:
            user = assert_created(rec.result, username=rec.username)
            acked[rec.username] = user["id"]
    present = dict(db.query("SELECT username, id FROM users"))
    missing = {n: i for n, i in acked.items() if present.get(n) != i}
    assert not missing, f"acknowledged with 201 but not in the database: {missing}"
    unanswered = set(unanswered or ()) | {
        rec.username for rec in records if isinstance(rec.result, Exception)}
    extra = set(present) - set(acked)
    assert extra <= unanswered, \
        f"accounts whose request was answered with an error: {sorted(extra - unanswered)}"
    for name, uid in acked.items():
        row = db.user(uid)
        assert (row["username"], row["role"], row["bio"]) == (name, "explorer", ""), row
    db.assert_invariants()
    return len(acked), len(present), len(extra)


# --------------------------------------------------------------------------- database outage

class Outage:
    """One stop/start of the cluster: monotonic times of each step."""

    def __init__(self, mode):
        self.mode = mode
        self.t_stop = self.t_down = self.t_start = self.t_up = None
        self.recovered = []  # per instance: seconds from t_up to its first 201

    def during(self, rec):
        return rec.t0 >= self.t_down and rec.t1 <= self.t_start

    def overlaps(self, rec):
        return rec.t1 > self.t_stop and rec.t0 < self.t_up


def outage(pg_cluster, servers, load, mode, probes):
    """Stops the cluster (pg_ctl stop -m MODE) for OUTAGE s while probing the instances,
    starts it again and waits for a 201 from every instance."""
    o = Outage(mode)
    o.t_stop = time.monotonic()
    pg_cluster.stop(mode=mode)
    o.t_down = time.monotonic()
    while time.monotonic() < o.t_down + OUTAGE:
        for i, s in enumerate(servers):
            for path in ("/readyz", "/healthz"):
                try:
                    probes.append((i, path, requests.get(s.url + path, timeout=5)))
                except requests.RequestException as e:
                    probes.append((i, path, e))
            assert s.proc.poll() is None, f"instance {i} exited during the outage"
        time.sleep(0.2)
    o.t_start = time.monotonic()
    pg_cluster.start()
    o.t_up = time.monotonic()
    for i in range(len(servers)):
        rec = load.wait_for(lambda r: r.target == i and r.t0 >= o.t_up and status_of(r) == 201,
                            RECOVER_WITHIN)
        assert rec is not None, \
            f"instance {i}: no 201 within {RECOVER_WITHIN}s of the database coming back ({mode})"
        o.recovered.append(rec.t1 - o.t_up)
    return o


@pytest.mark.parametrize("backend", ["postgres"])
def test_pg_stopped_during_registration_load_503_then_recovers(db, start_servers, pg_cluster):
    """Two outages under a steady load on 2 instances: a clean stop (-m fast: sessions
    terminated) and a crash (-m immediate: crash recovery at the restart)."""
    # 4 hashing workers each (4 database connections busy at once per instance): more
    # transactions are under way at the moment the database goes away
    servers = start_servers(db, 2, ["--hash-workers", "4", *FAST_HASH])
    load = Load(servers, 12, "pgout", pause=0.01).start()
    probes = []  # (instance, path, response or exception)
    outages = []
    try:
        assert load.wait_for(lambda r: status_of(r) == 201, 10), "no 201 before the outage"
        for mode in ("fast", "immediate"):
            time.sleep(0.5)
            outages.append(outage(pg_cluster, servers, load, mode, probes))
        time.sleep(0.3)
    finally:
        records = load.stop()
        if not pg_cluster.running:
            pg_cluster.start()

    for o in outages:
        during = [r for r in records if o.during(r)]
        edges = [r for r in records if o.overlaps(r) and not o.during(r)]
        report(f"registrations while PostgreSQL was down (stop -m {o.mode})",
               [r.result for r in during])
        report(f"registrations across the stop/start edges (stop -m {o.mode})",
               [r.result for r in edges])
        print(f"stop -m {o.mode}: stop took {o.t_down - o.t_stop:.2f}s, start "
              f"{o.t_up - o.t_start:.2f}s; first 201 per instance "
              f"{[round(x, 2) for x in o.recovered]}s after the cluster was back")
        assert len(during) >= 10, f"only {len(during)} registrations during the outage"
        for r in during:
            assert_error(r.result, 503, "unavailable")
            assert r.result.headers.get("Retry-After", "").strip().isdigit(), r.result.headers
    report("all registrations of the outage test", [r.result for r in records])
    bad = [r for r in records if outcome(r.result) not in ("201", "503 unavailable")]
    if bad:
        present = {n for (n,) in db.query("SELECT username FROM users")}
        pytest.fail("outcomes other than 201 / 503 unavailable:\n" + "\n".join(
            f"{r.username}: {outcome(r.result)} {getattr(r.result, 'text', '')[:200]}; account "
            f"{'committed' if r.username in present else 'absent'}; server log:\n"
            + log_context(servers, r.result) for r in bad[:5]), pytrace=False)

    counts = collections.Counter((path, outcome(r)) for _, path, r in probes)
    print(f"probes during the outages: {dict(counts)}")
    for i, path, r in probes:
        if path == "/healthz":
            assert outcome(r) == "200", (i, path, outcome(r))
        else:
            assert_error(r, 503, "unavailable")
            assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers

    # A registration whose COMMIT was under way when the database went away may be
    # committed while roster could only answer 503 (the outcome was unknown to it).
    present = {n for (n,) in db.query("SELECT username FROM users")}
    ambiguous = {r.username for r in records if status_of(r) == 503 and r.username in present
                 and any(r.t0 < o.t_down and r.t1 > o.t_stop for o in outages)}
    acked, present, extra = assert_acknowledged_present(db, records, ambiguous)
    print(f"outages: acknowledged {acked}, accounts present {present}, "
          f"present without a 201 (answered 503 while a stop was under way) {extra}")
    for i, s in enumerate(servers):
        assert s.proc.poll() is None, f"instance {i} exited"
        assert s.get("/readyz").status_code == 200
        assert_created(s.register(user_body(f"after{i}")))
        assert metric(s, 'roster_db_errors_total{kind="unavailable"}') >= 1
        assert metric(s, "roster_db_reconnects_total") >= 1
    db.assert_invariants()


# --------------------------------------------------------------------------- SIGTERM

def try_connect(port, wait):
    """'refused', or what became of a fresh connection's GET /healthz within `wait` s."""
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=1)
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return f"connect error {e}"
    t0 = time.monotonic()
    try:
        sock.settimeout(wait)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = sock.recv(100)
        how = f"answered {data[:12]!r}" if data else "closed without an answer"
    except socket.timeout:
        how = "no answer"
    except OSError as e:
        how = f"{type(e).__name__}"
    finally:
        sock.close()
    return f"accepted; after {time.monotonic() - t0:.2f}s: {how}"


def test_sigterm_inflight_registrations_complete_new_connections_refused(db, start_servers):
    timeout_s = 20
    server = start_servers(db, 1, ["--hash-workers", "1", *SLOW_HASH,
                                   "--shutdown-timeout", f"{timeout_s}s"])[0]
    n = 10
    results = [None] * n
    barrier = threading.Barrier(n + 1)

    def worker(i):
        with requests.Session() as s:
            s.get(server.url + "/healthz", timeout=T)
            barrier.wait(timeout=T)
            try:
                results[i] = s.post(server.url + REGISTER, json=user_body(f"term{i}"), timeout=T)
            except requests.RequestException as e:
                results[i] = e

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for th in threads:
        th.start()
    barrier.wait(timeout=T)
    deadline = time.monotonic() + 10
    depth = 0
    while time.monotonic() < deadline:
        depth = metric(server, "roster_hash_queue_depth")
        if depth >= n:
            break
        time.sleep(0.01)
    assert depth >= n, f"only {depth} registrations in flight"
    t_term = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)  # our own child
    time.sleep(0.2)
    alive = server.proc.poll() is None
    after = try_connect(server.port, timeout_s + 5)  # returns at the latest when it exits
    try:
        server.proc.wait(timeout=timeout_s + 5)
    except Exception:
        pass
    t_exit = time.monotonic()
    for th in threads:
        th.join(timeout=T)
    report("SIGTERM with 10 slow registrations in flight", results)
    print(f"new connection 0.2s after SIGTERM (process then alive: {alive}): {after}; "
          f"exit {server.proc.returncode} {t_exit - t_term:.2f}s after SIGTERM")

    server.stop_checked()  # exit 0 (it has exited), stderr clean
    assert t_exit - t_term < timeout_s, f"exit took {t_exit - t_term:.1f}s"
    for i, r in enumerate(results):
        assert_created(r, username=f"term{i}")
    completed = [rec for rec in server.log_records()
                 if rec.get("msg") == "request" and rec.get("path") == REGISTER]
    assert len(completed) == n and all(rec.get("completed", True) for rec in completed), completed
    assert db.count_users() == n
    db.assert_invariants()
    assert alive, "the process exited before the in-flight requests could finish"
    assert after == "refused", f"a new connection after SIGTERM: {after}"


# --------------------------------------------------------------------------- SIGKILL

def test_sigkill_during_registration_load_acknowledged_users_whole(db, start_servers):
    if db.backend == "sqlite":
        assert db.scalar("PRAGMA journal_mode") == "wal"
    a, b = start_servers(db, 2, FAST_HASH)
    load = Load([a, b], 8, "kill").start()
    try:
        assert load.wait_for(lambda r: r.target == 0 and status_of(r) == 201, 10)
        time.sleep(1.0)
        t_kill = time.monotonic()
        killed(a)
        assert load.wait_for(lambda r: r.target == 1 and r.t0 > t_kill + 0.3, 10)
    finally:
        records = load.stop()
    report("registrations to the killed instance, before the kill",
           [r.result for r in records if r.target == 0 and r.t1 < t_kill])
    report("registrations to the killed instance, in flight at / after the kill",
           [r.result for r in records if r.target == 0 and r.t1 >= t_kill])
    report("registrations to the surviving instance", [r.result for r in records if r.target == 1])
    assert all(status_of(r) == 201 for r in records if r.target == 1), \
        [outcome(r.result) for r in records if r.target == 1 and status_of(r) != 201]
    assert all(status_of(r) == 201 for r in records if r.t1 < t_kill)
    assert all(status_of(r) in (201, None) for r in records), \
        {outcome(r.result) for r in records}

    acked, present, extra = assert_acknowledged_present(db, records)
    print(f"after kill -9: acknowledged {acked}, accounts present {present}, "
          f"present without acknowledgement (in flight) {extra}")
    assert acked >= 20, f"only {acked} registrations acknowledged"

    restarted = start_servers(db, 1, FAST_HASH)[0]
    assert_healthy(restarted)
    assert restarted.get("/readyz").status_code == 200
    assert_created(restarted.register(user_body("afterkill")), username="afterkill")
    assert db.count_users() == present + 1
    db.assert_invariants()


# --------------------------------------------------------------------------- --reuse-port

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def served_by(servers, request_ids):
    """How many of request_ids each server logged."""
    ids = set(request_ids)
    return [sum(1 for r in s.log_records() if r.get("msg") == "request"
                and r.get("request_id") in ids) for s in servers]


def fresh_get(url, rid):
    """One request on its own new connection."""
    return requests.get(url, timeout=T, headers={"Connection": "close", "X-Request-ID": rid})


def test_reuse_port_three_processes_one_killed_others_serve(db, start_servers):
    port = free_port()
    servers = start_servers(db, 3, ["--reuse-port", "--bind", f"127.0.0.1:{port}", *FAST_HASH])
    assert [s.port for s in servers] == [port] * 3
    url = f"http://127.0.0.1:{port}"

    before = [f"rp-before-{i}" for i in range(30)]
    for rid in before:
        r = fresh_get(url + "/healthz", rid)
        assert r.status_code == 200, r.text
    for i in range(6):
        assert_created(requests.post(url + REGISTER, json=user_body(f"rp{i}"), timeout=T,
                                     headers={"Connection": "close"}))
    time.sleep(0.2)  # access lines are written after the reply
    spread_before = served_by(servers, before)
    print(f"/healthz per process before the kill: {spread_before}")
    assert all(c > 0 for c in spread_before), spread_before

    killed(servers[0])
    after = [f"rp-after-{i}" for i in range(50)]
    results = []
    for rid in after:
        try:
            results.append(fresh_get(url + "/healthz", rid))
        except requests.RequestException as e:
            results.append(e)
    counts = report("reuse-port: 50 new connections after one of 3 processes was killed", results)
    assert counts == {"200": 50}, counts
    regs = []
    for i in range(10):
        try:
            regs.append(requests.post(url + REGISTER, json=user_body(f"rpk{i}"), timeout=T,
                                      headers={"Connection": "close"}))
        except requests.RequestException as e:
            regs.append(e)
    counts = report("reuse-port: 10 registrations after the kill", regs)
    assert counts == {"201": 10}, counts
    time.sleep(0.2)
    spread_after = served_by(servers[1:], after)
    print(f"/healthz per surviving process after the kill: {spread_after}")
    assert sum(spread_after) == 50
    assert db.count_users() == 16
    db.assert_invariants()


# --------------------------------------------------------------------------- SIGHUP

def test_sighup_logged_process_keeps_serving(fast_server):
    server = fast_server
    hups = []
    for k in (1, 2):  # one at a time: a second pending SIGHUP would merge with the first
        server.proc.send_signal(signal.SIGHUP)  # our own child
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(hups) < k:
            hups = [r for r in server.log_records() if "SIGHUP" in str(r.get("msg", ""))]
            time.sleep(0.02)
        assert len(hups) == k, server.log_text()
    assert all(re.search(r"stderr", r["msg"]) and r.get("level") == "info" for r in hups), hups
    assert server.proc.poll() is None
    assert_healthy(server)
    assert_created(server.register(user_body("afterhup")), username="afterhup")
    server.stop_checked()  # SIGTERM still stops it, exit 0
