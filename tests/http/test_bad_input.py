"""
Malformed, oversized and misrouted requests (invariant I6): each gets a 4xx
JSON error with "error" and "code", writes nothing, and leaves the server
answering /healthz.
"""

import json
import socket

import pytest
import requests

from conftest import (PASSWORD, REGISTER, T, assert_error, assert_healthy, assert_invalid, raw_request,
                      request_head)

LIMIT = 16 * 1024  # the default body limit


@pytest.fixture
def send(server, db):
    """send(data, content_type=...) -> response; afterwards: nothing stored, still healthy."""
    def post(data, content_type="application/json", path=REGISTER, **kw):
        headers = {"Content-Type": content_type} if content_type else {}
        return server.post(path, data=data, headers=headers, **kw)
    yield post
    assert db.count_users() == 0
    assert_healthy(server)


def body_with(**fields):
    base = {"username": "mallory", "email": "mallory@example.com", "password": PASSWORD}
    base.update(fields)
    return json.dumps(base).encode()


@pytest.mark.parametrize("data", [
    b'{"username": ', b"{", b"", b"nul", b'{"a": 1,}', b"{'username': 'x'}", b'{"a": 1} {"b": 2}',
    b"[]", b'["username", "email"]', b'"a string"', b"42", b"null", b"true",
], ids=["truncated", "brace", "empty", "garbage", "trailing-comma", "single-quotes", "two-values",
        "empty-array", "array", "string", "number", "null", "true"])
def test_register_not_json_object_400(send, data):
    assert_error(send(data), 400, "malformed_json")


@pytest.mark.parametrize("data", [
    b'{"username": "al\xffice", "email": "a@example.com", "password": "x-Long-enough-9"}',
    b'{"username": "al\xc3", "email": "a@example.com", "password": "x-Long-enough-9"}',
    b'{"username": "alice", "email": "a@example.com", "password": "\xed\xa0\x80abcdefgh"}',
    b'{"username": "alice", "email": "a@example.com", "password": "\xc0\xafabcdefgh"}',
], ids=["ff-byte", "truncated-sequence", "surrogate", "overlong"])
def test_register_invalid_utf8_400(send, data):
    assert_error(send(data), 400, "malformed_json")


@pytest.mark.parametrize("data", [
    body_with(username="ali\u0000ce"),
    body_with(password="abc\u0000defgh-9X"),
    b'{"username": "ali\x00ce", "email": "a@example.com", "password": "x-Long-enough-9"}',
], ids=["escaped-username", "escaped-password", "raw-byte"])
def test_register_nul_in_string_400(send, data):
    assert_error(send(data), 400, "malformed_json")


@pytest.mark.parametrize("data", [
    b"[" * 10000,
    b'{"a":' + b"[" * 8000 + b"]" * 8000 + b"}",
    b'{"a":' * 2700 + b"1" + b"}" * 2700,
    body_with(extra=json.loads("[" * 20 + "]" * 20)),
], ids=["10000-open", "8000-balanced", "2700-objects", "20-in-field"])
def test_register_deep_nesting_400(send, data):
    assert len(data) <= LIMIT
    assert_error(send(data), 400, "malformed_json")


@pytest.mark.parametrize("field, value", [
    ("username", 123), ("username", None), ("username", ["alice"]), ("email", 5),
    ("email", {"a": "b"}), ("password", 12345678), ("password", True), ("role", 1), ("bio", False),
])
def test_register_wrong_type_field_400(send, field, value):
    assert_invalid(send(body_with(**{field: value})), field)


def test_register_password_5000_bytes_400(send):
    assert_invalid(send(body_with(password="Xy-" + "z" * 4997)), "password")


def test_register_password_100kb_413(send):
    assert_error(send(body_with(password="p" * 100_000)), 413, "body_too_large")


def test_register_body_1mib_413(send, server):
    data = body_with(bio="b" * (1 << 20))
    try:
        r = send(data)
    except requests.ConnectionError:
        # The server may answer early and close while the body is still being
        # sent; then ask again with the Content-Length alone.
        r = raw_request(server, request_head(server, "POST", REGISTER, {
            "Content-Type": "application/json", "Content-Length": len(data)}))
    assert_error(r, 413, "body_too_large")


def test_register_chunked_over_limit_413(send, server):
    data = body_with(bio="c" * (3 * LIMIT))
    chunks = [b"%x\r\n%s\r\n" % (len(data[i:i + 1024]), data[i:i + 1024])
              for i in range(0, len(data), 1024)] + [b"0\r\n\r\n"]
    r = raw_request(server, request_head(server, "POST", REGISTER, {
        "Content-Type": "application/json", "Transfer-Encoding": "chunked"}), chunks)
    assert_error(r, 413, "body_too_large")


def test_register_content_length_only_far_over_limit_413(send, server):
    """A declared length past 1 MiB is answered at once, before any body byte
    (issue 14: smaller oversized bodies are read first, see below)."""
    r = raw_request(server, request_head(server, "POST", REGISTER, {
        "Content-Type": "application/json", "Content-Length": 2 << 20}))
    assert_error(r, 413, "body_too_large")


def read_response(f):
    """One HTTP/1.1 response with a Content-Length from the file `f`: (status, headers, body)."""
    line = f.readline()
    assert line.startswith(b"HTTP/1.1 "), line
    headers = {}
    while (h := f.readline()) not in (b"\r\n", b""):
        k, _, v = h.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(line.split()[1]), headers, f.read(int(headers.get("content-length", "0")))


@pytest.mark.parametrize("size", [17 * 1024, 40 * 1024, 64 * 1024, 1 << 20])
def test_issue_14_oversized_declared_body_read_then_413_keep_alive(send, server, size):
    """A declared body over the limit (up to 1 MiB) is read and dropped before the
    413, on a connection kept alive: a proxy writing it never sees the connection
    close under it (issue 14: nginx counted that as an instance failure). The next
    request on the same connection is answered."""
    body = b"x" * size
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=T)
    try:
        sock.sendall(request_head(server, "POST", REGISTER, {
            "Content-Type": "application/json", "Content-Length": size}))
        sock.sendall(body)  # the whole body: no reset, no early close
        sock.sendall(request_head(server, "GET", "/healthz", {}))
        f = sock.makefile("rb")
        status, headers, payload = read_response(f)
        assert status == 413, (status, payload)
        err = json.loads(payload)
        assert err["code"] == "body_too_large" and err["request_id"], err
        assert headers.get("connection", "").lower() != "close", headers
        status, _, payload = read_response(f)  # the next request on the same connection
        assert status == 200, (status, payload)
        assert json.loads(payload) == {"status": "ok"}
    finally:
        sock.close()


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None],
                         ids=["text", "form", "multipart", "missing"])
def test_register_wrong_content_type_415(send, content_type):
    assert_error(send(body_with(), content_type=content_type), 415, "unsupported_media_type")


@pytest.mark.parametrize("method, path", [
    ("GET", "/nope"), ("GET", "/users/"), ("POST", "/users/nope/"), ("GET", "/users/register/x"),
    ("GET", "/" + "a" * 2000),
], ids=["nope", "users", "post-users-nope", "register-sub", "long-2000"])
def test_request_unknown_path_404(send, server, method, path):
    r = requests.request(method, server.url + path, timeout=30)
    assert_error(r, 404, "not_found")


@pytest.mark.parametrize("path", ["/%00", "/users/register/%00", "/..%2f..%2fetc/passwd",
                                  "/users/register/%ff%fe", "/users//register/"])
def test_request_odd_path_4xx(send, server, path):
    r = requests.get(server.url + path, timeout=30)
    assert_error(r, r.status_code, r.json().get("code"))
    assert r.status_code in (400, 404, 405), r.status_code


@pytest.mark.parametrize("method, path, allowed", [
    ("GET", REGISTER, "POST"), ("PUT", REGISTER, "POST"), ("DELETE", "/users/register", "POST"),
    ("POST", "/healthz", "GET"),
])
def test_request_wrong_method_405(send, server, method, path, allowed):
    r = requests.request(method, server.url + path, timeout=30)
    assert_error(r, 405, "method_not_allowed")
    assert allowed in [m.strip() for m in r.headers.get("Allow", "").split(",")], r.headers
