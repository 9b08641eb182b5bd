"""
A throwaway PostgreSQL cluster for the black-box tests.

PostgreSQL refuses to run as root, so the cluster belongs to an unprivileged
system user (PG_USER, created when missing). `PgCluster.create()` runs initdb
(trust authentication, superuser `postgres`) in a new directory under the
system temp dir and starts the server listening on 127.0.0.1 only, on a free
port, with its unix socket in that directory. `remove()` stops it
(`pg_ctl stop -m fast`) and deletes the directory. Nothing here touches the
machine's own clusters (/etc/postgresql, /var/lib/postgresql).

Usable on its own, e.g. for a manual session:

    /usr/bin/python3 tests/http/pgcluster.py   # starts one, prints the URL, removes it on Enter
"""

import collections
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import psycopg2

PG_USER = "rostertest"
SUPERUSER = "postgres"
PG_VERSIONS = ("17", "16", "15")  # the first one installed is used; PG_BIN overrides


def pg_bindir():
    explicit = os.environ.get("PG_BIN")
    if explicit:
        return explicit
    for v in PG_VERSIONS:
        d = f"/usr/lib/postgresql/{v}/bin"
        if os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin "
                       "(install postgresql, or set PG_BIN)")


def ensure_user(name=PG_USER):
    """The unprivileged owner of the cluster; created (no home, no shell) when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise RuntimeError(f"system user {name!r} is missing and only root can create it")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True, text=True)
    return pwd.getpwnam(name)


def free_port():
    """A loopback port nothing listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_port():
    """
    A free loopback port below the ephemeral range, so that no client socket or
    `--bind 127.0.0.1:0` server can take it while the cluster is stopped for a
    while and `start()` can have it again. Falls back to the kernel's pick.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(50):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


class PgCluster:
    """One PostgreSQL server: `port`, `url(dbname)`, `stop()`, `start()`, `remove()`."""

    def __init__(self, max_connections=300, settings=()):
        self.bindir = pg_bindir()
        self.max_connections = max_connections
        self.settings = list(settings)  # extra "name=value" server settings
        self.owner = None
        self.dir = None
        self.port = None

    # ------------------------------------------------------------------ lifecycle

    def _as_owner(self, *cmd, timeout=120):
        """Runs a server binary as the cluster's owner (as is when we are that user)."""
        argv = [os.path.join(self.bindir, cmd[0]), *cmd[1:]]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.owner.pw_name, "--", *argv]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              cwd=self.dir, stdin=subprocess.DEVNULL)

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    @property
    def running(self):
        """Whether the postmaster of postmaster.pid is alive (whoever stopped or killed it)."""
        if self.dir is None:
            return False
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    @property
    def logfile(self):
        return os.path.join(self.dir, "server.log")

    def create(self):
        """initdb and start; on failure everything made so far is removed."""
        self.owner = ensure_user() if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
        self.dir = tempfile.mkdtemp(prefix="roster-pg-")
        try:
            os.chown(self.dir, self.owner.pw_uid, self.owner.pw_gid)
            r = self._as_owner("initdb", "-D", self.data, "-A", "trust", "-U", SUPERUSER,
                               "-E", "UTF8", "--locale=C", "--no-sync")
            if r.returncode != 0:
                raise RuntimeError(f"initdb failed ({r.returncode}):\n{r.stdout}{r.stderr}")
            for _ in range(5):  # another process may take the free port first
                self.port = server_port()
                if self.start(check=False):
                    return self
            raise RuntimeError(f"PostgreSQL did not start:\n{self.log_tail()}")
        except BaseException:
            self.remove()
            raise

    def start(self, check=True):
        """pg_ctl start -w on the same port and data; True when it runs."""
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.dir}"
                f" -c max_connections={self.max_connections}"
                " -c log_min_messages=warning -c log_connections=off"
                + "".join(f" -c {kv}" for kv in self.settings))
        r = self._as_owner("pg_ctl", "start", "-w", "-t", "60", "-D", self.data,
                           "-l", self.logfile, "-o", opts)
        ok = r.returncode == 0
        if check and not ok:
            raise RuntimeError(f"pg_ctl start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                               f"{self.log_tail()}")
        return ok

    def stop(self, mode="fast"):
        """pg_ctl stop -m MODE (fast, immediate or smart), waiting; idempotent."""
        if not self.running:
            return
        r = self._as_owner("pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", self.data)
        if r.returncode != 0 and self.running:
            raise RuntimeError(f"pg_ctl stop failed ({r.returncode}): {r.stdout}{r.stderr}")

    def remove(self):
        """Stops the server (if any) and deletes the directory; never raises on a missing one."""
        if self.dir is None:
            return
        try:
            self.stop()
        except (RuntimeError, subprocess.TimeoutExpired):
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def log_tail(self, n=4000):
        try:
            with open(self.logfile, encoding="utf-8", errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return "(no server log)"

    # ------------------------------------------------------------------ databases

    def url(self, dbname):
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname="postgres", **kw):
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname,
                                connect_timeout=10, **kw)
        conn.autocommit = True
        return conn

    def admin(self, sql):
        """One statement in the maintenance database, autocommit."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name, template="template1"):
        self.admin(f"CREATE DATABASE {quote_ident(name)} TEMPLATE {quote_ident(template)}")

    def drop_database(self, name):
        self.admin(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


class DatabaseSupply:
    """
    Fresh copies of `template`, named PREFIX<n>, made ahead by one background
    thread so that a test does not wait for CREATE DATABASE (copying even an
    empty database takes ~0.1-0.3 s on this kind of machine); the same thread
    drops the databases handed back with `drop`. While the cluster is stopped
    (`cluster.running` false) the thread waits. `close()` stops the thread;
    whatever is left goes with the cluster's directory.
    """

    def __init__(self, cluster, template, prefix, ahead=2, wait=60):
        self.cluster = cluster
        self.template = template
        self.prefix = prefix
        self.ahead = ahead
        self.wait = wait
        self._cond = threading.Condition()
        self._ready = collections.deque()
        self._to_drop = collections.deque()
        self._takers = 0
        self._n = 0
        self._closed = False
        self._error = None
        self._thread = threading.Thread(target=self._run, name="pg-database-supply", daemon=True)
        self._thread.start()

    def take(self):
        """The name of a new database (a copy of the template), to be handed back with drop()."""
        deadline = time.monotonic() + self.wait
        with self._cond:
            self._takers += 1
            self._cond.notify_all()
            try:
                while not self._ready:
                    left = deadline - time.monotonic()
                    if left <= 0 or self._closed:
                        raise RuntimeError(f"no database from {self.template!r} within "
                                           f"{self.wait}s (cluster running: "
                                           f"{self.cluster.running}); last error: {self._error}")
                    self._cond.wait(min(left, 0.5))
                name = self._ready.popleft()
                self._cond.notify_all()
                return name
            finally:
                self._takers -= 1

    def drop(self, name):
        with self._cond:
            self._to_drop.append(name)
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout=120)

    def _next_job(self):
        """('create'|'drop', name), or None once closed. Called with the lock held."""
        while not self._closed:
            if self.cluster.running:
                if self._takers and not self._ready:  # someone waits: create first
                    break
                if self._to_drop:
                    return "drop", self._to_drop.popleft()
                if len(self._ready) < self.ahead:
                    break
            self._cond.wait(0.5)
        if self._closed:
            return None
        self._n += 1
        return "create", f"{self.prefix}{self._n}"

    def _run(self):
        while True:
            with self._cond:
                job = self._next_job()
            if job is None:
                return
            what, name = job
            try:
                if what == "create":
                    self.cluster.create_database(name, self.template)
                else:
                    self.cluster.drop_database(name)
            except Exception as e:  # noqa: BLE001 -- the cluster was stopped, most likely
                with self._cond:
                    self._error = f"{what} {name}: {e}"
                    if what == "drop" and not self.cluster.running:
                        self._to_drop.append(name)  # again once it runs; else left to removal
                    self._cond.wait(0.2)
                continue
            if what == "create":
                with self._cond:
                    self._ready.append(name)
                    self._cond.notify_all()


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


if __name__ == "__main__":
    c = PgCluster().create()
    try:
        print(c.url("postgres"), "in", c.dir)
        input("Enter stops and removes it: ")
    finally:
        c.remove()
