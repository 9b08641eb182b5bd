#!/usr/bin/python3
"""
The PostgreSQL half of the store contract suite (tests/unit/test_store.c):
starts a throwaway cluster with tests/http/pgcluster.py, runs the unit-test
binary's store_pg tests with ROSTER_TEST_PG pointing at it, removes the
cluster. Exits 77 (meson: skipped, not passed) when no PostgreSQL server
binaries are installed; fails when a test is skipped anyway.

With --no-cluster it runs the binary as given (the whole unit suite). Either
way a sanitizer report in the output fails the run: Criterion counts a test
whose worker LeakSanitizer flagged at exit as passing.

    run-store-tests.py [--no-cluster] BUILD/tests/unit-tests [criterion args...]
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import pgcluster  # noqa: E402


SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def run(cmd, env):
    """Runs `cmd`, echoing its output; (exit code, output without colours)."""
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(r.stdout)
    out = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout)
    if r.returncode == 0 and any(m in out for m in SANITIZER_MARKERS):
        print("run-store-tests: a sanitizer report above fails the run")
        return 1, out
    return r.returncode, out


def main():
    if sys.argv[1] == "--no-cluster":
        return run(sys.argv[2:], dict(os.environ))[0]
    binary, extra = sys.argv[1], sys.argv[2:]
    try:
        pgcluster.pg_bindir()
    except RuntimeError as e:
        print(f"run-store-tests: skipped: {e}")
        return 77
    cluster = pgcluster.PgCluster(max_connections=100).create()
    try:
        env = dict(os.environ, ROSTER_TEST_PG=cluster.url("postgres"))
        rc, out = run([binary, "--filter", "store_pg*/*", *extra], env)
        m = re.search(r"Tested: +(\d+) \| Passing: +(\d+) \| Failing: +(\d+) \| Crashing: +(\d+)",
                      out)
        if rc != 0:
            return rc
        if m is None or int(m.group(1)) == 0 or m.group(1) != m.group(2):
            print("run-store-tests: not every PostgreSQL test ran and passed")
            return 1
        print(f"run-store-tests: {m.group(2)} PostgreSQL store tests passed")
        return 0
    finally:
        cluster.remove()


if __name__ == "__main__":
    sys.exit(main())
