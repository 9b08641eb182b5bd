#!/usr/bin/python3
"""
The PostgreSQL half of the store contract suite (tests/unit/test_store.c):
starts a throwaway cluster with tests/http/pgcluster.py, runs the unit-test
binary's store_pg tests with ROSTER_TEST_PG pointing at it, removes the
cluster. Exits 77 (meson: skipped, not passed) when no PostgreSQL server
binaries are installed; fails when a test is skipped anyway.

    run-store-tests.py BUILD/tests/unit-tests [criterion args...]
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "http"))
import pgcluster  # noqa: E402


def main():
    binary, extra = sys.argv[1], sys.argv[2:]
    try:
        pgcluster.pg_bindir()
    except RuntimeError as e:
        print(f"run-store-tests: skipped: {e}")
        return 77
    cluster = pgcluster.PgCluster(max_connections=100).create()
    try:
        env = dict(os.environ, ROSTER_TEST_PG=cluster.url("postgres"))
        r = subprocess.run([binary, "--filter", "store_pg*/*", *extra], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sys.stdout.write(r.stdout)
        m = re.search(r"Tested: +(\d+) \| Passing: +(\d+) \| Failing: +(\d+) \| Crashing: +(\d+)",
                      re.sub(r"\x1b\[[0-9;]*m", "", r.stdout))
        if r.returncode != 0:
            return r.returncode
        if m is None or int(m.group(1)) == 0 or m.group(1) != m.group(2):
            print("run-store-tests: not every PostgreSQL test ran and passed")
            return 1
        print(f"run-store-tests: {m.group(2)} PostgreSQL store tests passed")
        return 0
    finally:
        cluster.remove()


if __name__ == "__main__":
    sys.exit(main())
