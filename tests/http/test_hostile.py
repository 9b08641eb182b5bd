"""
Hostile clients (invariant I6): slow and idle connections, connection floods
from one address, oversized and oddly framed requests, pipelining, hostile
JSON, and SQL- or script-looking strings. Each test is black-box against real
`roster serve` processes; none may get a 500, crash the server or make it
unavailable to other clients (the server fixtures' teardown also checks exit
code 0 and scans stderr for sanitizer reports).

Every hostile input and what it got is collected and printed as a table in the
terminal summary ("hostile inputs").

Most tests here exercise the HTTP layer only (connection handling, framing,
the JSON parser): they never reach the database, so they run on SQLite alone
(`HTTP_LAYER`). Storing hostile strings does reach the database and runs on both.
"""

import http.client
import json
import select
import socket
import statistics
import threading
import time

import pytest
import requests

from conftest import (FAST_HASH, LOGIN, ME, PASSWORD, REGISTER, T, assert_created, assert_error,
                      assert_healthy, assert_me, auth, raw_request, request_head, token_of,
                      user_body)

LIMIT = 16 * 1024  # the default body limit
LATENCY_MS = 100  # median /healthz latency other clients must keep during an attack

# The connection handling, HTTP framing and JSON parsing under test are the same code
# whatever the database: one backend (SQLite) is enough for these tests.
HTTP_LAYER = pytest.mark.parametrize("backend", ["sqlite"])

TABLE = []  # (test, hostile input, outcome) for the terminal summary


def record(test, what, got):
    TABLE.append((test, what, got))
    print(f"{test}: {what} -> {got}")


class _TableSummary:
    """Prints TABLE at the end of the run (registered once by the fixture below)."""

    def pytest_terminal_summary(self, terminalreporter):
        if not TABLE:
            return
        terminalreporter.section("hostile inputs (input -> outcome)")
        w1 = max(len(t) for t, _, _ in TABLE)
        w2 = min(70, max(len(w) for _, w, _ in TABLE))
        for test, what, got in TABLE:
            terminalreporter.write_line(f"{test:<{w1}}  {what:<{w2}}  {got}")


@pytest.fixture(scope="module", autouse=True)
def _hostile_table(request):
    pm = request.config.pluginmanager
    if not pm.has_plugin("roster-hostile-table"):
        pm.register(_TableSummary(), "roster-hostile-table")
    yield


@pytest.fixture
def start_servers(start_servers):
    """conftest's start_servers, and afterwards: no access line of any of these servers
    has a 5xx status (each hostile request was answered 4xx, or not at all), but for 501,
    the protocol's answer to a Transfer-Encoding roster does not implement."""
    started = []

    def start(db, n=1, args=()):
        servers = start_servers(db, n, args)
        started.extend(servers)
        return servers

    yield start
    bad = [f"{s.log_path}: {rec}" for s in started for rec in s.log_records()
           if rec.get("msg") == "request" and isinstance(rec.get("status"), int)
           and rec["status"] >= 500 and rec["status"] != 501]  # 501: an unknown coding (RFC 9112)
    assert not bad, "5xx answers:\n" + "\n".join(bad[:10])


# --------------------------------------------------------------------------- helpers

def status_of(resp):
    """'400 malformed_json', '431 (html)', ...: the outcome of a response for the table."""
    try:
        body = resp.json()
        code = body.get("code") if isinstance(body, dict) else None
    except ValueError:
        return f"{resp.status_code} (not JSON)"
    return f"{resp.status_code} {code}" if code else str(resp.status_code)


def connect(server):
    return socket.create_connection(("127.0.0.1", server.port), timeout=T)


def wait_closed(sock, timeout):
    """Reads until the peer closes; returns (closed, bytes read, seconds waited)."""
    t0 = time.monotonic()
    data = b""
    while True:
        left = timeout - (time.monotonic() - t0)
        if left <= 0:
            return False, data, time.monotonic() - t0
        if not select.select([sock], [], [], left)[0]:
            continue
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError):
            return True, data, time.monotonic() - t0
        if not chunk:
            return True, data, time.monotonic() - t0
        data += chunk


def is_open(sock):
    """True when the peer has not closed (nothing readable: no EOF, no reply)."""
    return not select.select([sock], [], [], 0)[0]


def send_raw(server, data, timeout=10):
    """One connection: sends `data`, reads until the server closes or `timeout`.
    Returns (status line or None, everything read, closed by the server?)."""
    sock = connect(server)
    try:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed early; read what it sent
        except socket.timeout:
            return None, b"", False  # the server neither read nor closed: a hang
        closed, got, _ = wait_closed(sock, timeout)
    finally:
        sock.close()
    status = int(got.split(b" ", 2)[1]) if got.startswith(b"HTTP/1.") else None
    return status, got, closed


def probe_once(server):
    """A new client (new connection) asks GET /healthz: (seconds, status or error)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=T)
    try:
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        return time.monotonic() - t0, resp.status
    except OSError as e:
        return time.monotonic() - t0, repr(e)
    finally:
        conn.close()


def probe_latencies(server, stop, out):
    """Until `stop` is set: probe_once every 50 ms, results appended to `out`."""
    while not stop.is_set():
        out.append(probe_once(server))
        stop.wait(0.05)


def assert_fast(samples, label):
    assert samples, f"{label}: no /healthz probe ran"
    bad = [s for _, s in samples if s != 200]
    assert not bad, f"{label}: /healthz failed during the attack: {bad[:5]}"
    ms = [t * 1000 for t, _ in samples]
    med = statistics.median(ms)
    print(f"{label}: /healthz from a new client: n={len(ms)} median={med:.1f} ms "
          f"max={max(ms):.1f} ms")
    assert med < LATENCY_MS, f"{label}: /healthz median {med:.1f} ms >= {LATENCY_MS} ms"
    return med


def read_response(f):
    """One HTTP/1.1 response from a buffered socket file: (status, headers, body)."""
    line = f.readline()
    assert line.startswith(b"HTTP/1.1 "), f"not a status line: {line!r}"
    status = int(line.split(b" ", 2)[1])
    headers = {}
    while True:
        h = f.readline()
        assert h, "connection closed inside the headers"
        if h in (b"\r\n", b"\n"):
            break
        k, v = h.decode("latin-1").split(":", 1)
        headers[k.strip().lower()] = v.strip()
    body = f.read(int(headers.get("content-length", "0")))
    return status, headers, body


# --------------------------------------------------------------------------- slow and idle clients

@HTTP_LAYER
def test_slowloris_headers_and_bodies_closed_after_idle_timeout_others_served(db, start_servers):
    idle = 2
    server = start_servers(db, args=("--idle-timeout", f"{idle}s", *FAST_HASH))[0]
    n = 40  # of each kind
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
    post = (b"POST /users/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 4000\r\n\r\n{")
    slow_head = [connect(server) for _ in range(n)]
    slow_body = [connect(server) for _ in range(n)]
    for s in slow_head:
        s.sendall(head)
    for s in slow_body:
        s.sendall(post)

    stop = threading.Event()
    samples = []
    prober = threading.Thread(target=probe_latencies, args=(server, stop, samples), daemon=True)
    prober.start()
    try:
        # Trickle one byte per connection every 0.5 s for 3 s (longer than the idle
        # timeout: MHD's timeout is an inactivity timeout, so trickling keeps them).
        end = time.monotonic() + 3
        while time.monotonic() < end:
            for s in slow_head + slow_body:
                try:
                    s.sendall(b"a" if s in slow_head else b" ")
                except OSError:
                    pass  # already closed by the server: fine
            last_byte = time.monotonic()
            time.sleep(0.5)
        # A real client still registers during the attack.
        r = server.register(user_body("during_slowloris"))
        assert_created(r, "during_slowloris")
    finally:
        stop.set()
        prober.join(timeout=T)
    median = assert_fast(samples, "slowloris")

    # Silence: each connection is closed once idle for --idle-timeout.
    t0 = last_byte
    results = []
    for s in slow_head + slow_body:
        left = max(0.1, idle + 4 - (time.monotonic() - t0))
        results.append(wait_closed(s, left))
        s.close()
    waited = time.monotonic() - t0
    open_left = sum(not closed for closed, _, _ in results)
    replies = {got.split(b"\r\n", 1)[0] for _, got, _ in results if got}
    record("slowloris", f"{n} slow headers + {n} slow bodies, 1 B/0.5 s, then silence",
           f"all closed {waited:.1f} s after the last byte (idle timeout {idle} s); "
           f"/healthz median {median:.1f} ms")
    assert open_left == 0, f"{open_left} of {2 * n} slow connections still open after {waited:.1f}s"
    assert not any(r.startswith(b"HTTP/1.1 5") for r in replies), replies
    assert_healthy(server)


def metric(server, name):
    """A sample's value from /metrics, e.g. 'roster_http_connections_closed_total{reason="evicted"}'."""
    text = requests.get(server.url + "/metrics", timeout=T).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


def trickle(socks, stop, every=0.5):
    """Until `stop` is set: one more byte on every socket that is still open, every `every` s."""
    while not stop.is_set():
        for s in socks:
            try:
                s.sendall(b"a")
            except OSError:
                pass  # closed by the server
        stop.wait(every)


@HTTP_LAYER
def test_head_and_body_deadlines_hold_however_the_bytes_trickle(db, start_servers):
    """Issue 14, item 9: trickling bytes (1 B per 0.5 s, under the 30 s idle timeout) kept a
    head or a body open for as long as the client liked; --head-timeout and --body-timeout
    bound the whole head and the whole body. A kept-alive connection that is idle is left
    to the idle timeout."""
    head_s, body_s = 2, 3
    server = start_servers(db, args=("--head-timeout", f"{head_s}s", "--body-timeout",
                                     f"{body_s}s", *FAST_HASH))[0]
    n = 20
    slow_head = [connect(server) for _ in range(n)]
    slow_body = [connect(server) for _ in range(n)]
    for s in slow_head:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    for s in slow_body:
        s.sendall(b"POST /users/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                  b"\r\nContent-Length: 4000\r\n\r\n{")
    kept = connect(server)  # one request answered, then idle: not a slow head
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    f = kept.makefile("rb")
    assert read_response(f)[0] == 200
    t0 = time.monotonic()
    stop = threading.Event()
    feeder = threading.Thread(target=trickle, args=(slow_head + slow_body, stop), daemon=True)
    feeder.start()
    try:
        heads = [wait_closed(s, head_s + 3 - (time.monotonic() - t0)) for s in slow_head]
        bodies = [wait_closed(s, body_s + 3 - (time.monotonic() - t0)) for s in slow_body]
        took = time.monotonic() - t0
        kept_open = is_open(kept)
        # A new client is served as usual.
        assert requests.get(server.url + "/healthz", timeout=T).status_code == 200
        by_head = metric(server, 'roster_http_connections_closed_total{reason="head_deadline"}')
        by_body = metric(server, 'roster_http_connections_closed_total{reason="body_deadline"}')
    finally:
        stop.set()
        feeder.join(timeout=T)
        for s in slow_head + slow_body + [kept]:
            s.close()
    record("deadlines", f"{n} heads + {n} bodies trickled 1 B/0.5 s (head {head_s} s, body "
           f"{body_s} s)", f"all closed within {took:.1f} s; metrics head {by_head:.0f}, "
           f"body {by_body:.0f}; idle keep-alive left open: {kept_open}")
    assert sum(c for c, _, _ in heads) == n, "trickled heads outlived --head-timeout"
    assert sum(c for c, _, _ in bodies) == n, "trickled bodies outlived --body-timeout"
    assert by_head >= n and by_body >= n
    assert kept_open, "an idle kept-alive connection was closed before the idle timeout"
    assert_healthy(server)


@HTTP_LAYER
def test_full_server_closes_oldest_incomplete_connection_for_a_new_client(db, start_servers):
    """Issue 14, item 9: sockets from 5 addresses, each sending one header line now and
    then, held every slot; new clients were refused. A full server now shuts the oldest
    incomplete connection to admit a new one."""
    slots = 100
    server = start_servers(db, args=("--max-connections", str(slots), "--max-connections-per-ip",
                                     "0", *FAST_HASH))[0]
    attackers = []
    for i in range(slots + 10):  # 5 source addresses, as a few hosts of one attacker
        if i == 20:
            time.sleep(0.3)  # the first 20 are older by a margin (not by microseconds)
        s = socket.socket()
        s.settimeout(T)
        s.bind((f"127.0.0.{2 + i % 5}", 0))
        s.connect(("127.0.0.1", server.port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        attackers.append(s)
    time.sleep(0.5)
    stop = threading.Event()
    feeder = threading.Thread(target=trickle, args=(attackers, stop, 1.0), daemon=True)
    feeder.start()
    try:
        samples = [probe_once(server) for _ in range(20)]
        evicted = metric(server, 'roster_http_connections_closed_total{reason="evicted"}')
        first_closed = sum(not is_open(s) for s in attackers[:20])
        last_open = sum(is_open(s) for s in attackers[-50:])
    finally:
        stop.set()
        feeder.join(timeout=T)
        for s in attackers:
            s.close()
    median = assert_fast(samples, "slots full of slow heads")
    record("full", f"{slots + 10} slow heads from 5 addresses, --max-connections {slots}",
           f"new clients served (/healthz median {median:.1f} ms); {evicted:.0f} oldest "
           f"incomplete connections closed to admit them")
    # 10 attackers over the limit, then the first probe: each admitted by closing one,
    # among the 20 oldest.
    assert evicted >= 11, evicted
    assert first_closed >= 11, "the oldest incomplete connections were not the ones closed"
    assert last_open == 50, "younger connections were closed while older ones stayed"
    assert_healthy(server)


@HTTP_LAYER
def test_idle_connections_300_do_not_starve_new_clients(db, start_servers):
    idle = 4
    # No per-IP cap here: all 300 come from 127.0.0.1 (the per-IP limit has its own test).
    server = start_servers(db, args=("--idle-timeout", f"{idle}s", "--max-connections-per-ip", "0",
                                     *FAST_HASH))[0]
    silent = [connect(server) for _ in range(150)]  # connected, never send a byte
    kept = []  # one request answered, then idle keep-alive
    for _ in range(150):
        s = connect(server)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        kept.append(s)
    for s in kept:
        f = s.makefile("rb")
        status, _, _ = read_response(f)
        f.close()
        assert status == 200
    idlers = silent + kept
    try:
        samples = [probe_once(server) for _ in range(20)]
        median = assert_fast(samples, "300 idle connections")
        r = server.register(user_body("among_idlers"))
        assert_created(r, "among_idlers")
        still = sum(is_open(s) for s in idlers)
        assert still == len(idlers), \
            f"only {still} of {len(idlers)} idle connections were open while probing"
        # And the idle ones are reclaimed after --idle-timeout.
        t0 = time.monotonic()
        closed = [wait_closed(s, max(0.1, idle + 4 - (time.monotonic() - t0)))[0] for s in idlers]
        waited = time.monotonic() - t0
    finally:
        for s in idlers:
            s.close()
    record("idle", "300 idle connections (150 silent, 150 keep-alive)",
           f"new clients served (/healthz median {median:.1f} ms, register 201); "
           f"all closed by the server within {waited:.1f} s more (idle timeout {idle} s)")
    assert all(closed), f"{closed.count(False)} idle connections not closed by the server"
    assert_healthy(server)


@HTTP_LAYER
def test_per_ip_connection_limit_21st_closed_then_recovers(db, start_servers):
    server = start_servers(db, args=("--max-connections-per-ip", "20",))[0]
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"

    def open_served(k):
        socks, files = [], []
        for _ in range(k):
            s = connect(server)
            s.sendall(req)
            f = s.makefile("rb")
            assert read_response(f)[0] == 200
            socks.append(s)
            files.append(f)
        return socks, files

    socks, files = open_served(20)
    try:
        extra = connect(server)
        try:
            extra.sendall(req)
        except OSError:
            pass
        closed, got, took = wait_closed(extra, 5)
        extra.close()
        outcome = ("closed without a reply" if closed and not got else
                   f"{got[:40]!r}" if got else "no reply, still open")
        record("per-ip", "21st concurrent connection from 127.0.0.1 (limit 20)",
               f"{outcome} after {took * 1000:.0f} ms")
        assert closed and not got.startswith(b"HTTP/1.1 2"), (closed, got)
        # The 20 are unaffected.
        socks[0].sendall(req)
        assert read_response(files[0])[0] == 200
    finally:
        for f in files:
            f.close()
        for s in socks:
            s.close()
    # Once they are closed, new connections work again (the server notices the closes).
    deadline = time.monotonic() + 5
    while True:
        try:
            r = requests.get(server.url + "/healthz", timeout=5)
            if r.status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "no new connection accepted after closing the 20"
        time.sleep(0.05)
    socks, files = open_served(20)
    for f in files:
        f.close()
    for s in socks:
        s.close()
    record("per-ip", "20 new connections after closing the first 20", "all served 200")



@HTTP_LAYER
def test_trusted_proxy_exempt_from_per_ip_connection_limit(db, start_servers):
    """Issue 10: behind nginx every connection comes from nginx's address, so the per-IP
    connection limit capped the whole site. A --trusted-proxies peer is exempt; any
    other address keeps its limit (here 127.0.0.2, limit 20), and an IPv6 /64 and an
    IPv4-mapped address count as one client each (unit tests: test_http.c)."""
    server = start_servers(db, args=("--trusted-proxies", "127.0.0.1", "--max-connections-per-ip",
                                     "20", "--max-connections", "1024", *FAST_HASH))[0]
    req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    proxy, files = [], []
    try:
        for _ in range(400):
            s = connect(server)
            s.sendall(req)
            proxy.append(s)
        for s in proxy:
            f = s.makefile("rb")
            files.append(f)
            assert read_response(f)[0] == 200
        served_proxy = sum(is_open(s) for s in proxy)
        others = []
        for _ in range(21):
            s = socket.socket()
            s.settimeout(T)
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", server.port))
            others.append(s)
        time.sleep(0.3)
        closed_others = [not is_open(s) for s in others]
        for s in others:
            s.close()
        per_addr = metric(server, 'roster_http_connections_closed_total{reason="per_address"}')
    finally:
        for f in files:
            f.close()
        for s in proxy:
            s.close()
    record("per-ip", "400 keep-alive connections from the trusted proxy 127.0.0.1 (limit 20), "
           "21 from 127.0.0.2", f"{served_proxy} proxy connections open and served; "
           f"{sum(closed_others)} of 127.0.0.2's closed")
    assert served_proxy == 400
    assert sum(closed_others) == 1, closed_others  # which one: the order MHD's threads start them
    assert per_addr == 1


# --------------------------------------------------------------------------- framing

@HTTP_LAYER
@pytest.mark.parametrize("name, data", [
    ("64 KiB header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"),
    ("5000 headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
     + b"".join(b"X-H%d: v\r\n" % i for i in range(5000)) + b"\r\n"),
    ("70 KB request line", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("1 MiB header, no end", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (1 << 20)),
], ids=["64k-header", "5000-headers", "70k-url", "1m-header-unterminated"])
def test_oversized_headers_431_or_close(db, start_servers, name, data):
    server = start_servers(db)[0]
    t0 = time.monotonic()
    status, got, closed = send_raw(server, data, timeout=10)
    took = time.monotonic() - t0
    record("oversized", name, (f"{status}" if status else "no reply") +
           (", closed" if closed else ", left open") + f" in {took * 1000:.0f} ms")
    assert closed, f"{name}: connection not closed within 10 s (hang)"
    assert status in (None, 400, 413, 414, 431), got[:200]
    assert_healthy(server)


def chunked(data, size=1024):
    return [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
            for i in range(0, len(data), size)] + [b"0\r\n\r\n"]


@HTTP_LAYER
def test_chunked_body_over_limit_413(db, start_servers):
    server = start_servers(db)[0]
    data = json.dumps(user_body("chunky", bio="c" * (3 * LIMIT))).encode()
    head = request_head(server, "POST", REGISTER, {"Content-Type": "application/json",
                                                   "Transfer-Encoding": "chunked"})
    r = raw_request(server, head, chunked(data))
    record("chunked", f"chunked body of {len(data)} B (limit {LIMIT})", status_of(r))
    assert_error(r, 413, "body_too_large")
    assert db.count_users() == 0
    assert_healthy(server)


@HTTP_LAYER
@pytest.mark.parametrize("name, tail, ok", [
    ("chunked 2 MiB, sent at once", b"".join(chunked(b" " * (2 << 20), 65536)), (413, None)),
    ("chunk size 2^80", b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", (400, 413, None)),
    ("chunk size 2^63-1, then silence", b"7fffffffffffffff\r\nabc", (400, 413, None)),
    ("bad chunk size", b"zz\r\nabc\r\n0\r\n\r\n", (400, None)),
], ids=["2m", "size-overflow", "size-huge", "size-garbage"])
def test_chunked_hostile_framing_4xx_or_close(db, start_servers, name, tail, ok):
    server = start_servers(db, args=("--idle-timeout", "2s"))[0]
    head = (b"POST /users/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    status, got, closed = send_raw(server, head + tail, timeout=10)
    record("chunked", name, (f"{status}" if status else "no reply") +
           (", closed" if closed else ", left open"))
    assert closed, f"{name}: not closed within 10 s"
    assert status in ok, got[:300]
    assert db.count_users() == 0
    assert_healthy(server)


@HTTP_LAYER
@pytest.mark.parametrize("name, headers", [
    ("Content-Length: -1", b"Content-Length: -1\r\n"),
    ("Content-Length: abc", b"Content-Length: abc\r\n"),
    ("Content-Length: 10^23", b"Content-Length: 99999999999999999999999\r\n"),
    ("two Content-Length (2, 40)", b"Content-Length: 2\r\nContent-Length: 40\r\n"),
    ("Content-Length and chunked", b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
], ids=["cl-negative", "cl-garbage", "cl-huge", "cl-twice", "cl-and-chunked"])
def test_content_length_hostile_framing_4xx(db, start_servers, name, headers):
    server = start_servers(db, args=("--idle-timeout", "2s"))[0]
    data = (b"POST /users/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Connection: close\r\n" + headers + b"\r\n2\r\n{}\r\n0\r\n\r\n")
    status, got, closed = send_raw(server, data, timeout=10)
    record("framing", name, (f"{status}" if status else "no reply") +
           (", closed" if closed else ", left open"))
    assert closed
    assert status is None or 400 <= status < 500, got[:300]
    assert db.count_users() == 0
    assert_healthy(server)


@HTTP_LAYER
def test_pipelined_three_requests_answered_in_order(db, start_servers):
    server = start_servers(db, args=FAST_HASH)[0]
    body = json.dumps(user_body("piper")).encode()
    reqs = [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-1\r\n\r\n",
        # A registration: suspended while a worker hashes, with the next request queued.
        b"POST /users/register/ HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-2\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body),
        b"GET /users/me/ HTTP/1.1\r\nHost: x\r\nX-Request-ID: pipe-3\r\n\r\n",
    ]
    sock = connect(server)
    try:
        sock.sendall(b"".join(reqs))  # one write
        f = sock.makefile("rb")
        got = [read_response(f) for _ in range(3)]
        f.close()
    finally:
        sock.close()
    statuses = [(s, h.get("x-request-id")) for s, h, _ in got]
    record("pipelining", "GET /healthz + POST register + GET /users/me/ in one write",
           " ".join(str(s) for s, _ in statuses))
    assert statuses == [(200, "pipe-1"), (201, "pipe-2"), (401, "pipe-3")], statuses
    assert json.loads(got[1][2])["user"]["username"] == "piper"
    assert json.loads(got[2][2])["code"] == "not_authenticated"
    assert db.count_users() == 1


# --------------------------------------------------------------------------- hostile JSON

def reg_json(**over):
    """A valid registration body as text, with `over` members spliced in raw (not JSON-encoded)."""
    base = {"username": "jason", "email": "jason@example.com", "password": PASSWORD}
    parts = [f'"{k}": {json.dumps(v)}' for k, v in base.items() if k not in over]
    parts += [f'"{k}": {v}' for k, v in over.items()]
    return "{" + ", ".join(parts) + "}"


B = str.encode
HOSTILE_JSON = [
    # name, body bytes, expected code (None: any 400 error)
    ("duplicate key username", B('{"username": "a", "username": "b", "email": "a@example.com",'
                                 f' "password": "{PASSWORD}"}}'), "malformed_json"),
    ("duplicate key password", B(f'{{"username": "dupe", "email": "d@example.com", "password": '
                                 f'"{PASSWORD}", "password": "other-Pass-77"}}'), "malformed_json"),
    ("number 1e999999", B(reg_json(bio="1e999999")), None),
    ("number -1e999999 (extra member)", B(reg_json(extra="-1e999999")), None),
    ("number 123456789012345678901234567890", B(reg_json(bio="123456789012345678901234567890")),
     None),
    ("integer overflow (extra member)", B(reg_json(extra="123456789012345678901234567890")), None),
    ("overlong UTF-8 C0 AF in username", b'{"username": "ab\xc0\xaf", "email": "a@example.com",'
     b' "password": "' + B(PASSWORD) + b'"}', "malformed_json"),
    ("overlong UTF-8 E0 80 AF in password", b'{"username": "abc", "email": "a@example.com",'
     b' "password": "x\xe0\x80\xafLong-enough-9"}', "malformed_json"),
    ("overlong UTF-8 F0 80 80 AF in bio", B(reg_json(bio='"'))[:-2] + b'\xf0\x80\x80\xaf"}',
     "malformed_json"),
    ('lone surrogate "\\ud800" in username', B(reg_json(username='"ab\\ud800"')),
     "malformed_json"),
    ('lone surrogate "\\udc00" in bio', B(reg_json(bio='"x\\udc00y"')), "malformed_json"),
    ('high surrogate + "A" "\\ud800\\u0041"', B(reg_json(password='"\\ud800\\u0041Long-pass-9"')),
     "malformed_json"),
    ("UTF-8-encoded surrogate ED B0 80", b'{"username": "ab\xed\xb0\x80", "email": "a@example.com",'
     b' "password": "' + B(PASSWORD) + b'"}', "malformed_json"),
]


@HTTP_LAYER
@pytest.mark.parametrize("path", [REGISTER, LOGIN], ids=["register", "login"])
@pytest.mark.parametrize("name, data, code", HOSTILE_JSON, ids=[c[0] for c in HOSTILE_JSON])
def test_hostile_json_400(db, start_servers, path, name, data, code):
    server = start_servers(db, args=FAST_HASH)[0]
    r = server.post(path, data=data, headers={"Content-Type": "application/json"})
    record("json", f"{path} {name}", status_of(r))
    if code is not None:
        assert_error(r, 400, code)
    else:
        assert_error(r, 400, r.json().get("code"))
        assert r.json()["code"] in ("malformed_json", "invalid"), r.text
    assert db.count_users() == 0
    assert_healthy(server)


# --------------------------------------------------------------------------- injection-looking text

HOSTILE_STRINGS = [
    "'; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "Robert'); DROP TABLE profiles;--",
    "\" OR 1=1 -- \\",
    "1'; SELECT pg_sleep(10); --",
    "%s%n%x%d {0} ${jndi:ldap://x}",
    "</script><img src=x onerror=alert(1)>\u2028\u2029",
    "x\\u0000y \\\" \t\r\n end",
]


def test_injection_looking_strings_stored_verbatim_returned_as_json(db, start_servers):
    """Both backends: these strings go through each backend's SQL (bound parameters)."""
    server = start_servers(db, args=FAST_HASH)[0]
    for i, text in enumerate(HOSTILE_STRINGS):
        name = f"inj{i}"
        r = server.register(user_body(name, bio=text))
        user = assert_created(r, name)
        token = token_of(server, name)
        me = server.get(ME, headers=auth(token))
        assert me.headers.get("Content-Type", "").startswith("application/json"), me.headers
        body = assert_me(me, username=name)
        assert body["profile"]["bio"] == text, (text, me.content)
        assert json.loads(me.content)["profile"]["bio"] == text
        assert db.user(user["id"])["bio"] == text
        # The same through PATCH (an UPDATE instead of an INSERT).
        r = server.patch(ME, json={"bio": text[::-1]}, headers=auth(token))
        assert_me(r, bio=text[::-1])
        assert db.user(user["id"])["bio"] == text[::-1]
        record(f"injection[{db.backend}]", f"bio {text!r}",
               f"register 201, GET me: equal; PATCH {r.status_code}: equal")
    # An email with quotes and an SQL-looking login name.
    email = "o'brien'--@example.com"
    r = server.register(user_body("obrien", email=email))
    assert_created(r, "obrien", email)
    record(f"injection[{db.backend}]", f"email {email!r}", "201, stored as typed")
    r = server.post(LOGIN, json={"username": "admin' OR '1'='1", "password": "x' OR '1'='1"})
    record(f"injection[{db.backend}]", "login username \"admin' OR '1'='1\"", status_of(r))
    assert_error(r, 400, "invalid_credentials")
    r = server.post(LOGIN, json={"email": "' OR 1=1 --@example.com", "password": PASSWORD})
    record(f"injection[{db.backend}]", "login email \"' OR 1=1 --@example.com\"", status_of(r))
    assert_error(r, 400, "invalid_credentials")
    # The tables are all still there, and hold exactly these accounts.
    assert db.count_users() == len(HOSTILE_STRINGS) + 1
    assert db.scalar("SELECT COUNT(*) FROM profiles") == len(HOSTILE_STRINGS) + 1
    db.assert_invariants()
    assert_healthy(server)


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP framing: no database involved
def test_issue_14_percent_00_in_path_400_not_a_truncated_route(server):
    """Issue 14, item 12: `/metrics%00` was served as `/metrics` (past nginx's exact
    `location = /metrics` block) and `/healthz%00/x` as `/healthz`."""
    for path in ("/metrics%00", "/healthz%00/x", "/users/me/%00"):
        assert_error(raw_request(server, request_head(server, "GET", path, {})), 400,
                     "bad_request")
    r = raw_request(server, request_head(server, "GET", "/healthz?x=%00", {}))
    assert r.status_code == 200, r.status_code  # a query argument is not the route


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP framing: no database involved
def test_issue_14_content_length_with_transfer_encoding_400_close(server, db):
    """Issue 14, item 12: Content-Length together with Transfer-Encoding (RFC 9112
    6.1) was served with the chunked body: 400 and close, nothing stored."""
    body = json.dumps({"username": "smuggle", "email": "s@example.com",
                       "password": "correct-Horse-battery-9"}).encode()
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    r = raw_request(server, request_head(server, "POST", "/users/register/", {
        "Content-Type": "application/json", "Content-Length": len(chunked),
        "Transfer-Encoding": "chunked"}) + chunked)
    assert_error(r, 400, "bad_request")
    assert r.headers.get("Connection", "").lower() == "close", r.headers
    assert db.count_users() == 0


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP framing: no database involved
@pytest.mark.parametrize("coding", ["gzip", "gzip, chunked", "identity", "chunked;q=1"])
def test_issue_14_unknown_transfer_encoding_501_at_once(server, db, coding):
    """Issue 14, item 12: a Transfer-Encoding other than chunked (RFC 9112 6.1) was read
    until the connection closed (a 30 s hang): 501 at once, and close."""
    head = request_head(server, "POST", "/users/register/", {
        "Content-Type": "application/json", "Transfer-Encoding": coding})
    t0 = time.monotonic()
    status, got, closed = send_raw(server, head + b"5\r\nhello\r\n", timeout=5)
    took = time.monotonic() - t0
    record("framing", f"Transfer-Encoding: {coding}", f"{status}, closed {closed}, {took:.2f} s")
    assert status == 501, got[:200]
    assert b'"code":"not_implemented"' in got.replace(b" ", b""), got
    assert closed and took < 2, (closed, took)
    assert db.count_users() == 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_issue_14_two_transfer_encoding_headers_400(server):
    r = raw_request(server, b"POST /users/register/ HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    b"application/json\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
                    b"chunked\r\n\r\n0\r\n\r\n")
    assert_error(r, 400, "bad_request")


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP framing: no database involved
@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: x\nAccept: */*\r\n\r\n",
    b"GET /healthz HTTP/1.1\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/1.1\nHost: x\nAccept: */*\n\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ab\x00cd\r\nAccept: */*\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ab\x00cd\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\x00.evil\r\n\r\n",
    b"POST /users/login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 2\x00 99\r\n\r\n{}",
], ids=["bare-lf-header", "bare-lf-request-line", "bare-lf-everywhere", "nul-in-value",
        "nul-in-last-value", "nul-in-host", "nul-in-content-length"])
def test_issue_14_bare_lf_and_nul_in_a_header_400_close(server, head):
    """Issue 14, item 12: libmicrohttpd 0.9.75 took a bare LF as a line end and cut a
    header value at a NUL without a sign (Host: x<NUL>.evil was served as Host: x): a
    proxy reading them otherwise could be smuggled past. 400 and close."""
    r = raw_request(server, head)
    assert_error(r, 400, "bad_request")
    assert r.headers.get("Connection", "").lower() == "close", r.headers


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nAccept: */*   \r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost:x\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
    b"GET /healthz HTTP/1.0\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 300)
                                                    for i in range(40)) + b"\r\n",
], ids=["trailing-space", "no-space-empty-tab", "http-1.0-no-headers", "12-kib-of-headers"])
def test_issue_14_well_formed_heads_still_served(server, head):
    assert raw_request(server, head).status_code == 200


@pytest.mark.parametrize("backend", ["sqlite"])  # HTTP framing: no database involved
@pytest.mark.parametrize("head", [
    b"GET /healthz HTTP/1.1\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
], ids=["no-host", "two-hosts"])
def test_issue_14_header_block_faults_400_close(server, head):
    """Issue 14, item 12: a missing or repeated Host in HTTP/1.1 (RFC 9112 3.2) was
    served."""
    r = raw_request(server, head)
    assert_error(r, 400, "bad_request")
    assert r.headers.get("Connection", "").lower() == "close", r.headers


@pytest.mark.parametrize("backend", ["sqlite"])
def test_issue_14_http_1_0_without_host_still_served(server):
    r = raw_request(server, b"GET /healthz HTTP/1.0\r\n\r\n")
    assert r.status_code == 200, r.status_code
