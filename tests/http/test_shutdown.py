"""
Shutdown order (issue 9, item 3): SIGTERM while keep-alive clients keep
sending. The server stops accepting, drains in-flight requests (replies then
carry `Connection: close`), stops its worker pools (new work: 503), stops the
daemon and only then frees the pools. Under the ASan build a request served
between the pools being freed and the daemon stopping shows as a
heap-use-after-free in pool_depth or pool_reserve; conftest's stop check scans
stderr for sanitizer reports and requires exit 0.
"""

import http.client
import json
import signal
import threading
import time

import pytest

from conftest import FAST_HASH, LOGIN, PASSWORD, assert_created, user_body

ROUNDS = 20
LOAD_BEFORE_TERM = 0.3  # seconds of load before SIGTERM, each round
CLIENT_TIMEOUT = 5  # seconds: an answer slower than this is a hang, not a clean refusal
# How a connection may end while the server stops: refused once the listening socket is
# shut down, or closed/reset by the server between two requests.
CLEAN = (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def client(port, method, path, body, headers, out, stop):
    """Loops `method path` on one keep-alive connection; records a status or an exception.
    Reconnects after a `Connection: close` reply; stops at the first refused connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        while not stop.is_set():
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                out.append((resp.status, (resp.getheader("Connection") or "").lower()))
            except Exception as e:  # noqa: BLE001 -- classified by the test
                out.append((e, ""))
                conn.close()
                if isinstance(e, ConnectionRefusedError) or not isinstance(e, CLEAN):
                    return
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    finally:
        conn.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sigterm_keepalive_clients_no_use_after_free_exit_0(db, start_servers):
    login_body = json.dumps({"username": "shut", "password": PASSWORD})
    json_headers = {"Content-Type": "application/json"}
    closes = 0
    started = time.monotonic()
    for rnd in range(ROUNDS):
        server = start_servers(db, 1, ["--threads", "2", "--hash-workers", "2",
                                       "--shutdown-timeout", "2s", *FAST_HASH])[0]
        if rnd == 0:
            assert_created(server.register(user_body("shut")))
        stop = threading.Event()
        results = [[] for _ in range(4)]
        specs = [("GET", "/metrics", None, {}), ("GET", "/metrics", None, {}),
                 ("POST", LOGIN, login_body, json_headers),
                 ("POST", LOGIN, login_body, json_headers)]
        threads = [threading.Thread(target=client, daemon=True,
                                    args=(server.port, *spec, results[i], stop))
                   for i, spec in enumerate(specs)]
        for th in threads:
            th.start()
        time.sleep(LOAD_BEFORE_TERM)
        server.proc.send_signal(signal.SIGTERM)  # our own child
        server.proc.wait(timeout=15)
        stop.set()
        for th in threads:
            th.join(timeout=CLIENT_TIMEOUT + 5)
        assert not any(th.is_alive() for th in threads), f"round {rnd}: a client hung"
        server.stop_checked()  # exit 0, no sanitizer report, every stderr line JSON

        for (method, path, _, _), res in zip(specs, results):
            statuses = [s for s, _ in res if isinstance(s, int)]
            errors = [s for s, _ in res if not isinstance(s, int)]
            assert statuses, f"round {rnd}: {method} {path} never answered: {res[:5]}"
            allowed = {200} if path == "/metrics" else {200, 503}
            assert set(statuses) <= allowed, f"round {rnd}: {method} {path}: {set(statuses)}"
            unclean = [e for e in errors if not isinstance(e, CLEAN)]
            assert not unclean, f"round {rnd}: {method} {path}: {unclean!r}"
            closes += sum(1 for s, c in res if isinstance(s, int) and c == "close")
    took = time.monotonic() - started
    print(f"{ROUNDS} rounds in {took:.1f}s; replies with Connection: close: {closes}")
    assert closes > 0, "no reply during a drain carried Connection: close"
