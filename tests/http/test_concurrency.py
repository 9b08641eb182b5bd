"""
Concurrent registrations (the seed analysis, Tests 1 and 2): requests released
together by a barrier, against one instance and against two instances sharing
one database (one SQLite file; one PostgreSQL database), on both backends.
Uniqueness must come from the database, so exactly one request of a
conflicting group wins and every loser gets the exact 400 of the contract,
never a 500 or 503, and the database holds whole accounts only.
"""

import pytest

from conftest import (MSG_EMAIL_TAKEN, MSG_USERNAME_TAKEN, assert_created,
                      assert_error, burst, outcome, report, user_body)

SEED_PASSWORD = "testpass123"  # the seed's curl loop
INSTANCES = pytest.mark.parametrize("instances", [1, 2], ids=["1instance", "2instances"])


def race(make_db, start_servers, instances, bodies, label):
    """A fresh database, `instances` servers on it, one burst; servers stopped and checked."""
    db = make_db()
    servers = start_servers(db, instances)
    results, _ = burst(servers, bodies)
    for s in servers:
        s.stop_checked()
    return db, results, report(label, results)


def check_single_winner(db, results, error, code, key_column, key):
    """One 201 and only `code` losers; the database holds exactly the winner."""
    assert sum(outcome(r) == "201" for r in results) == 1
    assert all(outcome(r) in ("201", f"400 {code}") for r in results)
    winner = None
    for r in results:
        if r.status_code == 201:
            winner = assert_created(r)
        else:
            assert_error(r, 400, code, error)
    rows = db.query(f"SELECT id FROM users WHERE {key_column} = ?", key)
    assert rows == [(winner["id"],)], rows
    assert db.count_users() == 1
    row = db.user(winner["id"])
    assert (row["username"], row["email"], row["role"]) == (winner["username"], winner["email"],
                                                            "explorer")
    db.assert_invariants()


def repeat_race(make_db, start_servers, instances, runs, make_bodies, label, check):
    """Runs the race `runs` times (fresh database each), then reports every failed run."""
    failures = []
    for run in range(1, runs + 1):
        db, results, counts = race(make_db, start_servers, instances, make_bodies(),
                                   f"{label} [{instances} instance(s)] run {run}")
        try:
            check(db, results)
        except AssertionError as e:
            failures.append(f"run {run}: {counts}: {e}")
    assert not failures, "\n".join(failures)


@INSTANCES
def test_register_concurrent_same_email_one_201_rest_400(make_db, start_servers, instances):
    def bodies():
        return [{"username": f"user_{i}", "email": "shared@example.com",
                 "password": SEED_PASSWORD, "role": "explorer"} for i in range(1, 51)]

    repeat_race(make_db, start_servers, instances, 5, bodies, "same email x50",
                lambda db, results: check_single_winner(
                    db, results, MSG_EMAIL_TAKEN, "email_taken", "email_key", "shared@example.com"))


@INSTANCES
def test_register_concurrent_same_username_one_201_rest_400(make_db, start_servers, instances):
    def bodies():
        return [{"username": "sameuser", "email": f"same_{i}@example.com",
                 "password": SEED_PASSWORD, "role": "explorer"} for i in range(1, 51)]

    repeat_race(make_db, start_servers, instances, 3, bodies, "same username x50",
                lambda db, results: check_single_winner(
                    db, results, MSG_USERNAME_TAKEN, "username_taken", "username_key", "sameuser"))


def mixed_cases():
    """(body, group, acceptable outcomes): 60 requests; each group has exactly one winner."""
    cases = []
    for i in range(20):  # unique accounts, half with the default role, all with a bio
        cases.append((user_body(f"uniq{i}", bio=f"bio of uniq{i}",
                                role="explorer" if i % 2 else None), None, {"201"}))
    for k in range(5):
        for j in range(2):
            cases.append((user_body(f"dupname{k}", email=f"dupname{k}_{j}@example.com"),
                          f"name{k}", {"201", "400 username_taken"}))
            cases.append((user_body(f"dupmail{k}_{j}", email=f"dupmail{k}@example.com"),
                          f"mail{k}", {"201", "400 email_taken"}))
        # case variants of both username and email: either key may hit first
        cases.append((user_body(f"CaseUser{k}", email=f"Case{k}@Example.com"), f"case{k}",
                      {"201", "400 username_taken", "400 email_taken"}))
        cases.append((user_body(f"caseuser{k}", email=f"case{k}@example.com"), f"case{k}",
                      {"201", "400 username_taken", "400 email_taken"}))
    invalid = {"400 invalid"}
    cases += [
        (user_body("weakpw", password="password123"), None, invalid),
        (user_body("bad name!", email="badname@example.com"), None, invalid),
        (user_body("bademail", email="not-an-email"), None, invalid),
        (user_body("wizard", role="wizard"), None, invalid),
        (user_body("teach", role="teacher"), None, {"403 role_not_allowed"}),
        ({"username": "nopass", "email": "nopass@example.com"}, None, invalid),
        (user_body("longbio", bio="x" * 501), None, invalid),
        (user_body("zw\u200bsp"), None, invalid),
        (b'{"username": ', None, {"400 malformed_json"}),
        (b"[]", None, {"400 malformed_json"}),
    ]
    assert len(cases) == 60
    return cases


def test_register_concurrent_mixed_two_instances_whole_accounts(make_db, start_servers):
    cases = mixed_cases()
    db, results, _ = race(make_db, start_servers, 2, [c[0] for c in cases], "mixed x60")

    wrong = [(c[0], outcome(r), r.text if hasattr(r, "text") else "")
             for c, r in zip(cases, results) if outcome(r) not in c[2]]
    assert not wrong, f"unexpected outcomes (body, got, response): {wrong}"
    groups = {}
    for (_, group, _), r in zip(cases, results):
        if group is not None:
            groups.setdefault(group, []).append(outcome(r))
    assert all(g.count("201") == 1 for g in groups.values()), groups

    created = []
    for (body, _, _), r in zip(cases, results):
        if r.status_code == 201:
            user = assert_created(r, body["username"], body["email"])
            created.append((user, body))
        else:
            assert_error(r, r.status_code, r.json()["code"])

    assert db.count_users() == len(created)
    for user, body in created:
        row = db.user(user["id"])
        assert (row["username"], row["email"]) == (user["username"], user["email"])
        assert row["role"] == "explorer"
        assert row["bio"] == body.get("bio", "")
        assert not row["can_invite_teachers"]
    assert db.scalar("SELECT COUNT(*) FROM profiles WHERE role != 'explorer'") == 0
    db.assert_invariants()
