"""
Rate limits (README "Configuration", docs/security.md): counters live in the
database, so every instance on it enforces one shared limit. Each test runs two
instances on one database (both backends) with rate limits switched on
explicitly (conftest turns them off by default) and small limits, and
alternates its requests across the instances.

Client addresses: the servers trust 127.0.0.1 as a proxy (--trusted-proxies),
so `X-Forwarded-For` simulates distinct clients; a limited address must not
affect another one.

Windows are fixed and aligned to the epoch (60 s, 300 s, 600 s, 3600 s, and the
configured window of the per-account login ceiling); `fresh_window` waits out the
last seconds of a window so a sequence never straddles a reset.
"""

import time

from conftest import (FAST_HASH, INVITATIONS, LOGIN, MSG_EMAIL_TAKEN, PASSWORD, assert_code,
                      assert_created, assert_error, auth, burst, cli_user, invite, login, outcome,
                      report, user_body)

IP_A = "203.0.113.7"
IP_B = "198.51.100.23"
PROXY = ("--trusted-proxies", "127.0.0.1")
ON = ("--rate-limits", "on")
WRONG = "not-the-Password-42"


def limited(make_db, start_servers, *flags, n=2):
    """A fresh database and `n` instances on it with rate limits on and `flags`."""
    db = make_db()
    return db, start_servers(db, n, args=(*FAST_HASH, *ON, *PROXY, *flags))


def fresh_window(window_s, need_s=5.0):
    """Sleeps past the next window boundary when fewer than `need_s` seconds remain."""
    left = window_s - time.time() % window_s
    if left < need_s:
        time.sleep(left + 0.2)


def xff(ip):
    return {"X-Forwarded-For": ip}


def assert_limited(resp, window_s):
    """429 rate_limited with an integer Retry-After in (0, window]."""
    assert_error(resp, 429, "rate_limited")
    ra = resp.headers.get("Retry-After", "")
    assert ra.isdigit() and 0 < int(ra) <= window_s, f"Retry-After: {ra!r}"
    return int(ra)


def login_as(server, name, password, ip=IP_A):
    return server.post(LOGIN, json={"username": name, "password": password}, headers=xff(ip))


def test_register_per_ip_shared_by_instances_6th_429_other_ip_201(make_db, start_servers):
    db, servers = limited(make_db, start_servers, "--limit-register-per-ip", "5")
    fresh_window(600)
    for i in range(5):
        r = servers[i % 2].register(user_body(f"reg{i}"), headers=xff(IP_A))
        assert_created(r, f"reg{i}")
    r = servers[5 % 2].register(user_body("reg5"), headers=xff(IP_A))
    ra = assert_limited(r, 600)
    r2 = servers[0].register(user_body("reg6"), headers=xff(IP_A))
    assert_limited(r2, 600)
    # Another address is not affected, nor is the proxy's own.
    assert_created(servers[1].register(user_body("other_ip"), headers=xff(IP_B)), "other_ip")
    assert_created(servers[0].register(user_body("no_xff")), "no_xff")
    assert db.count_users() == 7
    assert not db.query("SELECT id FROM users WHERE username IN ('reg5', 'reg6')")
    print(f"register per IP (limit 5, 2 instances): 6th -> 429, Retry-After {ra}")


def test_login_failures_per_name_shared_4th_429_even_right_password(make_db, start_servers):
    db, servers = limited(make_db, start_servers, "--limit-login-failures", "3")
    for name in ("victim", "bystander"):
        assert_created(servers[0].register(user_body(name), headers=xff(IP_B)), name)
    fresh_window(300)
    seqs = {}
    for name in ("victim", "ghost"):  # an account, and a login name nobody has
        got = []
        for i in range(3):
            r = login_as(servers[i % 2], name, WRONG)
            assert_code(r, "invalid_credentials")
            got.append(outcome(r))
        r = login_as(servers[1], name, PASSWORD)  # the right password for "victim"
        assert_limited(r, 300)
        got.append(outcome(r))
        seqs[name] = got
    # No enumeration: an unknown name goes through exactly the same sequence.
    assert seqs["victim"] == seqs["ghost"] == ["400 invalid_credentials"] * 3 + ["429 rate_limited"]
    # The lockout is per account: reaching it by its email, in either field, is locked too.
    for field in ("email", "username"):
        r = servers[0].post(LOGIN, json={field: "victim@example.com", "password": PASSWORD},
                            headers=xff(IP_A))
        assert_limited(r, 300)
    # Another account is not affected, from the same address.
    login(servers[0], username="bystander")
    print(f"login failures (limit 3, 2 instances): {seqs}")


def test_login_per_ip_shared_5th_429_other_ip_200(make_db, start_servers):
    db, servers = limited(make_db, start_servers, "--limit-login-per-ip", "4")
    assert_created(servers[0].register(user_body("walker")), "walker")
    fresh_window(60)
    got = []
    for i, pw in enumerate((PASSWORD, WRONG, PASSWORD, WRONG)):
        r = login_as(servers[i % 2], "walker", pw)
        got.append(outcome(r))
    assert got == ["200", "400 invalid_credentials"] * 2, got
    r = login_as(servers[0], "walker", PASSWORD)
    assert_limited(r, 60)
    r = login_as(servers[1], "walker", PASSWORD, ip=IP_B)
    assert r.status_code == 200, r.text


def test_accounts_per_ip_shared_3rd_429_other_ip_201(make_db, start_servers):
    db, servers = limited(make_db, start_servers, "--limit-accounts-per-ip", "2")
    fresh_window(3600)
    assert_created(servers[0].register(user_body("acct0"), headers=xff(IP_A)), "acct0")
    # A refused attempt creates no account, so it does not count.
    r = servers[1].register(user_body("acct_dup", email="acct0@example.com"), headers=xff(IP_A))
    assert_error(r, 400, "email_taken", MSG_EMAIL_TAKEN)
    assert_created(servers[1].register(user_body("acct1"), headers=xff(IP_A)), "acct1")
    r = servers[0].register(user_body("acct2"), headers=xff(IP_A))
    assert_limited(r, 3600)
    assert_created(servers[1].register(user_body("acct3"), headers=xff(IP_B)), "acct3")
    assert db.count_users() == 3


def test_accounts_per_ip_one_ipv6_slash_64_is_one_client(make_db, start_servers):
    """Issue 10: each address of one /64 had its own bucket (40 accounts from one /64 all
    succeeded); a /64 is one client now, and ::ffff:a.b.c.d is a.b.c.d."""
    db, servers = limited(make_db, start_servers, "--limit-accounts-per-ip", "3")
    fresh_window(3600)
    for i, ip in enumerate(["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"]):
        assert_created(servers[i % 2].register(user_body(f"six{i}"), headers=xff(ip)))
    assert_limited(servers[0].register(user_body("six3"), headers=xff("2001:db8:5:6::4")), 3600)
    # The next /64 is another client.
    assert_created(servers[1].register(user_body("six4"), headers=xff("2001:db8:5:7::1")))
    # An IPv4-mapped address is the IPv4 address.
    for i in range(3):
        ip = "198.51.100.77" if i % 2 else "::ffff:198.51.100.77"
        assert_created(servers[i % 2].register(user_body(f"mapped{i}"), headers=xff(ip)))
    assert_limited(servers[0].register(user_body("mapped3"), headers=xff("198.51.100.77")), 3600)
    assert db.count_users() == 7


def test_invitations_per_inviter_shared_3rd_429_other_inviter_201(make_db, start_servers):
    db, servers = limited(make_db, start_servers, "--limit-invites", "2")
    for name in ("inviter1", "inviter2"):
        cli_user(db, name, "--can-invite-teachers")
    t1 = login(servers[0], username="inviter1")["token"]
    t2 = login(servers[1], username="inviter2")["token"]
    fresh_window(3600)
    invite(servers[0], t1, "t0@example.com")
    invite(servers[1], t1, "t1@example.com")
    r = servers[0].post(INVITATIONS, json={"email": "t2@example.com"}, headers=auth(t1))
    assert_limited(r, 3600)
    invite(servers[1], t2, "t2@example.com")
    assert db.scalar("SELECT COUNT(*) FROM teacher_invitations") == 3


def test_defaults_on_seed_test1_50_concurrent_one_email_one_201(make_db, start_servers):
    """Default limits (600 attempts/10 min, 300 accounts/h per IP) leave the seed's Test 1
    intact: 50 concurrent sign-ups with one email from one address, on two instances."""
    db = make_db()
    servers = start_servers(db, 2, args=ON)  # no fresh_window: a reset could only help
    bodies = [{"username": f"user_{i}", "email": "shared@example.com", "password": "testpass123",
               "role": "explorer"} for i in range(1, 51)]
    results, _ = burst(servers, bodies)
    counts = report(f"rate limits on (defaults), same email x50 [{db.backend}]", results)
    assert counts == {"201": 1, "400 email_taken": 49}, counts
    for r in results:
        if r.status_code != 201:
            assert_error(r, 400, "email_taken", MSG_EMAIL_TAKEN)
    assert db.count_users() == 1
    db.assert_invariants()


# --------------------------------------------------------------------------- schools (issue 10, item 1)

def test_issue_10_defaults_class_of_40_concurrent_one_ip_all_201(make_db, start_servers):
    """A class of 40 behind one school address registers at once on defaults: 40 x 201
    (before: the 21st account of the hour was 429)."""
    db, servers = limited(make_db, start_servers)
    fresh_window(3600, need_s=30)
    bodies = [user_body(f"pupil{i}") for i in range(40)]
    results, _ = burst(servers, bodies, headers=xff(IP_A))
    counts = report(f"defaults, a class of 40 from one IP [{db.backend}]", results)
    assert counts == {"201": 40}, counts
    assert db.count_users() == 40
    db.assert_invariants()


def test_issue_10_defaults_301st_account_of_the_hour_from_one_ip_429(make_db, start_servers):
    """A script creating accounts nonstop from one address: 300 are created in the hour
    (a school's morning), the 301st is 429 with Retry-After; another address is not
    affected. Two instances, one database."""
    db, servers = limited(make_db, start_servers)
    fresh_window(3600, need_s=120)
    t0 = time.monotonic()
    for i in range(300):
        r = servers[i % 2].register(user_body(f"s{i}"), headers=xff(IP_A))
        assert r.status_code == 201, (i, r.status_code, r.text)
    ra = assert_limited(servers[300 % 2].register(user_body("s300"), headers=xff(IP_A)), 3600)
    assert_created(servers[1].register(user_body("elsewhere"), headers=xff(IP_B)), "elsewhere")
    assert db.count_users() == 301
    print(f"defaults [{db.backend}]: 300 x 201 in {time.monotonic() - t0:.1f}s, "
          f"301st -> 429, Retry-After {ra}")


def test_issue_10_wrong_passwords_from_one_ip_do_not_lock_out_another(make_db, start_servers):
    """20 wrong passwords for an account from address X: X is locked out (429 after the
    5th), the owner at Y still logs in. An unknown login name goes through exactly the
    same sequence (no enumeration), and its email does not reset X's count."""
    db, servers = limited(make_db, start_servers)
    assert_created(servers[0].register(user_body("teacher"), headers=xff(IP_B)), "teacher")
    fresh_window(300, need_s=20)
    seqs = {}
    for name in ("teacher", "ghost"):
        seqs[name] = [outcome(login_as(servers[i % 2], name, WRONG, ip=IP_A)) for i in range(20)]
        r = login_as(servers[0], name, PASSWORD, ip=IP_A)
        assert_limited(r, 300)
        seqs[name].append(outcome(r))
    expect = ["400 invalid_credentials"] * 5 + ["429 rate_limited"] * 16
    assert seqs["teacher"] == seqs["ghost"] == expect, seqs
    r = servers[1].post(LOGIN, json={"email": "teacher@example.com", "password": PASSWORD},
                        headers=xff(IP_A))
    assert_limited(r, 300)
    # The owner, elsewhere: by username and by email.
    assert login_as(servers[1], "teacher", PASSWORD, ip=IP_B).status_code == 200
    r = servers[0].post(LOGIN, json={"email": "teacher@example.com", "password": PASSWORD},
                        headers=xff(IP_B))
    assert r.status_code == 200, r.text
    assert_code(login_as(servers[0], "ghost", WRONG, ip=IP_B), "invalid_credentials")


CEILING_WINDOW = 5


def test_issue_10_many_ips_guessing_hit_the_account_ceiling_then_it_recovers(make_db,
                                                                            start_servers):
    """Guessing spread over many addresses (one try each) stops at the per-account ceiling
    (6 per 5 s here), for the right password too and whichever name reaches the account,
    and the lockout ends with the ceiling's short window. Unknown names: the same."""
    db, servers = limited(make_db, start_servers, "--limit-login-account-failures", "6",
                          "--limit-login-account-window", f"{CEILING_WINDOW}s")
    assert_created(servers[0].register(user_body("target"), headers=xff(IP_B)), "target")
    seqs = {}
    for name in ("target", "nobody"):
        fresh_window(CEILING_WINDOW, need_s=3)
        got = [outcome(login_as(servers[i % 2], name, WRONG, ip=f"192.0.2.{i + 1}"))
               for i in range(8)]
        r = login_as(servers[0], name, PASSWORD, ip="192.0.2.100")
        ra = assert_limited(r, CEILING_WINDOW)
        got.append(outcome(r))
        if name == "target":
            r = servers[1].post(LOGIN, json={"email": "target@example.com",
                                             "password": PASSWORD}, headers=xff(IP_B))
            assert_limited(r, CEILING_WINDOW)
        seqs[name] = got
        time.sleep(ra + 0.3)
        r = login_as(servers[1], name, PASSWORD, ip="192.0.2.100")
        if name == "target":
            assert r.status_code == 200, r.text  # recovered after the short lockout
        else:
            assert_code(r, "invalid_credentials")
    expect = ["400 invalid_credentials"] * 6 + ["429 rate_limited"] * 3
    assert seqs["target"] == seqs["nobody"] == expect, seqs


def test_issue_10_login_account_window_bounds_refused():
    from conftest import run_roster
    for bad in ("0s", "2h", "soon"):
        r = run_roster("serve", "--limit-login-account-window", bad, "--db", "sqlite:/nonexistent/x")
        assert r.returncode == 2 and "--limit-login-account-window" in r.stderr, (bad, r.stderr)
    r = run_roster("serve", "--help")
    assert "--limit-login-account-failures" in r.stdout and "ROSTER_LIMIT_LOGIN_ACCOUNT_WINDOW" \
        in r.stdout, r.stdout


def test_rate_limits_off_disables_every_limit(make_db, start_servers):
    db = make_db()
    servers = start_servers(db, 2, args=(*FAST_HASH, "--rate-limits", "off", *PROXY,
                                         "--limit-register-per-ip", "1",
                                         "--limit-accounts-per-ip", "1",
                                         "--limit-login-per-ip", "1",
                                         "--limit-login-failures", "1"))
    for i in range(3):
        assert_created(servers[i % 2].register(user_body(f"free{i}"), headers=xff(IP_A)))
    for i in range(3):
        assert_code(login_as(servers[i % 2], "free0", WRONG), "invalid_credentials")
    r = login_as(servers[1], "free0", PASSWORD)
    assert r.status_code == 200, r.text
    assert db.scalar("SELECT COUNT(*) FROM rate_limits") == 0


# --------------------------------------------------------------------------- keys (issue 14, item 8)

KEY_RE = r"^[a-z_]+:[0-9a-f]{64}$"


def test_issue_14_rate_limit_keys_hashed_bounded_per_request(make_db, start_servers):
    """Every counter's key is '<limit>:<64 hex>' whatever was typed; a login adds at most three
    counters (its address, its account or name, and the pair), and a name typed on either
    instance lands in the same counter (the key the subjects are hashed with is the
    database's)."""
    import re
    db, servers = limited(make_db, start_servers, "--limit-login-account-failures", "3")
    assert_created(servers[0].register(user_body("victim"), headers=xff(IP_B)), "victim")
    fresh_window(60)
    typed = "Typed-Password-As-Name-" + "x9" * 60  # a valid login name, 143 characters
    for i in range(3):
        before = db.scalar("SELECT COUNT(*) FROM rate_limits")
        assert_code(login_as(servers[i % 2], typed, WRONG, ip=f"192.0.2.{i + 1}"),
                    "invalid_credentials")
        added = db.scalar("SELECT COUNT(*) FROM rate_limits") - before
        assert added <= 3, f"one login added {added} counters"
    assert_limited(login_as(servers[0], typed, WRONG), 300)  # one counter for both instances
    keys = [k for (k,) in db.query("SELECT key FROM rate_limits")]
    assert keys and all(re.match(KEY_RE, k) for k in keys), keys
    assert not [k for k in keys if "typed" in k.lower() or "192.0.2" in k], keys
    assert db.scalar("SELECT COUNT(*) FROM server_secrets") == 1
    [(secret,)] = db.query("SELECT value FROM server_secrets WHERE name = 'rate_limit_key'")
    assert re.match(r"^[0-9a-f]{64}$", secret), secret


def test_issue_14_rate_limit_counters_long_past_are_purged(make_db, start_servers):
    """A process's first counted hit (then every 64th) deletes up to 256 counters whose window
    started more than a day ago; live ones stay."""
    db = make_db()
    old = int(time.time()) - 2 * 86400
    conn = db.connect()
    try:
        cur = conn.cursor()
        for i in range(300):
            cur.execute("INSERT INTO rate_limits (key, window_start, count) VALUES (%s, %s, 1)"
                        if db.backend == "postgres" else
                        "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)",
                        (f"login_ip:{i:064x}", old))
        cur.execute("INSERT INTO rate_limits (key, window_start, count) VALUES (%s, %s, 1)"
                    if db.backend == "postgres" else
                    "INSERT INTO rate_limits (key, window_start, count) VALUES (?, ?, 1)",
                    ("login_ip:" + "f" * 64, int(time.time()) - 10))
    finally:
        conn.close()
    [server] = start_servers(db, 1, args=(*FAST_HASH, *ON))
    assert_code(server.post(LOGIN, json={"username": "nobody", "password": WRONG}),
                "invalid_credentials")
    stale = db.scalar("SELECT COUNT(*) FROM rate_limits WHERE window_start < ?",
                      int(time.time()) - 86400)
    assert stale == 300 - 256, stale
    assert db.scalar("SELECT COUNT(*) FROM rate_limits WHERE key = ?", "login_ip:" + "f" * 64) == 1
