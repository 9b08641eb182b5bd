"""
docs/openapi.yaml (issue 10, item 2): the document roster serves is the one in the
repository, it names every route of the server, and the validator every test's
responses go through (openapi_check.py, wired in conftest.py) catches a response
the document does not describe.
"""

import os
import re

import pytest
import requests
import yaml

import openapi_check
from conftest import FAST_HASH, REGISTER, T, assert_created, user_body

HERE = os.path.dirname(os.path.abspath(__file__))
ROUTES_C = os.path.join(HERE, "..", "..", "src", "api", "routes.c")
HTTP_LAYER = pytest.mark.parametrize("backend", ["sqlite"])


@HTTP_LAYER
def test_served_document_is_the_repository_one(server):
    r = server.get("/openapi.json")
    assert r.status_code == 200
    with open(openapi_check.SPEC_PATH, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    doc.pop("x-header-sets", None)
    assert r.json() == doc


def test_every_route_is_documented_and_every_documented_path_routed():
    with open(ROUTES_C, encoding="utf-8") as f:
        routed = set(re.findall(r'^\s*\{"(/[^"]*)",', f.read(), flags=re.M))
    documented = set(openapi_check.SPEC["paths"])
    assert routed == documented, (f"routed, not documented: {sorted(routed - documented)}; "
                                  f"documented, not routed: {sorted(documented - routed)}")


HEADERS = {"Content-Type": "application/json", "X-Request-ID": "abc123", "Cache-Control":
           "no-store"}
CREATED = (b'{"message":"User registered successfully.","user":{"id":1,"username":"a",'
           b'"email":"a@example.com","role":"explorer"}}')


@pytest.mark.parametrize("what,method,path,status,headers,body", [
    ("an undocumented status", "POST", REGISTER, 418, HEADERS, b'{}'),
    ("a body member missing", "POST", REGISTER, 201, HEADERS,
     b'{"message":"User registered successfully."}'),
    ("a member the schema does not have", "POST", REGISTER, 201, HEADERS,
     CREATED[:-1] + b',"extra":1}'),
    ("a code not allowed at that status", "POST", REGISTER, 400, HEADERS,
     b'{"error":"x","code":"not_found","request_id":"r"}'),
    ("the register 500 message changed", "POST", REGISTER, 500, HEADERS,
     b'{"error":"An unexpected error occurred.","code":"internal","request_id":"r"}'),
    ("X-Request-ID missing", "POST", REGISTER, 201,
     {"Content-Type": "application/json", "Cache-Control": "no-store"}, CREATED),
    ("Retry-After missing on 429", "POST", REGISTER, 429, HEADERS,
     b'{"error":"Too many requests; retry later.","code":"rate_limited","request_id":"r"}'),
    ("a media type not documented", "GET", "/healthz", 200,
     {**HEADERS, "Content-Type": "text/html"}, b"<p>ok</p>"),
    ("a body on 204", "POST", "/users/logout/", 204, HEADERS, b"{}"),
    ("an unknown path answered 200", "GET", "/no/such/path/", 200, HEADERS, b'{}'),
])
def test_validator_catches_a_response_the_document_does_not_describe(what, method, path, status,
                                                                     headers, body):
    """The check each test's responses go through, fed one broken response at a time."""
    h = requests.structures.CaseInsensitiveDict(headers)
    assert openapi_check.check(method, path, status, h, body), f"{what}: not caught"


def test_validator_passes_the_well_formed_twins():
    h = requests.structures.CaseInsensitiveDict(HEADERS)
    assert openapi_check.check("POST", REGISTER, 201, h, CREATED) == []
    assert openapi_check.check("POST", "/users/register", 201, h, CREATED) == []  # no slash
    assert openapi_check.check("GET", "/no/such/path/", 404, h,
                               b'{"error":"Not found.","code":"not_found","request_id":"r"}') == []


@HTTP_LAYER
def test_real_responses_validate_and_are_counted(db, start_servers):
    server = start_servers(db, 1, FAST_HASH)[0]
    before = openapi_check.counts["validated"]
    assert_created(server.register(user_body("oa")))
    assert requests.get(server.url + "/users/me/", timeout=T).status_code == 401
    assert openapi_check.counts["validated"] == before + 2
