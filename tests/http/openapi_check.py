"""
Every response the black-box suite receives is checked against docs/openapi.yaml
(issue 10, item 2): the status must be one the operation (or the document's
`components.x-transport-errors`, for any path and method) lists, each required
header must be there and match its schema, the media type must be one listed,
and a JSON body must validate against the response's schema (Draft 2020-12, as
OpenAPI 3.1 says), with `x-codes` / `x-messages` naming the `code` and `error`
values allowed there.

conftest.py wraps requests (every Session.send) and its raw-socket helper with
`observe`; each test fails at teardown for a response the document does not
describe. `check` is also what test_openapi.py calls directly.
"""

import json
import os
import re
import threading
import urllib.parse

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SPEC_PATH = os.path.join(HERE, "..", "..", "docs", "openapi.yaml")

with open(SPEC_PATH, encoding="utf-8") as _f:
    SPEC = yaml.safe_load(_f)

_resolver = jsonschema.RefResolver.from_schema(SPEC)
_validator_cls = jsonschema.Draft202012Validator


def _deref(node):
    while isinstance(node, dict) and "$ref" in node and len(node) == 1:
        node = _resolver.resolve(node["$ref"])[1]
    return node


def _template_re(template):
    parts = re.split(r"(\{[^}]+\})", template.rstrip("/"))
    body = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile("^" + body + "/?$")


_PATHS = [(_template_re(p), p, item) for p, item in SPEC["paths"].items()]
TRANSPORT = SPEC["components"]["x-transport-errors"]


def _find(path):
    for rx, template, item in _PATHS:
        if rx.match(path):
            return template, item
    return None, None


def _allowed(node, key, value):
    """x-codes / x-messages: where a schema node (or what it refers to) names them."""
    want = node.get(key) if isinstance(node, dict) else None
    return want is None or value in want


def check(method, target, status, headers, body):
    """Problems (a list of strings) with one response; [] when the document describes it.
    `target` is the request target (path and query, percent-encoded as sent);
    `headers` a case-insensitive mapping; `body` bytes."""
    method = method.upper()
    path = urllib.parse.unquote(urllib.parse.urlsplit(target).path)
    if path == "/account" or path.startswith("/account/"):
        return []  # the HTML pages (src/pages/) are not part of the JSON API the document describes
    template, item = _find(path)
    where = f"{method} {target} -> {status}"
    op = None
    if item is not None:
        op = item.get("get" if method == "HEAD" else method.lower())
    responses = dict(TRANSPORT)
    if op is not None:
        responses.update(op.get("responses", {}))
    resp = responses.get(str(status))
    if resp is None:
        what = (f"operation {method.lower()} {template}" if op is not None
                else f"path {template} has no {method}" if item is not None
                else "no path of the document")
        return [f"{where}: status {status} not documented ({what})"]
    resp = _deref(resp)
    problems = []
    for name, h in (resp.get("headers") or {}).items():
        h = _deref(h)
        value = headers.get(name)
        if value is None:
            if h.get("required"):
                problems.append(f"{where}: header {name} missing")
            continue
        errs = list(_validator_cls(h.get("schema", {}), resolver=_resolver).iter_errors(value))
        if errs:
            problems.append(f"{where}: header {name}: {value!r}: {errs[0].message}")
    content = resp.get("content")
    if method == "HEAD" or status in (204, 304):
        if body:
            problems.append(f"{where}: a body where none is documented")
        return problems
    if not content:
        if body:
            problems.append(f"{where}: a body where none is documented")
        return problems
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    media = content.get(ctype)
    if media is None:
        return problems + [f"{where}: Content-Type {ctype!r} not documented "
                           f"({', '.join(content)})"]
    schema = media.get("schema", {})
    if ctype == "application/json":
        try:
            doc = json.loads(body)
        except ValueError as e:
            return problems + [f"{where}: body is not JSON ({e})"]
        errs = sorted(_validator_cls(schema, resolver=_resolver).iter_errors(doc),
                      key=lambda e: list(e.absolute_path))
        for e in errs[:3]:
            at = "/".join(str(p) for p in e.absolute_path) or "(body)"
            problems.append(f"{where}: {at}: {e.message}")
        if isinstance(doc, dict):
            if "code" in doc and not _allowed(schema, "x-codes", doc["code"]):
                problems.append(f"{where}: code {doc['code']!r} not among {schema['x-codes']}")
            if "error" in doc and not _allowed(schema, "x-messages", doc["error"]):
                problems.append(f"{where}: error {doc['error']!r} not among "
                                f"{schema['x-messages']}")
    return problems


# --------------------------------------------------------------------------- the suite's record

_lock = threading.Lock()
_problems = []
counts = {"validated": 0}
# Local ports that are not roster's (a platform a test puts behind nginx): not checked.
foreign_ports = set()


def observe(method, target, status, headers, body):
    """Checks one response the suite received and keeps any problem for the test's teardown."""
    found = check(method, target, status, headers, body)
    with _lock:
        counts["validated"] += 1
        _problems.extend(found)


def take_problems():
    with _lock:
        out = list(_problems)
        _problems.clear()
    return out
