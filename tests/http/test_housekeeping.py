"""
Housekeeping (issue 10, item 4; docs/operations.md "The janitor"): no table
grows without bound. Two instances on one database (both backends) run the
janitor every second; a spray of failed logins with random names leaves a
rate-limit counter per name and per address, logins leave tokens that expire.

The windows of the limits are those of src/api/limits.c (WINDOWS below reads
that table; 0 there is the configured --limit-login-account-window, left at its
default); instead of waiting ten minutes, the test moves every counter's
window_start 700 s into the past, which is what the passing of time does to
them (the hour-long ones stay where they are: live). The janitor must then take
exactly the counters whose window has ended (plus its 60 s allowance for clock
skew) and keep the live ones.
"""

import concurrent.futures
import os
import random
import re
import string
import threading
import time

import pytest
import requests

from conftest import (FAST_HASH, LOGIN, PASSWORD, T, assert_created, login, report, summary,
                      user_body)

LIMITS_C = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "api",
                        "limits.c")
ACCOUNT_WINDOW_DEFAULT = 60  # --limit-login-account-window (src/config.c)


def _windows():
    """{limit name: window in seconds}, from the table in src/api/limits.c."""
    with open(LIMITS_C) as f:
        rows = re.findall(r'\[API_LIMIT_[A-Z_]+\]\s*=\s*\{"([a-z_]+)",\s*(\d+)', f.read())
    assert len(rows) >= 5, rows
    return {name: int(w) or ACCOUNT_WINDOW_DEFAULT for name, w in rows}


WINDOWS = _windows()
SKEW_S = 60  # src/api/janitor.c: a window ends this much later for the janitor
SHIFT_S = 700  # past every window shorter than an hour
assert all(w + SKEW_S < SHIFT_S or w >= 3600 for w in WINDOWS.values()), WINDOWS
ARGS = (*FAST_HASH, "--rate-limits", "on", "--trusted-proxies", "127.0.0.1",
        "--limit-login-per-ip", "1000000", "--limit-register-per-ip", "1000000",
        "--limit-accounts-per-ip", "1000000", "--token-ttl", "5s",
        "--janitor-interval", "1s", "--janitor-batch", "100")


def counts(db):
    return (db.scalar("SELECT count(*) FROM rate_limits"),
            db.scalar("SELECT count(*) FROM auth_tokens"))


def ended_counters(db, now):
    """Counters of a known limit whose window ended (with the skew allowance) by `now`."""
    out = []
    for key, start in db.query("SELECT key, window_start FROM rate_limits"):
        name = key.split(":", 1)[0]
        if name in WINDOWS and start + WINDOWS[name] + SKEW_S <= now:
            out.append(key)
    return out


def metric_sum(servers, line_prefix):
    total = 0
    for s in servers:
        for line in s.get("/metrics").text.splitlines():
            if line.startswith(line_prefix + " "):
                total += int(float(line.split()[-1]))
    return total


def wrong_login(server, i, session):
    name = "".join(random.choices(string.ascii_lowercase, k=12)) + str(i)
    ip = f"10.{i // 62500 % 256}.{i // 250 % 250}.{i % 250 + 1}"
    return session.post(server.url + LOGIN, json={"username": name, "password": PASSWORD},
                        headers={"X-Forwarded-For": ip}, timeout=T)


def test_issue_10_janitor_empties_ended_windows_and_expired_tokens(make_db, start_servers):
    db = make_db()
    servers = start_servers(db, 2, args=ARGS)
    local = threading.local()

    def attempt(i):
        if not hasattr(local, "s"):
            local.s = requests.Session()
        try:
            return wrong_login(servers[i % 2], i, local.s)
        except requests.RequestException as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        failed = list(pool.map(attempt, range(2000)))
    assert report("2,000 failed logins, random names", failed) == {"400 invalid_credentials": 2000}
    for i in range(20):  # users who log in once and never again
        assert_created(servers[i % 2].register(user_body(f"once{i}")))
        login(servers[(i + 1) % 2], username=f"once{i}")
    before = counts(db)
    summary(f"housekeeping [{db.backend}] before: rate_limits={before[0]} auth_tokens={before[1]}")
    assert before[0] >= 4000, "a counter per name and per address"
    assert before[1] == 20, "one token per login, none expired yet"
    live = [k for (k,) in db.query("SELECT key FROM rate_limits WHERE key LIKE 'accounts_ip:%'")]
    assert len(live) == 1, "the 20 accounts' hour-long window, from 127.0.0.1"
    start = db.scalar("SELECT window_start FROM rate_limits WHERE key = ?", live[0])

    # The windows pass; registrations keep coming meanwhile, on both instances.
    # (The hour-long windows keep their start: the one of the accounts above is live.)
    db.execute("UPDATE rate_limits SET window_start = window_start - ?"
               " WHERE key NOT LIKE 'accounts_ip:%' AND key NOT LIKE 'invites:%'", SHIFT_S)
    stop = threading.Event()
    burst_results = []

    def registrations(k):
        n = 0
        with requests.Session() as s:
            while not stop.is_set():
                n += 1
                try:
                    burst_results.append(s.post(servers[(k + n) % 2].url + "/users/register/",
                                                json=user_body(f"b{k}x{n}"), timeout=T,
                                                headers={"X-Forwarded-For": "192.0.2.7"}))
                except requests.RequestException as e:
                    burst_results.append(e)
    threads = [threading.Thread(target=registrations, args=(k,), daemon=True) for k in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if not ended_counters(db, time.time()) and counts(db)[1] == 0:
                break
            time.sleep(0.5)
        time.sleep(1.5)  # a few more janitor runs under the burst
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=2 * T)
    after = counts(db)
    summary(f"housekeeping [{db.backend}] after: rate_limits={after[0]} auth_tokens={after[1]}")
    statuses = report("registrations while the janitor sweeps", burst_results)
    assert all(k.startswith("201") for k in statuses), statuses

    assert ended_counters(db, time.time()) == [], "every ended window is gone"
    keys = [k for (k,) in db.query("SELECT key FROM rate_limits")]
    assert after[0] < 20, keys  # the live windows: this burst's and the hour-long ones
    if time.time() < start + WINDOWS["accounts_ip"] + SKEW_S - 1:  # not the hour's end
        assert live[0] in keys, "a live window (an hour long) stays"
    assert after[1] == 0, "expired tokens of users who never logged in again are gone"
    deleted = metric_sum(servers, 'roster_janitor_rows_deleted_total{table="rate_limits"}')
    assert deleted >= before[0] - 5, deleted  # all but the live window (and the write probe)
    assert metric_sum(servers, 'roster_janitor_rows_deleted_total{table="auth_tokens"}') == 20
    assert metric_sum(servers, 'roster_janitor_runs_total{outcome="ok"}') > 2
    for outcome_name in ("busy", "unavailable", "error"):
        assert metric_sum(servers, f'roster_janitor_runs_total{{outcome="{outcome_name}"}}') == 0


def test_janitor_sigterm_between_runs_exits_promptly(db, start_servers):
    """The janitor waits out its interval on a condition variable: SIGTERM wakes it."""
    s = start_servers(db, 1, args=("--janitor-interval", "1h"))[0]
    assert 'roster_janitor_rows_deleted_total{table="auth_tokens"} 0' in s.get("/metrics").text
    t0 = time.monotonic()
    s.stop_checked()
    assert time.monotonic() - t0 < 3, "stopped within 3 s of SIGTERM"


def janitor_warnings(server):
    return [r for r in server.log_records() if str(r.get("msg", "")).startswith("janitor:")]


@pytest.mark.parametrize("backend", ["postgres"])
def test_janitor_database_down_logged_once_then_sweeps_again(db, start_servers, pg_cluster):
    s = start_servers(db, 1, args=("--janitor-interval", "1s", "--token-ttl", "1s",
                                   *FAST_HASH))[0]
    try:
        pg_cluster.stop(mode="fast")
        time.sleep(6)  # several runs against the stopped server
        assert s.proc.poll() is None
        down = janitor_warnings(s)
        assert len(down) == 1, down
        assert "unavailable" in down[0]["msg"], down
    finally:
        pg_cluster.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(janitor_warnings(s)) < 2:
        time.sleep(0.2)
    assert [r["msg"] for r in janitor_warnings(s)][1] == "janitor: the database answers again"
    deadline = time.monotonic() + 10  # the request workers reconnect with their own backoff
    while (r := s.register(user_body("after"))).status_code == 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert_created(r)
    login(s, username="after")
    deadline = time.monotonic() + 10  # the token expires in 1 s; the janitor takes it
    while time.monotonic() < deadline and db.scalar("SELECT count(*) FROM auth_tokens") > 0:
        time.sleep(0.2)
    assert db.scalar("SELECT count(*) FROM auth_tokens") == 0
    text = s.get("/metrics").text
    assert 'roster_janitor_runs_total{outcome="unavailable"}' in text
    assert not re.search(r'roster_janitor_runs_total\{outcome="unavailable"\} 0\n', text), text
