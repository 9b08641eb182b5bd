"""
Black-box HTTP tests of roster: real `roster serve` processes on a fresh
database per test, driven with requests. The binary comes from ROSTER_BIN
(meson sets it). Every server started here is stopped with SIGTERM at teardown;
the test fails when it does not exit 0 within 15 s, when its stderr holds a
sanitizer report, or when a stderr line is not JSON.

Both backends. The `backend` fixture is parametrized over "sqlite" and
"postgres" (test ids `...[sqlite]` / `...[postgres]`), and `make_db`, `db`,
`server` and `fast_server` depend on it, so every test using them runs twice.

- `make_db(migrate=True, create=True) -> Db`: a new database for this test.
  SQLite: a file in its own directory under tmp_path. PostgreSQL: a new
  database `test_<n>` in the session's throwaway cluster (dropped after the
  test); a migrated one is a copy of a database that `roster migrate` migrated
  at the start of the session, made ahead in the background. `migrate=False`:
  no schema (SQLite: no file yet; PostgreSQL: an empty database); with
  `create=False` too, on PostgreSQL the database does not exist (`roster
  migrate` makes a missing SQLite file, never a missing PostgreSQL database).
- `Db`: `.url` (the --db value), `.backend` ("sqlite" | "postgres"), `.dir` (a
  directory for this database's server logs), `.path` (SQLite file) or
  `.name` and `.cluster` (PostgreSQL), `.migrate()`, `.query(sql, *params)`,
  `.scalar(...)`, `.execute(...)` (one autocommitted write, returns rowcount),
  `.connect()` (a DB-API connection, autocommit), `.count_users()`, `.user(id)`,
  `.invitation(id)`, `.assert_invariants()`. SQL uses `?` placeholders on both.
  `query` returns the same Python values on both: booleans as 0/1 ints and
  timestamps as the RFC 3339 UTC text SQLite stores
  (`2024-05-01T12:00:00.123456Z`); bind Python booleans (`is_active = ?`, False),
  never integer literals, when writing boolean columns.
- `pg_cluster` (session): the throwaway PostgreSQL cluster (pgcluster.py),
  created at the first PostgreSQL test and removed at the end of the session,
  also when tests fail or the run is interrupted (SIGINT/SIGTERM). For fault
  tests: `.stop(mode="fast"|"immediate")`, `.start()` (same port and data),
  `.running` (the postmaster is alive), `.port`, `.url(dbname)`,
  `.connect(dbname)` (psycopg2, autocommit, as superuser). `make_db` starts a
  stopped cluster again, so a fault test that fails midway breaks no other.
- `start_servers(db, n=1, args=(), user=None) -> [Server]` (`user`: a passwd entry
  to run them as), `server`, `fast_server`.

Slow end-to-end scenarios carry `@pytest.mark.scenario`: they run once per `make
test`, on the development build; the sanitizer build deselects them (meson sets
ROSTER_SANITIZED=1 there), and their C paths are covered under the sanitizers
by the faster tests.

Helpers used by the test modules live here too (`from conftest import ...`).
"""

import atexit
import collections
import datetime
import http.client
import json
import os
import re
import select
import signal
import socket
import sqlite3
import subprocess
import threading
import time

import pytest
import requests

import openapi_check
from pgcluster import DatabaseSupply, PgCluster

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.join(HERE, "..", "..", "build", "roster")
T = 30  # seconds: the timeout of every HTTP request
START_TIMEOUT = 10
STOP_TIMEOUT = 15
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "SUMMARY: UndefinedBehaviorSanitizer")
PASSWORD = "correct-Horse-battery-9"  # passes the policy for every test username
REGISTER = "/users/register/"
MSG_CREATED = "User registered successfully."
MSG_USERNAME_TAKEN = "Username already taken."
MSG_EMAIL_TAKEN = "Email already registered."
MSG_REQUIRED = "This field is required."

_run_reports = []  # lines shown in the terminal summary (per-run burst counts)


def roster_bin():
    path = os.environ.get("ROSTER_BIN") or DEFAULT_BIN
    if not os.access(path, os.X_OK):
        pytest.fail(f"roster binary not found: {path} (set ROSTER_BIN)", pytrace=False)
    return path


def roster_env():
    """The caller's environment without ROSTER_* settings, so flags decide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROSTER_")}
    env["ROSTER_RATE_LIMITS"] = "off"  # hundreds of sign-ups from 127.0.0.1 are the point here
    return env


def run_roster(*args, timeout=20):
    """Runs `roster ARGS...` to completion; subprocess kills it on timeout."""
    return subprocess.run([roster_bin(), *args], capture_output=True, text=True,
                          timeout=timeout, env=roster_env())


# --------------------------------------------------------------------------- database

BACKENDS = ("sqlite", "postgres")


def _pg_sql(sql):
    """`?` placeholders -> `%s` (outside quoted literals and identifiers), `%` -> `%%`."""
    out, quote = [], None
    for ch in sql:
        if quote:
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append("%%" if ch == "%" else ch)
    return "".join(out)


def _pg_value(v):
    """A PostgreSQL value as SQLite would return it: 0/1 for booleans, RFC 3339 text for times."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, datetime.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(datetime.timezone.utc)
        return v.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return v


class Db:
    """One test database; `query` reads it directly. See the module docstring."""

    backend = None
    INVITATION_COLUMNS = ("id", "inviter_id", "email", "email_key", "token_hash", "status",
                          "created_at", "expires_at", "accepted_at", "accepted_by")
    USER_COLUMNS = ("id", "username", "email", "username_key", "email_key", "password_hash",
                    "is_active", "is_admin", "role", "bio", "can_invite_teachers")

    def __init__(self, url, directory):
        self.url = url
        self.dir = directory

    def __repr__(self):
        return f"<Db {self.url}>"

    def migrate(self):
        r = run_roster("migrate", "--db", self.url)
        assert r.returncode == 0, f"roster migrate failed ({r.returncode}): {r.stderr}"
        return self

    def scalar(self, sql, *params):
        return self.query(sql, *params)[0][0]

    def count_users(self):
        return self.scalar("SELECT COUNT(*) FROM users")

    def invitation(self, inv_id):
        """One teacher_invitations row as a dict of INVITATION_COLUMNS."""
        rows = self.query(f"SELECT {', '.join(self.INVITATION_COLUMNS)}"
                          " FROM teacher_invitations WHERE id = ?", inv_id)
        assert len(rows) == 1, f"invitation {inv_id}: {len(rows)} rows"
        return dict(zip(self.INVITATION_COLUMNS, rows[0]))

    def user(self, user_id):
        """One user joined with its profile, as a dict of USER_COLUMNS."""
        rows = self.query(
            "SELECT u.id, u.username, u.email, u.username_key, u.email_key, u.password_hash,"
            " u.is_active, u.is_admin, p.role, p.bio, p.can_invite_teachers"
            " FROM users u LEFT JOIN profiles p ON p.user_id = u.id WHERE u.id = ?", user_id)
        assert len(rows) == 1, f"user {user_id}: {len(rows)} rows with profile join"
        return dict(zip(self.USER_COLUMNS, rows[0]))

    def assert_invariants(self):
        """I1 and I2: unique keys, every user exactly one profile, no orphan profile."""
        bad = self.query("SELECT u.id, COUNT(p.user_id) FROM users u"
                         " LEFT JOIN profiles p ON p.user_id = u.id"
                         " GROUP BY u.id HAVING COUNT(p.user_id) != 1")
        assert not bad, f"users without exactly one profile (id, profiles): {bad}"
        orphans = self.query("SELECT p.user_id FROM profiles p"
                             " LEFT JOIN users u ON u.id = p.user_id WHERE u.id IS NULL")
        assert not orphans, f"profiles without a user: {orphans}"
        for col in ("username_key", "email_key"):
            # NULL email_key: an account imported from Django without an email (0009)
            dup = self.query(f"SELECT {col}, COUNT(*) FROM users WHERE {col} IS NOT NULL"
                             f" GROUP BY {col} HAVING COUNT(*) > 1")
            assert not dup, f"duplicate {col}: {dup}"


class SqliteDb(Db):
    """A database file `path` (sqlite:PATH)."""

    backend = "sqlite"

    def __init__(self, path):
        super().__init__("sqlite:" + path, os.path.dirname(path))
        self.path = path

    def connect(self):
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def query(self, sql, *params):
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def execute(self, sql, *params):
        """One write in autocommit mode: no transaction stays open afterwards."""
        conn = self.connect()
        try:
            return conn.execute(sql, params).rowcount
        finally:
            conn.close()


class PgDb(Db):
    """Database `name` in `cluster` (postgresql://postgres@127.0.0.1:PORT/NAME)."""

    backend = "postgres"

    def __init__(self, cluster, name, directory):
        super().__init__(cluster.url(name), directory)
        self.cluster = cluster
        self.name = name

    def connect(self):
        """Autocommit; each statement sees what is committed when it starts."""
        return self.cluster.connect(self.name, options="-c statement_timeout=30000")

    def _run(self, sql, params, fetch):
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(_pg_sql(sql), params)
                if fetch:
                    return [tuple(_pg_value(v) for v in row) for row in cur.fetchall()]
                return cur.rowcount
        finally:
            conn.close()

    def query(self, sql, *params):
        return self._run(sql, params, True)

    def execute(self, sql, *params):
        """One statement in autocommit mode: no transaction stays open afterwards."""
        return self._run(sql, params, False)


# --------------------------------------------------------------------------- servers

def _scan_log(text):
    """Problems in a server's stderr: sanitizer reports, or lines that are not JSON."""
    if any(m in text for m in SANITIZER_MARKERS):
        lines = text.splitlines()
        first = next(i for i, l in enumerate(lines) if any(m in l for m in SANITIZER_MARKERS))
        return ["sanitizer report:\n" + "\n".join(lines[max(0, first - 5):first + 40])]
    bad = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            ok = isinstance(json.loads(line), dict)
        except ValueError:
            ok = False
        if not ok:
            bad.append(line)
    return [f"stderr lines that are not JSON objects: {bad[:5]!r}"] if bad else []


class Server:
    """One `roster serve` process with stderr in `log_path`; as the passwd entry `user`
    (pwd.struct_passwd) when given: root ignores file modes."""

    def __init__(self, db, log_path, args=(), user=None):
        self.db = db
        self.log_path = log_path
        self.args = list(args)
        self.port = None
        self.url = None
        self.stopped = False
        self._log = open(log_path, "wb")
        with open(log_path + ".stdout", "wb") as out:
            self.proc = subprocess.Popen(
                [roster_bin(), "serve", "--db", db.url, "--bind", "127.0.0.1:0", *self.args],
                stdin=subprocess.PIPE, stdout=out, stderr=self._log, env=roster_env(),
                **({"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
                   if user is not None else {}))
        self.proc.stdin.close()  # no input; and no dependence on /dev/null

    def log_text(self):
        with open(self.log_path, "r", encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_records(self):
        out = []
        for line in self.log_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def wait_listening(self):
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for rec in self.log_records():
                if rec.get("msg") == "listening" and isinstance(rec.get("port"), int):
                    self.port = rec["port"]
                    self.url = f"http://127.0.0.1:{self.port}"
                    return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        problems = self.stop()
        pytest.fail(f"roster serve did not log 'listening' within {START_TIMEOUT}s "
                    f"(exit {self.proc.returncode}); stderr:\n{self.log_text()[-3000:]}\n"
                    + "\n".join(problems), pytrace=False)

    def stop(self):
        """SIGTERM, wait, check. Returns a list of problems; idempotent."""
        if self.stopped:
            return []
        self.stopped = True
        problems = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # only this PID, which we started
                self.proc.wait()
                problems.append(f"did not exit within {STOP_TIMEOUT}s of SIGTERM; killed")
        self._log.close()
        if self.proc.returncode != 0 and not problems:
            problems.append(f"exit code {self.proc.returncode}, expected 0")
        problems += _scan_log(self.log_text())
        return [f"server {self.url or '(not listening)'} [{self.log_path}]: {p}" for p in problems]

    def stop_checked(self):
        problems = self.stop()
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

    # HTTP, each with a timeout
    def get(self, path, **kw):
        return requests.get(self.url + path, timeout=T, **kw)

    def post(self, path, **kw):
        return requests.post(self.url + path, timeout=T, **kw)

    def register(self, body, **kw):
        return self.post(REGISTER, json=body, **kw)

    def request(self, method, path, **kw):
        return requests.request(method, self.url + path, timeout=T, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's throwaway PostgreSQL cluster; removed at the end, whatever happens."""
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:  # meson's timeout: run the teardowns, as for Ctrl-C
        signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    try:
        cluster = PgCluster(max_connections=300).create()
    except Exception as e:  # noqa: BLE001 -- reported as the failure of every PG test
        pytest.fail(f"cannot create the throwaway PostgreSQL cluster: {e}", pytrace=False)
    atexit.register(cluster.remove)  # should the teardown below not run
    try:
        yield cluster
    finally:
        cluster.remove()
        atexit.unregister(cluster.remove)
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(params=BACKENDS)
def backend(request):
    """"sqlite" or "postgres": every test depending on it runs once per backend."""
    return request.param


@pytest.fixture(scope="session")
def _pg_supply(pg_cluster):
    """Fresh migrated databases: copies of one that `roster migrate` (the binary under
    test) migrated at the start of the session, made ahead in the background."""
    pg_cluster.create_database("roster_template")
    PgDb(pg_cluster, "roster_template", None).migrate()
    supply = DatabaseSupply(pg_cluster, "roster_template", "test_", ahead=6)
    yield supply
    supply.close()


_pg_unmigrated = [0]


@pytest.fixture
def _dropped_at_end():
    """PostgreSQL databases made by this test: [(supply, name)], handed back for dropping
    after every other fixture of the test (start_servers depends on this too, so its
    servers have stopped by then)."""
    made = []
    yield made
    for supply, name in made:
        supply.drop(name)


@pytest.fixture
def make_db(request, backend, tmp_path, _dropped_at_end):
    """make_db(migrate=True, create=True) -> Db: a new database for this test."""
    n = [0]

    def make(migrate=True, create=True):
        n[0] += 1
        d = tmp_path / f"db{n[0]}"
        d.mkdir()
        if backend == "sqlite":
            db = SqliteDb(str(d / "roster.db"))
            return db.migrate() if migrate else db
        cluster = request.getfixturevalue("pg_cluster")
        if not cluster.running:  # a fault test stopped it and did not start it again
            cluster.start()
        supply = request.getfixturevalue("_pg_supply")
        if migrate:
            name = supply.take()  # a copy of the migrated template
        else:
            _pg_unmigrated[0] += 1
            name = f"test_unmigrated_{_pg_unmigrated[0]}"
            if create:
                cluster.create_database(name)
        if migrate or create:
            _dropped_at_end.append((supply, name))
        return PgDb(cluster, name, str(d))
    return make


@pytest.fixture
def start_servers(_dropped_at_end):
    """start_servers(db, n=1, args=(), user=None) -> [Server]: n processes serving one
    database (as `user`, a passwd entry, when given)."""
    started = []

    def start(db, n=1, args=(), user=None):
        servers = []
        for _ in range(n):
            log = os.path.join(db.dir, f"serve{len(started)}.stderr")
            s = Server(db, log, args, user=user)
            started.append(s)
            servers.append(s)
        for s in servers:
            s.wait_listening()
        return servers

    yield start
    problems = []
    for s in reversed(started):
        problems += s.stop()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def db(make_db):
    return make_db()


@pytest.fixture
def server(db, start_servers):
    return start_servers(db)[0]


# --------------------------------------------------------------------------- assertions

def user_body(name, **over):
    body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD,
            "role": "explorer"}
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def assert_created(resp, username=None, email=None, role="explorer"):
    assert resp.status_code == 201, f"{resp.status_code} {resp.text}"
    body = resp.json()
    assert set(body) == {"message", "user"}, body
    assert body["message"] == MSG_CREATED
    user = body["user"]
    assert set(user) == {"id", "username", "email", "role"}, user
    assert isinstance(user["id"], int)
    if username is not None:
        assert user["username"] == username
    if email is not None:
        assert user["email"] == email
    assert user["role"] == role
    assert resp.headers.get("X-Request-ID")
    return user


def assert_error(resp, status, code, error=None):
    """A JSON error body with error, code and request_id (equal to X-Request-ID)."""
    assert resp.status_code == status, \
        f"expected {status} {code}, got {resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict), body
    assert body.get("code") == code, body
    assert isinstance(body.get("error"), str) and body["error"], body
    if error is not None:
        assert body["error"] == error, body
    assert isinstance(body.get("request_id"), str) and body["request_id"], body
    assert resp.headers.get("X-Request-ID") == body["request_id"], (resp.headers, body)
    return body


def assert_invalid(resp, *fields):
    """400 invalid whose `fields` names exactly `fields`; returns the fields dict."""
    body = assert_error(resp, 400, "invalid")
    got = body.get("fields")
    assert isinstance(got, dict), body
    assert set(got) == set(fields), body
    for msgs in got.values():
        assert isinstance(msgs, list) and msgs and all(isinstance(m, str) for m in msgs), body
    return got


def assert_healthy(server):
    r = server.get("/healthz")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ok"}


def outcome(resp):
    """'201', '400 email_taken', 'ConnectionError', ...: one key for counting."""
    if isinstance(resp, Exception):
        return type(resp).__name__
    try:
        code = resp.json().get("code")
    except ValueError:
        code = "non-json"
    return f"{resp.status_code} {code}" if code else str(resp.status_code)


def summary(line):
    """Prints `line` and shows it again in the run's terminal summary (the numbers a
    scenario measured: mails sent and lost, table sizes, timing medians)."""
    _run_reports.append(line)
    print(line)


def report(label, results):
    """Counts outcomes, records them for the terminal summary and prints them."""
    counts = dict(sorted(collections.Counter(outcome(r) for r in results).items()))
    line = f"{label}: {counts}"
    _run_reports.append(line)
    print(line)
    return counts


# --------------------------------------------------------------------------- the contract
# Every response from a local server (roster, or nginx in front of it) is checked
# against docs/openapi.yaml (openapi_check.py); a test fails at teardown for one the
# document does not describe.

_send = requests.Session.send


def _checked_send(self, request, **kw):
    resp = _send(self, request, **kw)
    url = requests.utils.urlparse(request.url)
    if url.hostname in ("127.0.0.1", "localhost", "::1") and not kw.get("stream") and \
            url.port not in openapi_check.foreign_ports:
        openapi_check.observe(request.method, request.path_url, resp.status_code, resp.headers,
                              resp.content)
    return resp


requests.Session.send = _checked_send


@pytest.fixture(autouse=True)
def _responses_match_openapi():
    openapi_check.take_problems()  # what came before this test is not its doing
    yield
    problems = openapi_check.take_problems()
    if problems:
        pytest.fail("responses the OpenAPI document does not describe:\n  " +
                    "\n  ".join(problems[:20]), pytrace=False)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "scenario: a slow end-to-end scenario that runs once per `make test`, on the "
        "development build; the sanitizer build (ROSTER_SANITIZED=1) deselects it, and its "
        "C paths are covered there by the faster tests")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("ROSTER_SANITIZED") != "1":
        return
    once = [i for i in items if i.get_closest_marker("scenario")]
    if once:
        config.hook.pytest_deselected(items=once)
        items[:] = [i for i in items if not i.get_closest_marker("scenario")]


def pytest_terminal_summary(terminalreporter):
    terminalreporter.section("OpenAPI")
    terminalreporter.write_line(f"{openapi_check.counts['validated']} responses validated "
                                f"against docs/openapi.yaml")
    if _run_reports:
        terminalreporter.section("roster burst outcomes (status -> count)")
        for line in _run_reports:
            terminalreporter.write_line(line)


# --------------------------------------------------------------------------- traffic

def burst(servers, bodies, path=REGISTER, during=None, headers=None):
    """
    Sends one POST per body at once: one thread and one Session (one connection,
    opened beforehand with GET /healthz) per request, released together by a
    barrier; request i goes to servers[i % len(servers)]. A body is a dict (sent
    as JSON) or bytes (sent as is with Content-Type: application/json).
    `during()` runs in the calling thread as soon as the requests are released.
    `headers` (optional) are sent with every POST.
    Returns (responses or exceptions in body order, during's result).
    """
    n = len(bodies)
    barrier = threading.Barrier(n + 1)
    results = [None] * n

    def worker(i):
        url = servers[i % len(servers)].url
        body = bodies[i]
        with requests.Session() as s:
            try:
                s.get(url + "/healthz", timeout=T)
            except requests.RequestException:
                pass  # the POST below reconnects and reports
            barrier.wait(timeout=T)
            try:
                if isinstance(body, bytes):
                    results[i] = s.post(url + path, data=body, timeout=T,
                                        headers={"Content-Type": "application/json",
                                                 **(headers or {})})
                else:
                    results[i] = s.post(url + path, json=body, timeout=T, headers=headers)
            except requests.RequestException as e:
                results[i] = e

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(timeout=T)
    during_result = during() if during else None
    for t in threads:
        t.join(timeout=2 * T)
    assert not any(t.is_alive() for t in threads), "burst threads did not finish"
    return results, during_result


class RawResponse:
    """The parts of a requests.Response that the assertions use."""

    def __init__(self, status, headers, content):
        self.status_code = status
        self.headers = requests.structures.CaseInsensitiveDict(headers)
        self.content = content
        self.text = content.decode("utf-8", errors="replace")

    def json(self):
        return json.loads(self.content)


def raw_request(server, head, chunks=(), pause=0.002):
    """
    Sends `head` (request line and headers, ending in a blank line) and then the
    byte chunks on one socket, stopping early once the server has answered or
    closed. Returns a RawResponse.
    """
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=T)
    try:
        sock.sendall(head)
        for c in chunks:
            if select.select([sock], [], [], 0)[0]:
                break  # an early answer: stop sending
            try:
                sock.sendall(c)
            except (BrokenPipeError, ConnectionResetError):
                break
            if pause:
                time.sleep(pause)
        method, target = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")[:2]
        resp = http.client.HTTPResponse(sock, method=method)
        resp.begin()
        out = RawResponse(resp.status, resp.getheaders(), resp.read())
        openapi_check.observe(method, target, out.status_code, out.headers, out.content)
        return out
    finally:
        sock.close()


def request_head(server, method, path, headers):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# --------------------------------------------------------------------------- accounts
# Sessions, profiles, invitations and the admin CLI (test_session.py,
# test_invitations.py, test_cli.py).

FAST_HASH = ("--hash-memory", "8192", "--hash-passes", "1")  # where hashing cost is not the point
LOGIN = "/users/login/"
LOGOUT = "/users/logout/"
ME = "/users/me/"
INVITATIONS = "/users/invitations/"
ACCEPT = "/users/invitations/accept/"
TOKEN_RE = re.compile(r"^[0-9a-f]{64}$")
RFC3339_RE = re.compile(r"^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")

# docs/api.md, "Exact messages (roster)"
MESSAGES = {
    "invalid_credentials": "Invalid credentials.",
    "invitation_invalid": "Invalid invitation token.",
    "invitation_expired": "This invitation has expired.",
    "invitation_used": "This invitation has already been used.",
    "invitation_revoked": "This invitation has been revoked.",
    "not_authenticated": "Authentication credentials were not provided or are not valid.",
    "forbidden": "You do not have permission to perform this action.",
    "invitation_email_mismatch": "This invitation was issued for a different email address.",
    "not_found": "Not found.",
    "invitation_pending": "An invitation is already pending for this email.",
    "conflict": "The invitation is not in a state that allows this.",
    "username_taken": MSG_USERNAME_TAKEN,
    "email_taken": MSG_EMAIL_TAKEN,
}
STATUS_OF = {"invalid_credentials": 400, "invitation_invalid": 400, "invitation_expired": 400,
             "invitation_used": 400, "invitation_revoked": 400, "not_authenticated": 401,
             "forbidden": 403, "invitation_email_mismatch": 403, "not_found": 404,
             "invitation_pending": 409, "conflict": 409, "username_taken": 400,
             "email_taken": 400}


def assert_code(resp, code):
    """The documented status and exact message of `code` (see MESSAGES)."""
    body = assert_error(resp, STATUS_OF[code], code, MESSAGES[code])
    if code == "not_authenticated":
        www = resp.headers.get("WWW-Authenticate", "")
        assert www.split(" ")[0].lower() == "token", f"WWW-Authenticate: {www!r}"
    return body


def parse_time(text):
    """An RFC 3339 timestamp -> seconds since the epoch (float)."""
    assert isinstance(text, str) and RFC3339_RE.match(text), f"not RFC 3339: {text!r}"
    return datetime.datetime.fromisoformat(
        re.sub(r"[Zz]$", "+00:00", text).replace("t", "T")).timestamp()


def auth(token, scheme="Token"):
    return {"Authorization": f"{scheme} {token}"}


def login(server, password=PASSWORD, **ident):
    """POST /users/login/ with `ident` (username= or email=); asserts 200, returns the body."""
    r = server.post(LOGIN, json={**ident, "password": password})
    assert r.status_code == 200, f"login {ident}: {r.status_code} {r.text}"
    body = r.json()
    assert set(body) == {"token", "expires_at"}, body
    assert TOKEN_RE.match(body["token"]), body
    parse_time(body["expires_at"])
    return body


def token_of(server, username, password=PASSWORD):
    return login(server, password, username=username)["token"]


def assert_me(resp, username=None, email=None, role=None, bio=None, can_invite=None):
    """200 with the documented /users/me/ shape; returns the body."""
    assert resp.status_code == 200, f"{resp.status_code} {resp.text}"
    me = resp.json()
    assert set(me) == {"id", "username", "email", "email_verified", "date_joined", "profile",
                       "first_name", "last_name"}, me
    assert isinstance(me["email_verified"], bool), me
    assert isinstance(me["first_name"], str) and isinstance(me["last_name"], str), me
    assert isinstance(me["id"], int) and not isinstance(me["id"], bool), me
    parse_time(me["date_joined"])
    assert set(me["profile"]) == {"role", "bio", "can_invite_teachers"}, me
    assert isinstance(me["profile"]["can_invite_teachers"], bool), me
    for key, want in (("username", username), ("email", email)):
        if want is not None:
            assert me[key] == want, me
    for key, want in (("role", role), ("bio", bio), ("can_invite_teachers", can_invite)):
        if want is not None:
            assert me["profile"][key] == want, me
    return me


def cli(db, *args, stdin=None, timeout=30):
    """`roster ARGS... --db URL` with `stdin` as input; cheap hashing where the CLI honours it."""
    env = roster_env()
    env["ROSTER_HASH_MEMORY_KIB"] = "8192"
    env["ROSTER_HASH_PASSES"] = "1"
    return subprocess.run([roster_bin(), *args, "--db", db.url], input=stdin if stdin else "",
                          capture_output=True, text=True, timeout=timeout, env=env)


def cli_ok(db, *args, stdin=None):
    r = cli(db, *args, stdin=stdin)
    assert r.returncode == 0, f"roster {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


def cli_json(db, *args, stdin=None):
    """Runs a command with --json; asserts exit 0 and returns the parsed stdout."""
    r = cli_ok(db, *args, "--json", stdin=stdin)
    try:
        return json.loads(r.stdout)
    except ValueError:
        pytest.fail(f"roster {' '.join(args)} --json: stdout is not JSON: {r.stdout!r}",
                    pytrace=False)


def cli_user(db, username, *flags, email=None, password=PASSWORD):
    """`roster user create` with --password-stdin and --json; returns the user JSON."""
    return cli_json(db, "user", "create", username, "--email", email or f"{username}@example.com",
                    *flags, "--password-stdin", stdin=password + "\n")


def invite(server, token, email):
    """POST /users/invitations/ as the holder of `token`; asserts 201, returns the body."""
    r = server.post(INVITATIONS, json={"email": email}, headers=auth(token))
    assert r.status_code == 201, f"invite {email}: {r.status_code} {r.text}"
    return r.json()


@pytest.fixture
def fast_server(db, start_servers):
    """One server on `db` with cheap password hashing."""
    return start_servers(db, args=FAST_HASH)[0]
