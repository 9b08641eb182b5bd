"""
A PostgreSQL connection frozen mid-session (issue 9, item 4; review §6.2): a
TCP relay between roster and the throwaway cluster stops forwarding while
keeping both sockets open, as a network partition or a hung pooler would.
No database work runs on an I/O thread, so /healthz keeps answering at once;
requests waiting for a database worker get 503 + Retry-After after
--db-queue-timeout; once the relay forwards again everything recovers
without a restart.
"""

import select
import socket
import threading
import time

import pytest
import requests

from conftest import (FAST_HASH, ME, assert_created, assert_error, assert_me, auth, token_of,
                      user_body)

HEALTHZ_MAX = 0.1  # seconds, each /healthz during the freeze
FREEZE = 7.0  # seconds: longer than --db-queue-timeout
ME_DEADLINE = 15.0  # seconds: GET /users/me/ must get its 503 within this
RECOVER_WITHIN = 15.0


class Relay:
    """127.0.0.1:<port> -> 127.0.0.1:<target>, one pair of pump threads per connection.
    freeze() stops forwarding in both directions with every socket kept open (new
    connections are accepted and held the same way); thaw() resumes."""

    def __init__(self, target):
        self.target = target
        self.forwarding = threading.Event()
        self.forwarding.set()
        self.closed = threading.Event()
        self.socks = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while not self.closed.is_set():
                if not self.forwarding.wait(0.1):
                    continue
                if not select.select([src], [], [], 0.05)[0] or not self.forwarding.is_set():
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        self.forwarding.clear()

    def thaw(self):
        self.forwarding.set()

    def close(self):
        self.closed.set()
        self.forwarding.set()
        self.listener.close()
        with self.lock:
            for s in self.socks:
                s.close()


@pytest.fixture
def frozen_setup(db, start_servers, pg_cluster):
    """A server on the relay with one logged-in user: (server, relay, token)."""
    relay = Relay(pg_cluster.port)
    url = db.url.replace(f":{pg_cluster.port}/", f":{relay.port}/")
    assert url != db.url, url
    relayed = type(db)(pg_cluster, db.name, db.dir)
    relayed.url = url
    server = start_servers(relayed, 1, ["--threads", "1", "--db-workers", "2",
                                        "--db-queue-timeout", "3s", *FAST_HASH])[0]
    assert_created(server.register(user_body("frozen")))
    token = token_of(server, "frozen")
    assert_me(server.get(ME, headers=auth(token)), username="frozen")
    try:
        yield server, relay, token
    finally:
        relay.thaw()  # whatever happened, the server can finish and stop
        time.sleep(0.2)
        server.stop_checked()
        relay.close()


def get_me(server, token, out, i, timeout):
    t0 = time.monotonic()
    try:
        r = requests.get(server.url + ME, headers=auth(token), timeout=timeout)
    except requests.RequestException as e:
        r = e
    out[i] = (r, time.monotonic() - t0)


@pytest.mark.parametrize("backend", ["postgres"])
def test_pg_frozen_healthz_fast_queued_503_then_recovers(frozen_setup):
    server, relay, token = frozen_setup
    relay.freeze()
    n = 6  # 2 database workers block on the frozen connection; the others wait in the queue
    results = [None] * n
    threads = [threading.Thread(target=get_me, args=(server, token, results, i, 60), daemon=True)
               for i in range(n)]
    for th in threads:
        th.start()
    slow = []
    probes = 0
    with requests.Session() as s:
        t_end = time.monotonic() + FREEZE
        while time.monotonic() < t_end:
            t0 = time.monotonic()
            r = s.get(server.url + "/healthz", timeout=5)
            took = time.monotonic() - t0
            probes += 1
            assert r.status_code == 200, r.text
            if took > HEALTHZ_MAX:
                slow.append(round(took, 3))
            time.sleep(0.02)
    queued = [(r, t) for r, t in (x for x in results if x is not None)
              if not isinstance(r, Exception) and r.status_code == 503]
    print(f"freeze: {probes} /healthz probes, slower than {HEALTHZ_MAX}s: {slow}; "
          f"/users/me/ answered 503 during the freeze: {len(queued)} of {n} "
          f"after {[round(t, 2) for _, t in queued]}s")
    assert not slow, f"/healthz slower than {HEALTHZ_MAX}s during the freeze: {slow}"
    assert len(queued) >= n - 2, f"only {len(queued)} queued /users/me/ got 503: {results}"
    for r, took in queued:
        assert_error(r, 503, "unavailable")
        assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers
        assert took < ME_DEADLINE, took

    relay.thaw()
    for th in threads:
        th.join(timeout=RECOVER_WITHIN)
    assert not any(th.is_alive() for th in threads), "a /users/me/ still hangs after the thaw"
    deadline = time.monotonic() + RECOVER_WITHIN
    while True:
        r = server.get(ME, headers=auth(token))
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert_me(r, username="frozen")
    assert server.get("/readyz").status_code == 200
    assert_created(server.register(user_body("thawed")))
    assert token_of(server, "thawed")


@pytest.mark.parametrize("backend", ["postgres"])
def test_pg_frozen_me_on_a_worker_503_within_deadline(frozen_setup):
    server, relay, token = frozen_setup
    relay.freeze()
    out = [None]
    get_me(server, token, out, 0, ME_DEADLINE)
    r, took = out[0]
    assert not isinstance(r, Exception), f"no answer within {ME_DEADLINE}s: {r!r}"
    assert_error(r, 503, "unavailable")
    assert took < ME_DEADLINE
