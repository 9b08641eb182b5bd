"""
GET /auth/check (issue 13, item 4): who a token belongs to, for nginx's
auth_request in front of the rest of a platform. Directly: 200 with the X-User-*
headers and no body for a valid token, 401 with no body otherwise, one token
lookup. Through a real nginx running deploy/nginx/auth-request.example.conf (only
its ports substituted) in front of a small upstream that records what reaches it:
the headers arrive for a valid token, a client's forged X-User-* never does, and
no token (or a revoked one) is 401 with nothing sent upstream.
"""

import http.server
import os
import re
import socket
import subprocess
import threading
import urllib.parse

import pytest
import requests

import openapi_check
from conftest import (FAST_HASH, LOGOUT, T, assert_created, auth, token_of, user_body)
from test_topology import INSTANCE_ARGS, Nginx, free_port

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "deploy", "nginx", "auth-request.example.conf")
CHECK = "/auth/check"


def user_headers(resp):
    return {k: resp.headers.get(k) for k in ("X-User-Id", "X-User-Name", "X-User-Email",
                                             "X-User-Role")}


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST", "DELETE"])
def test_auth_check_valid_token_200_headers_no_body(server, method):
    name = "\u00e9l\u00e8ve_7"  # non-ASCII: percent-encoded UTF-8 in the header
    assert_created(server.register(user_body(name, email="eleve7@example.com")))
    token = token_of(server, name)
    me = server.get("/users/me/", headers=auth(token)).json()
    r = server.request(method, CHECK, headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.content == b""
    h = user_headers(r)
    assert h["X-User-Id"] == str(me["id"])
    assert urllib.parse.unquote(h["X-User-Name"]) == me["username"] == name
    assert re.fullmatch(r"[A-Za-z0-9._~@+%-]+", h["X-User-Name"]), h
    assert h["X-User-Email"] == "eleve7@example.com"
    assert h["X-User-Role"] == "explorer"


@pytest.mark.parametrize("header", [None, "Token nothex", "Token " + "0" * 64, "Basic YTpi"])
def test_auth_check_without_a_valid_token_401_no_body(server, header):
    r = server.get(CHECK, headers={"Authorization": header} if header else {})
    assert r.status_code == 401
    assert r.content == b""
    assert r.headers.get("WWW-Authenticate") == "Token"
    assert all(v is None for v in user_headers(r).values())


def test_auth_check_revoked_token_401(server):
    assert_created(server.register(user_body("gone")))
    token = token_of(server, "gone")
    assert server.post(LOGOUT, headers=auth(token)).status_code == 204
    assert server.get(CHECK, headers=auth(token)).status_code == 401


class _Recorder(http.server.BaseHTTPRequestHandler):
    """The platform: answers 200 and keeps the headers of every request it got."""
    seen = []

    def _any(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        _Recorder.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = b"platform ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def platform(db, start_servers, tmp_path):
    """(roster instances, nginx with roster.conf and the auth-request example, recorder)."""
    upstream = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    listen = free_port()
    with open(EXAMPLE) as f:
        text = f.read()
    text = re.sub(r"127\.0\.0\.1:\d+;(\s*# PLATFORM_UPSTREAM)",
                  f"127.0.0.1:{upstream.server_port};\\1", text)
    text = re.sub(r"127\.0\.0\.1:\d+;(\s*# PLATFORM_LISTEN_PORT)", f"127.0.0.1:{listen};\\1",
                  text)
    assert f":{upstream.server_port};" in text and f":{listen};" in text
    openapi_check.foreign_ports.add(listen)  # the platform's answers, not roster's
    instances = start_servers(db, 2, INSTANCE_ARGS)
    ng = Nginx(str(tmp_path / "nginx"), [s.port for s in instances] + [instances[0].port],
               extra=[text])
    _Recorder.seen = []
    try:
        ng.wait_ready()
        yield instances, ng, f"http://127.0.0.1:{listen}"
    finally:
        ng.stop()
        upstream.shutdown()
        upstream.server_close()
    errors = [l for l in ng.error_log().splitlines() if "[emerg]" in l or "[alert]" in l]
    assert not errors, f"nginx error log: {errors}"


def test_auth_request_through_nginx_headers_reach_the_platform_forged_ones_never(platform):
    instances, ng, site = platform
    assert_created(ng.register(user_body("teacher_k", email="k@school.example")))
    token = ng.post("/users/login/", json={"username": "teacher_k",
                                            "password": user_body("teacher_k")["password"]}
                    ).json()["token"]
    me = ng.get("/users/me/", headers=auth(token)).json()
    forged = {"X-User-Id": "999", "x-user-role": "admin", "X-USER-NAME": "root",
              "X-User_Id": "999", "X-User-Email": "boss@example.com"}

    # A valid token: roster's values reach the platform, the client's forged ones do not.
    r = requests.post(site + "/courses/42/enrol", headers={**auth(token), **forged},
                      data=b"x=1", timeout=T)
    assert r.status_code == 200 and r.text == "platform ok", (r.status_code, r.text)
    got = _Recorder.seen[-1]
    assert got["x-user-id"] == str(me["id"]) != "999"
    assert got["x-user-name"] == "teacher_k"
    assert got["x-user-email"] == "k@school.example"
    assert got["x-user-role"] == "explorer"
    assert "x-user_id" not in got and "authorization" not in got, got

    # No token, a forged identity only: 401, and nothing reaches the platform.
    before = len(_Recorder.seen)
    for headers in ({}, forged, {"Authorization": "Token " + "f" * 64, **forged}):
        r = requests.get(site + "/courses/", headers=headers, timeout=T)
        assert r.status_code == 401, (headers, r.status_code)
    assert len(_Recorder.seen) == before, _Recorder.seen[before:]

    # Logged out: the same token no longer passes.
    assert ng.post(LOGOUT, headers=auth(token)).status_code == 204
    assert requests.get(site + "/courses/", headers=auth(token), timeout=T).status_code == 401
    assert len(_Recorder.seen) == before


@pytest.fixture
def django_site(db, start_servers, tmp_path):
    """(nginx, the site URL): the auth-request example in front of a Django site that
    uses contrib/django/roster_auth.py (tests/http/django_platform.py)."""
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(HERE, "django_platform.py"),
                             str(tmp_path / "django.sqlite3")], stdout=subprocess.PIPE,
                            stderr=open(tmp_path / "django.stderr", "wb"), text=True)
    try:
        port = int(proc.stdout.readline())
        listen = free_port()
        with open(EXAMPLE) as f:
            text = f.read()
        text = re.sub(r"127\.0\.0\.1:\d+;(\s*# PLATFORM_UPSTREAM)", f"127.0.0.1:{port};\\1", text)
        text = re.sub(r"127\.0\.0\.1:\d+;(\s*# PLATFORM_LISTEN_PORT)", f"127.0.0.1:{listen};\\1",
                      text)
        openapi_check.foreign_ports.update({listen, port})  # Django's answers
        instances = start_servers(db, 2, INSTANCE_ARGS)
        ng = Nginx(str(tmp_path / "nginx"), [s.port for s in instances] + [instances[0].port],
                   extra=[text])
        try:
            ng.wait_ready()
            yield ng, f"http://127.0.0.1:{listen}", port
        finally:
            ng.stop()
    finally:
        proc.kill()  # only the PID we started
        proc.wait()


def test_contrib_django_request_user_is_the_roster_account(django_site):
    """Issue 13, item 4: the contrib DRF class and middleware give the right request.user
    in a Django view behind that nginx; headers from anyone but nginx are ignored."""
    ng, site, django_port = django_site
    assert_created(ng.register(user_body("prof_\u00e5sa", email="asa@school.example")))
    token = token_of(ng, "prof_\u00e5sa")
    me = ng.get("/users/me/", headers=auth(token)).json()
    r = requests.get(site + "/courses/whoami/", headers={**auth(token), "X-User-Id": "999"},
                     timeout=T)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": me["id"], "username": "prof_\u00e5sa",
                        "email": "asa@school.example", "role": "explorer"}
    r = requests.get(site + "/courses/plain/", headers=auth(token), timeout=T)
    assert r.json() == {"authenticated": True, "id": me["id"]}
    assert requests.get(site + "/courses/whoami/", timeout=T).status_code == 401  # nginx
    # Straight to Django from an address that is not the trusted nginx: forged headers
    # name nobody.
    for path in ("/courses/whoami/", "/courses/plain/"):
        with socket.socket() as sock:
            sock.settimeout(T)
            sock.bind(("127.0.0.3", 0))
            sock.connect(("127.0.0.1", django_port))
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nX-User-Id: {me['id']}\r\n"
                         f"Connection: close\r\n\r\n".encode())
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
        status = int(raw.split(b" ", 2)[1])
        if path.endswith("whoami/"):
            assert status in (401, 403), raw[:300]
        else:
            assert raw.endswith(b'{"authenticated": false, "id": null}'), raw[-200:]
