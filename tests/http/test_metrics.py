"""
GET /metrics: a strict parse of the Prometheus text exposition (format 0.0.4),
naming conventions, and counters that equal exactly the requests the test made
(registrations, logins, 404s, hash-queue rejections under saturation).
"""

import contextlib
import math
import os
import re
import socket
import threading
import time

import requests

import pytest

from conftest import (FAST_HASH, LOGIN, REGISTER, T, assert_created, assert_error, burst, report,
                      run_roster, user_body)

SLOW_HASH = ["--hash-memory", "65536", "--hash-passes", "4"]
METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SNAKE_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


class ExpositionError(AssertionError):
    pass


def _value(text, where):
    if text in ("+Inf", "Inf"):
        return math.inf
    if text == "-Inf":
        return -math.inf
    if text == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"{where}: not a sample value: {text!r}")
    return float(text)


def _labels(text, where):
    """`a="x",b="y\\"z"` (optional trailing comma) -> dict; strict about quoting and escapes."""
    labels, i, n = {}, 0, len(text)
    while i < n:
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(text, i)
        if not m:
            raise ExpositionError(f"{where}: bad label name at {text[i:]!r}")
        name = m.group(0)
        i = m.end()
        if text[i:i + 2] != '="':
            raise ExpositionError(f"{where}: label {name} is not followed by =\"")
        i += 2
        value = []
        while True:
            if i >= n:
                raise ExpositionError(f"{where}: unterminated value of label {name}")
            c = text[i]
            if c == "\\":
                if i + 1 >= n or text[i + 1] not in ESCAPES:
                    raise ExpositionError(f"{where}: bad escape in label {name}: {text[i:i + 2]!r}")
                value.append(ESCAPES[text[i + 1]])
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise ExpositionError(f"{where}: raw newline in label {name}")
            else:
                value.append(c)
                i += 1
        if name in labels:
            raise ExpositionError(f"{where}: label {name} twice")
        labels[name] = "".join(value)
        if i < n:
            if text[i] != ",":
                raise ExpositionError(f"{where}: expected ',' after label {name}: {text[i:]!r}")
            i += 1
    return labels


def _family_of(sample, types):
    """The family a sample name belongs to (histogram/summary suffixes stripped)."""
    for suffix, kinds in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = sample[:-len(suffix)]
        if sample.endswith(suffix) and types.get(base) in kinds:
            return base
    return sample


def parse_exposition(text):
    """
    Strict parse. Returns (families, samples): families maps a name to
    {"type", "help"}; samples is a list of (name, labels dict, value). Raises
    ExpositionError for anything the 0.0.4 text format does not allow, for a
    sample whose family has no TYPE, a TYPE after its samples, a family whose
    samples are not contiguous, and a duplicate sample.
    """
    if not text.endswith("\n"):
        raise ExpositionError("the exposition does not end with a newline")
    families, samples, seen = {}, [], set()
    types = {}
    order, finished = [], set()
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {no} {line!r}"
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME_RE.match(name):
                    raise ExpositionError(f"{where}: bad metric name")
                fam = families.setdefault(name, {"type": None, "help": None})
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ExpositionError(f"{where}: bad TYPE")
                    if fam["type"] is not None:
                        raise ExpositionError(f"{where}: second TYPE for {name}")
                    if name in order:
                        raise ExpositionError(f"{where}: TYPE after samples of {name}")
                    fam["type"] = types[name] = parts[3]
                else:
                    if fam["help"] is not None:
                        raise ExpositionError(f"{where}: second HELP for {name}")
                    doc = parts[3] if len(parts) == 4 else ""
                    if re.search(r"\\[^\\n]|\\$", doc):
                        raise ExpositionError(f"{where}: bad escape in HELP")
                    fam["help"] = doc
            continue  # other comments are allowed
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?", line)
        if not m:
            raise ExpositionError(f"{where}: not a sample line")
        name, labels_text, value_text = m.group(1), m.group(2), m.group(3)
        labels = _labels(labels_text or "", where)
        value = _value(value_text, where)
        fam = _family_of(name, types)
        if fam not in types:
            raise ExpositionError(f"{where}: sample of {fam} without a TYPE line before it")
        if order and order[-1] != fam:
            finished.add(order[-1])
            if fam in finished:
                raise ExpositionError(f"{where}: samples of {fam} are not contiguous")
        if not order or order[-1] != fam:
            order.append(fam)
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ExpositionError(f"{where}: duplicate sample")
        seen.add(key)
        samples.append((name, labels, value))
    return families, samples


def test_parse_exposition_rejects_bad_input():
    good = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="q\\"\\\\\\n"} 1\n'
    fams, samples = parse_exposition(good)
    assert samples == [("a_total", {"x": 'q"\\\n'}, 1.0)]
    for bad in ("a_total 1\n",                                      # no TYPE
                "# TYPE a counter\na{x=\"1\"} 1",                    # no final newline
                "# TYPE a counter\na{x=1} 1\n",                      # unquoted value
                "# TYPE a counter\na{x=\"\\t\"} 1\n",                # unknown escape
                "# TYPE a counter\na{x=\"1\",x=\"2\"} 1\n",          # label twice
                "# TYPE a counter\na 1\na 2\n",                      # duplicate sample
                "# TYPE a counter\na one\n",                         # bad value
                "# TYPE a counter\n# TYPE b gauge\na 1\nb 1\na{x=\"1\"} 1\n",  # not contiguous
                "# TYPE a wat\na 1\n"):                              # unknown type
        try:
            parse_exposition(bad)
        except ExpositionError:
            continue
        raise AssertionError(f"accepted: {bad!r}")


def scrape(server):
    r = server.get("/metrics")
    assert r.status_code == 200, r.text
    ctype = [p.strip() for p in r.headers.get("Content-Type", "").split(";")]
    assert ctype[0] == "text/plain" and "version=0.0.4" in ctype[1:], r.headers
    return parse_exposition(r.text)


def value(samples, name, **labels):
    """The value of the sample with exactly these labels; 0 when absent (counters that
    are only rendered once non-zero)."""
    got = [v for n, l, v in samples if n == name and l == labels]
    assert len(got) <= 1, (name, labels, got)
    return got[0] if got else 0


def check_conventions(families, samples):
    for name, fam in families.items():
        assert fam["type"] is not None, f"{name}: HELP without TYPE"
        assert fam["help"], f"{name}: no HELP"
        assert name.startswith("roster_") and SNAKE_RE.match(name), f"{name}: not snake_case"
        if fam["type"] == "counter":
            assert name.endswith("_total"), f"counter {name} does not end in _total"
        else:
            assert not name.endswith("_total"), f"{fam['type']} {name} ends in _total"
        if re.search(r"duration|latency|_time(_|$)", name):
            assert name.endswith("_seconds"), f"{name}: a duration/time not in _seconds"
        if fam["type"] == "histogram":
            assert name.endswith("_seconds") or "duration" not in name, name
    for name, labels, v in samples:
        for label in labels:
            assert LABEL_NAME_RE.match(label) and SNAKE_RE.match(label), (name, label)
            assert not label.startswith("__"), (name, label)
        if families[_family_of(name, {k: f["type"] for k, f in families.items()})]["type"] \
                == "counter":
            assert v >= 0 and v == int(v), (name, labels, v)


def check_histograms(families, samples):
    """Buckets ascending in le, cumulative, ending in +Inf == _count; _sum >= 0."""
    checked = 0
    for fam, f in families.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, v in samples:
            if name == fam + "_bucket":
                assert "le" in labels, (name, labels)
                key = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
                series.setdefault(key, {"buckets": []})["buckets"].append(
                    (float(labels["le"].replace("+Inf", "inf")), labels["le"], v))
            elif name in (fam + "_sum", fam + "_count"):
                key = tuple(sorted(labels.items()))
                series.setdefault(key, {"buckets": []})[name[len(fam) + 1:]] = v
        for key, s in series.items():
            b = s["buckets"]
            assert b, f"{fam}{dict(key)}: no buckets"
            les = [le for le, _, _ in b]
            assert les == sorted(les) and len(set(les)) == len(les), f"{fam}{dict(key)}: {les}"
            assert b[-1][1] == "+Inf", f"{fam}{dict(key)}: last bucket le={b[-1][1]}"
            counts = [v for _, _, v in b]
            assert all(x <= y for x, y in zip(counts, counts[1:])), \
                f"{fam}{dict(key)}: buckets not cumulative: {counts}"
            assert "count" in s and "sum" in s, f"{fam}{dict(key)}: no _count or _sum"
            assert s["count"] == counts[-1], f"{fam}{dict(key)}: _count {s['count']} != +Inf"
            assert s["sum"] >= 0, (fam, key, s["sum"])
            checked += 1
    return checked


class KeepAlive:
    """A client sending everything on one connection. roster counts a request once its
    reply is sent and before it reads the next request of that connection, so a scrape on
    this connection sees every earlier request of it."""

    def __init__(self, server):
        self.url = server.url
        self.session = requests.Session()
        self.scrapes = 0

    def get(self, path, **kw):
        return self.session.get(self.url + path, timeout=T, **kw)

    def post(self, path, **kw):
        return self.session.post(self.url + path, timeout=T, **kw)

    def register(self, body):
        return self.post(REGISTER, json=body)

    def close(self):
        self.session.close()


def settled_scrape(client, until=None, timeout=2.0):
    """A scrape once roster_hash_queue_depth is 0 and until(samples) holds (the last reply
    may precede the release of its hashing slot: test_metrics_hash_slot_released_before_reply;
    requests on other connections may be counted a moment after their reply); after
    `timeout`, the last scrape whatever it shows."""
    deadline = time.monotonic() + timeout
    while True:
        families, samples = scrape(client)
        client.scrapes = getattr(client, "scrapes", 0) + 1
        settled = value(samples, "roster_hash_queue_depth") == 0 and (until is None or
                                                                       until(samples))
        if settled or time.monotonic() > deadline:
            return families, samples
        time.sleep(0.02)


def answered(samples, route=None):
    """roster_http_requests_total summed over statuses (of one route, or of all but /metrics)."""
    return sum(v for n, l, v in samples if n == "roster_http_requests_total"
               and (l["route"] == route if route else l["route"] != "/metrics"))


def listening(server):
    return next(r for r in server.log_records() if r.get("msg") == "listening")


def test_metrics_exposition_counts_match_requests(db, start_servers):
    t_start = time.time()
    proc = start_servers(db, 1, FAST_HASH)[0]
    server = KeepAlive(proc)
    for i in range(3):
        assert_created(server.register(user_body(f"met{i}")))
    assert_error(server.register(user_body("metdupmail", email="met0@example.com")), 400,
                 "email_taken")
    assert_error(server.register(user_body("MET1", email="other1@example.com")), 400,
                 "username_taken")
    assert_error(server.register({"username": "nopass", "email": "nopass@example.com"}), 400,
                 "invalid")
    for _ in range(2):
        assert_error(server.get("/no/such/path/"), 404, "not_found")
    for name in ("met0", "met1"):
        r = server.post(LOGIN, json={"username": name, "password": user_body(name)["password"]})
        assert r.status_code == 200, r.text
    assert_error(server.post(LOGIN, json={"username": "met0", "password": "wrong-Password-77"}),
                 400, "invalid_credentials")
    assert_error(server.post(LOGIN, json={"username": "nobody", "password": "wrong-Password-77"}),
                 400, "invalid_credentials")
    assert server.get("/healthz").status_code == 200

    families, samples = settled_scrape(server, lambda smp: answered(smp) == 13)
    check_conventions(families, samples)
    assert check_histograms(families, samples) >= 3  # register, login, other, healthz
    for fam in ("roster_http_requests_total", "roster_http_request_duration_seconds",
                "roster_registrations_total", "roster_logins_total", "roster_hash_queue_depth",
                "roster_hash_queue_capacity", "roster_hash_queue_rejections_total",
                "roster_db_errors_total", "roster_db_reconnects_total", "roster_build_info",
                "roster_process_start_time_seconds"):
        assert fam in families, f"{fam} missing; have {sorted(families)}"
    types = {"roster_http_requests_total": "counter",
             "roster_http_request_duration_seconds": "histogram",
             "roster_hash_queue_depth": "gauge", "roster_build_info": "gauge"}
    assert all(families[f]["type"] == t for f, t in types.items()), families

    req = "roster_http_requests_total"
    assert value(samples, req, route=REGISTER, status="201") == 3
    assert value(samples, req, route=REGISTER, status="400") == 3
    assert value(samples, req, route=LOGIN, status="200") == 2
    assert value(samples, req, route=LOGIN, status="400") == 2
    assert value(samples, req, route="other", status="404") == 2
    assert value(samples, req, route="/healthz", status="200") == 1
    # a scrape is counted once answered: this one is not in its own numbers
    assert value(samples, req, route="/metrics", status="200") == server.scrapes - 1
    hist = "roster_http_request_duration_seconds_count"
    for route, n in ((REGISTER, 6), (LOGIN, 4), ("other", 2), ("/healthz", 1)):
        assert value(samples, hist, route=route) == n, route
        assert sum(v for name, l, v in samples if name == req and l["route"] == route) == n

    reg = "roster_registrations_total"
    assert value(samples, reg, outcome="created") == 3
    assert value(samples, reg, outcome="email_taken") == 1
    assert value(samples, reg, outcome="username_taken") == 1
    assert value(samples, reg, outcome="invalid") == 1
    assert sum(v for n, _, v in samples if n == reg) == 6
    assert value(samples, "roster_logins_total", outcome="ok") == 2
    assert value(samples, "roster_logins_total", outcome="failed") == 2
    assert sum(v for n, _, v in samples if n == "roster_logins_total") == 4

    boot = listening(proc)
    assert value(samples, "roster_hash_queue_depth") == 0
    assert value(samples, "roster_hash_queue_capacity") == boot["hash_workers"] + boot["hash_queue"]
    assert value(samples, "roster_hash_queue_rejections_total") == 0
    for kind in ("busy", "unavailable", "error"):
        assert value(samples, "roster_db_errors_total", kind=kind) == 0, kind
    assert value(samples, "roster_db_reconnects_total") == 0
    info = [(l, v) for n, l, v in samples if n == "roster_build_info"]
    assert len(info) == 1 and info[0][1] == 1 and set(info[0][0]) == {"version"}, info
    assert info[0][0]["version"] == boot["version"] and info[0][0]["version"], info
    started = value(samples, "roster_process_start_time_seconds")
    assert int(t_start) - 1 <= started <= time.time(), (t_start, started)

    _, again = scrape(server)
    assert value(again, req, route="/metrics", status="200") == server.scrapes
    assert value(again, req, route="/metrics", status="200") == \
        value(again, "roster_http_request_duration_seconds_count", route="/metrics")
    assert value(again, req, route=REGISTER, status="201") == 3
    server.close()


def test_metrics_saturation_rejections_equal_503s(db, start_servers):
    server = start_servers(db, 1, ["--hash-workers", "1", "--hash-queue", "1", *SLOW_HASH])[0]
    results, _ = burst([server], [user_body(f"msat{i}") for i in range(10)])
    counts = report("metrics: 10 registrations on 1 worker + queue 1", results)
    assert set(counts) <= {"201", "503 unavailable"}, counts
    n503 = counts.get("503 unavailable", 0)
    n201 = counts.get("201", 0)
    assert n503 >= 1 and n201 >= 1, counts
    for r in results:
        if r.status_code == 503:
            assert r.headers.get("Retry-After", "").strip().isdigit(), r.headers

    families, samples = settled_scrape(server, lambda smp: answered(smp, REGISTER) == 10)
    check_conventions(families, samples)
    check_histograms(families, samples)
    assert value(samples, "roster_hash_queue_rejections_total") == n503
    assert value(samples, "roster_http_requests_total", route=REGISTER, status="503") == n503
    assert value(samples, "roster_http_requests_total", route=REGISTER, status="201") == n201
    assert value(samples, "roster_registrations_total", outcome="created") == n201
    assert value(samples, "roster_registrations_total", outcome="unavailable") == n503
    assert value(samples, "roster_hash_queue_capacity") == 2
    assert value(samples, "roster_hash_queue_depth") == 0
    assert db.count_users() == n201
    db.assert_invariants()


def one_cpu(server):
    """Pins every thread of our own child to one CPU (the first it may use now); returns it."""
    cpu = min(os.sched_getaffinity(server.proc.pid))
    for tid in os.listdir(f"/proc/{server.proc.pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})
    return cpu


@contextlib.contextmanager
def pinned(cpu):
    """The calling thread on `cpu` only, for the duration (0 = this thread on Linux)."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def test_metrics_hash_slot_released_before_reply(db, start_servers):
    """A reply means its hashing slot is free: a scrape right after a registration shows
    depth 0, and two closed-loop clients (each waits for its reply before sending again)
    never exceed a capacity of 2 (1 worker + queue 1), so none of them gets 503."""
    server = start_servers(db, 1, ["--hash-workers", "1", "--hash-queue", "1", *FAST_HASH])[0]
    # Server and clients on one CPU, as in a one-CPU container: a woken thread may run
    # before the thread that woke it has finished.
    cpu = one_cpu(server)
    busy = []
    with pinned(cpu), requests.Session() as s:
        for i in range(30):
            r = s.post(server.url + REGISTER, json=user_body(f"slot{i}"), timeout=T)
            assert r.status_code == 201, r.text
            m = s.get(server.url + "/metrics", timeout=T)
            depth = [l for l in m.text.splitlines() if l.startswith("roster_hash_queue_depth ")]
            busy.append(depth[0].split()[1])
    print(f"roster_hash_queue_depth right after each 201: {busy}")

    results = []
    lock = threading.Lock()

    def client(k):
        with pinned(cpu), requests.Session() as s:
            for i in range(60):
                try:
                    r = s.post(server.url + REGISTER, json=user_body(f"loop{k}n{i}"), timeout=T)
                except requests.RequestException as e:
                    r = e
                with lock:
                    results.append(r)

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    assert not any(th.is_alive() for th in threads)
    counts = report("2 closed-loop clients on capacity 2 (1 worker + queue 1)", results)
    _, samples = settled_scrape(server, lambda smp: answered(smp, REGISTER) == 150)
    rejected = value(samples, "roster_hash_queue_rejections_total")
    assert rejected == counts.get("503 unavailable", 0)
    assert busy == ["0"] * 30, f"depth after a reply: {busy}"
    assert counts == {"201": 120}, counts


@pytest.mark.parametrize("backend", ["sqlite"])  # listeners and routing: no database involved
def test_metrics_bind_serves_metrics_there_and_only_there(db, start_servers):
    """Issue 14, item 3 (roster's side): with --metrics-bind, /metrics is served on that
    address alone, so a proxy rule that misses a spelling of /metrics cannot expose it,
    and the metrics address serves nothing else."""
    server = start_servers(db, 1, ["--metrics-bind", "127.0.0.1:0", *FAST_HASH])[0]
    listening = [r for r in server.log_records() if r.get("msg") == "listening"][0]
    mport = listening["metrics_port"]
    assert isinstance(mport, int) and mport not in (0, server.port), listening
    murl = f"http://127.0.0.1:{mport}"
    for spelling in ("/metrics", "/metrics/", "/metrics?x=1", "/%6detrics"):
        r = requests.get(server.url + spelling, timeout=T)
        assert_error(r, 404, "not_found")
        assert "roster_build_info" not in r.text
    r = requests.get(murl + "/metrics", timeout=T)
    assert r.status_code == 200, r.text[:200]
    families, _ = parse_exposition(r.text)
    assert "roster_build_info" in families
    for path in ("/healthz", "/users/register/", "/readyz"):
        assert_error(requests.get(murl + path, timeout=T), 404, "not_found")
    assert_created(server.register(user_body("metbind")))  # the API is unchanged


@pytest.mark.parametrize("backend", ["sqlite"])
def test_metrics_bind_refused_when_taken(db):
    """A --metrics-bind address that cannot be bound stops serve at start, saying why."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = run_roster("serve", "--db", db.url, "--bind", "127.0.0.1:0", "--metrics-bind",
                         f"127.0.0.1:{port}", timeout=20)
    assert out.returncode != 0
    assert "--metrics-bind" in out.stderr, out.stderr
