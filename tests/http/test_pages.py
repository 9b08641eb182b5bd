"""
The HTML pages under /account/ (src/pages/): first browser-less (requests with
a cookie jar, as a browser without JavaScript posts a form), then in a real
headless chromium (tests/browser/driver.mjs via browser.py): the flows end to
end, JavaScript off, CSRF from another origin, framing, axe-core, screenshots.
Every test runs on both backends against real `roster serve` processes.
Screenshots of each page at 320 and 1280 px go to $ROSTER_SCREENSHOTS (default: a
new temporary directory, printed); with ROSTER_UPDATE_SCREENSHOTS=1 the register
page and the profile are copied to docs/screenshots/ (the README's).
"""
import concurrent.futures
import html
import http.server
import os
import re
import shutil
import tempfile
import threading
import time

import pytest
import requests

import openapi_check
from browser import Browser
from conftest import (FAST_HASH, INVITATIONS, ME, PASSWORD, T, auth, cli_user, invite, login,
                      token_of)

CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'"
CSRF_RE = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')
LINK_RE = re.compile(r'href="(http://[^"]+/account/invitation\?token=[0-9a-f]{64})"')
SHOTS = os.environ.get("ROSTER_SCREENSHOTS") or tempfile.mkdtemp(prefix="roster-pages-")
DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "screenshots")


class Pages:
    """A browser without JavaScript: one cookie jar, forms posted with the page's token."""

    def __init__(self, server):
        self.base = server.url
        self.s = requests.Session()

    def get(self, path, **kw):
        return self.s.get(self.base + path, timeout=T, allow_redirects=False, **kw)

    def csrf(self, path):
        r = self.get(path)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        m = CSRF_RE.search(r.text)
        assert m, f"no csrf_token on {path}"
        return m.group(1)

    def post(self, path, data, csrf_from=None, origin="self", csrf=True, **kw):
        body = dict(data)
        if csrf:
            body["csrf_token"] = self.csrf(csrf_from or path)
        headers = kw.pop("headers", {})
        if origin == "self":
            headers["Origin"] = self.base
        elif origin is not None:
            headers["Origin"] = origin
        return self.s.post(self.base + path, data=body, headers=headers, timeout=T,
                           allow_redirects=False, **kw)

    def register(self, name, email=None, password=PASSWORD, bio="", csrf_from=None, **extra):
        return self.post("/account/register", {"username": name,
                                               "email": email or f"{name}@example.com",
                                               "password": password, "bio": bio, **extra},
                         csrf_from=csrf_from or "/account/register")

    def login(self, name, password=PASSWORD):
        return self.post("/account/login", {"username": name, "password": password})


def field_error(page, field):
    m = re.search(rf'<p class="error" id="{field}-error">([^<]*)</p>', page)
    return html.unescape(m.group(1)) if m else None


def assert_page_headers(r, token_url=False, personal=True):
    assert r.headers["Content-Type"] == "text/html; charset=utf-8", r.headers
    assert r.headers["Content-Security-Policy"] == CSP, r.headers
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    if token_url:
        assert r.headers["Referrer-Policy"] == "no-referrer", r.headers
    if personal:
        assert r.headers["Cache-Control"] == "no-store", r.headers
    assert "<script" not in r.text and " style=" not in r.text and "<style" not in r.text


@pytest.fixture
def site(db, start_servers):
    return start_servers(db, args=FAST_HASH)[0]


def inviter(db, site, name="inv"):
    cli_user(db, name, "--can-invite-teachers")
    return token_of(site, name)


# --------------------------------------------------------------------------- without a browser

def test_pages_register_then_profile_and_headers(site, db):
    p = Pages(site)
    r = p.get("/account/register")
    assert_page_headers(r)
    assert 'autocomplete="new-password"' in r.text and 'autocomplete="email"' in r.text
    r = p.register("pa1", bio="hello")
    assert r.status_code == 303 and r.headers["Location"] == "/account/", (r.status_code, r.text)
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith("roster_session=") and "HttpOnly" in cookie and \
        "SameSite=Lax" in cookie and "Path=/;" in cookie and "Secure" not in cookie, cookie
    r = p.get("/account/")
    assert r.status_code == 200
    assert_page_headers(r)
    assert '<dd class="username">pa1</dd>' in r.text and '<dd class="role">explorer</dd>' in r.text
    assert db.count_users() == 1
    db.assert_invariants()


def test_pages_headers_on_every_page(site, db):
    token = inviter(db, site, "hdr")
    inv = invite(site, token, "hdr-t@example.com")
    p = Pages(site)
    assert p.login("hdr").status_code == 303
    for path, token_url in (("/account/login", False), ("/account/register", False),
                            ("/account/", False), ("/account/invitations", False),
                            (f"/account/invitation?token={inv['token']}", True),
                            (f"/account/register?invitation={inv['token']}", True),
                            (f"/account/login?next=/account/invitation%3Ftoken%3D{inv['token']}",
                             True),
                            ("/account/password/forgot", False),
                            ("/account/password/reset?token=" + "0" * 64, True),
                            ("/account/email/verify?token=" + "0" * 64, True),
                            ("/account/email/change?token=" + "0" * 64, True),
                            ("/account/missing", False)):
        r = p.get(path)
        want = 404 if path == "/account/missing" else 400 if "0" * 64 in path else 200
        assert r.status_code == want, path
        assert_page_headers(r, token_url=token_url)
        if not token_url:
            assert r.headers["Referrer-Policy"] == "same-origin", path
        assert '<link rel="stylesheet" href="/account/static/site.css">' in r.text
    r = p.get("/account/static/site.css")
    assert r.headers["X-Content-Type-Options"] == "nosniff" and r.headers["ETag"]


def test_pages_register_errors_next_to_fields_values_kept(site, db):
    p = Pages(site)
    assert p.register("taken1").status_code == 303
    q = Pages(site)
    r = q.register("taken1", email="other@example.com", bio="my bio")
    assert r.status_code == 400
    assert field_error(r.text, "username") == "Username already taken."
    assert 'aria-describedby="username-hint username-error"' in r.text
    assert 'value="other@example.com"' in r.text and ">my bio</textarea>" in r.text
    assert PASSWORD not in r.text  # a password never comes back
    r = q.register("x y", email="bad", password="123")
    assert r.status_code == 400
    assert field_error(r.text, "username").startswith("Enter a valid username.")
    assert field_error(r.text, "email") == "Enter a valid email address."
    assert "This password is too short." in field_error(r.text, "password")
    r = q.register("fresh1", email="taken1@example.com")
    assert field_error(r.text, "email") == "Email already registered."
    assert db.count_users() == 1


def test_pages_login_bio_logout_and_sessions(site, db):
    cli_user(db, "pl1")
    p = Pages(site)
    r = p.login("pl1", password="wrong-password-1")
    assert r.status_code == 400 and "Invalid credentials." in r.text
    assert 'value="pl1"' in r.text
    r = p.login("pl1")
    assert r.status_code == 303 and r.headers["Location"] == "/account/"
    session = p.s.cookies["roster_session"]
    # The JSON API never takes the cookie; /auth/check does.
    assert requests.get(site.url + ME, cookies={"roster_session": session}, timeout=T).status_code == 401
    r = requests.get(site.url + "/auth/check", cookies={"roster_session": session}, timeout=T)
    assert r.status_code == 200 and r.headers["X-User-Name"] == "pl1", r.headers
    r = p.post("/account/", {"bio": '"><img src=x onerror=alert(1)>'}, csrf_from="/account/")
    assert r.status_code == 303
    r = p.get("/account/")
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in r.text and "<img" not in r.text
    assert db.query("SELECT bio FROM profiles")[0][0] == '"><img src=x onerror=alert(1)>'
    r = p.post("/account/", {"bio": "x" * 501}, csrf_from="/account/")
    assert r.status_code == 400
    assert field_error(r.text, "bio") == "Ensure this field has no more than 500 characters."
    r = p.post("/account/logout", {}, csrf_from="/account/")
    assert r.status_code == 303 and "Max-Age=0" in r.headers["Set-Cookie"]
    r = requests.get(site.url + "/auth/check", cookies={"roster_session": session}, timeout=T)
    assert r.status_code == 401
    assert p.get("/account/").status_code == 303


def test_pages_logout_everywhere_ends_api_tokens(site, db):
    cli_user(db, "pe1")
    api_token = token_of(site, "pe1")
    p = Pages(site)
    assert p.login("pe1").status_code == 303
    assert p.post("/account/logout", {"all": "1"}, csrf_from="/account/").status_code == 303
    assert site.get(ME, headers=auth(api_token)).status_code == 401


def test_pages_csrf_refused_changes_nothing(site, db):
    cli_user(db, "pc1")
    p = Pages(site)
    assert p.login("pc1").status_code == 303
    good = p.csrf("/account/")
    for data, origin in (({"bio": "no token"}, "self"),
                         ({"bio": "bad token", "csrf_token": "0" * 64}, "self"),
                         ({"bio": "foreign", "csrf_token": good}, "http://127.0.0.1:1"),
                         ({"bio": "foreign ref", "csrf_token": good}, None)):
        headers = {"Referer": "http://evil.example/x"} if origin is None else {}
        r = p.post("/account/", data, origin=origin, csrf=False, headers=headers)
        assert r.status_code == 403, (data, r.status_code)
        assert_page_headers(r)
    assert db.query("SELECT bio FROM profiles")[0][0] == ""
    # The anonymous forms: no token, or no cookie to match it.
    q = Pages(site)
    r = q.post("/account/register", {"username": "pc2", "email": "pc2@example.com",
                                     "password": PASSWORD}, csrf=False)
    assert r.status_code == 403
    token = q.csrf("/account/register")
    r = requests.post(site.url + "/account/register", data={
        "username": "pc3", "email": "pc3@example.com", "password": PASSWORD,
        "csrf_token": token}, headers={"Origin": site.url}, timeout=T, allow_redirects=False)
    assert r.status_code == 403
    assert db.count_users() == 1


def test_pages_register_race_one_account(db, start_servers):
    """20 browser-less clients post the register form with one email at once, to two
    instances; each took its form (cookie and csrf_token) from the other instance, so
    the CSRF check needs nothing but what the client sent."""
    servers = start_servers(db, n=2, args=FAST_HASH)
    clients = [Pages(servers[i % 2]) for i in range(20)]
    tokens = [c.csrf("/account/register") for c in clients]
    barrier = threading.Barrier(20)

    def post(i):
        url = servers[(i + 1) % 2].url
        barrier.wait(timeout=T)
        return clients[i].s.post(url + "/account/register", data={
            "username": f"race{i}", "email": "Race@Example.com" if i % 2 else "race@example.COM",
            "password": PASSWORD, "csrf_token": tokens[i]}, headers={"Origin": url}, timeout=T,
            allow_redirects=False)

    with concurrent.futures.ThreadPoolExecutor(20) as ex:
        results = list(ex.map(post, range(20)))
    codes = sorted(r.status_code for r in results)
    print("pages register race, 20 clients on 2 instances:", codes)
    assert codes == [303] + [400] * 19, codes
    for r in results:
        if r.status_code == 400:
            assert field_error(r.text, "email") == "Email already registered.", r.text[:500]
    assert db.count_users() == 1
    db.assert_invariants()


def test_pages_token_links_get_leaves_token_usable(site, db):
    token = inviter(db, site)
    inv = invite(site, token, "teach1@example.com")
    p = Pages(site)
    for path in (f"/account/invitation?token={inv['token']}",
                 f"/account/register?invitation={inv['token']}"):
        for method in ("GET", "HEAD", "GET"):
            r = p.s.request(method, site.url + path, timeout=T, allow_redirects=False)
            assert r.status_code == 200, (path, r.status_code)
            assert r.headers["Referrer-Policy"] == "no-referrer"
    r = p.get(f"/account/register?invitation={inv['token']}")
    assert 'value="teach1@example.com" readonly' in r.text
    assert db.invitation(inv["id"])["status"] == "pending"
    r = p.register("teach1", email="teach1@example.com",
                   invitation=inv["token"], csrf_from=f"/account/register?invitation={inv['token']}")
    assert r.status_code == 303, r.text[:500]
    r = p.get("/account/")
    assert '<dd class="role">teacher</dd>' in r.text
    assert db.invitation(inv["id"])["status"] == "accepted"
    r = p.get(f"/account/invitation?token={inv['token']}")
    assert "This invitation has already been used." in r.text
    r = p.get("/account/invitation?token=" + "0" * 64)
    assert "Invalid invitation token." in r.text


def test_pages_invitation_accept_by_logged_in_invitee(site, db):
    token = inviter(db, site)
    inv = invite(site, token, "later1@example.com")
    cli_user(db, "later1", email="later1@example.com")  # registered after the invitation
    p = Pages(site)
    path = f"/account/invitation?token={inv['token']}"
    r = p.get(path)
    assert "Log in, then accept" in r.text and f"/account/register?invitation={inv['token']}" in r.text
    assert p.post("/account/login", {"username": "later1", "password": PASSWORD,
                                     "next": path}).headers["Location"] == path
    r = p.post("/account/invitation", {"token": inv["token"]}, csrf_from=path)
    assert r.status_code == 303, r.text[:400]
    assert '<dd class="role">teacher</dd>' in p.get("/account/").text
    assert db.invitation(inv["id"])["status"] == "accepted"


def test_pages_invitations_create_resend_revoke(site, db):
    inviter(db, site, "inv2")
    p = Pages(site)
    assert p.login("inv2").status_code == 303
    r = p.post("/account/invitations", {"action": "create", "email": "t2@example.com"})
    assert r.status_code == 200
    link = LINK_RE.search(r.text)
    assert link, r.text[:800]
    r = p.post("/account/invitations", {"action": "create", "email": "t2@example.com"})
    assert r.status_code == 409
    assert field_error(r.text, "email") == "An invitation is already pending for this email."
    r = p.post("/account/invitations", {"action": "create", "email": "nope"})
    assert field_error(r.text, "email") == "Enter a valid email address."
    inv_id = db.query("SELECT id FROM teacher_invitations")[0][0]
    r = p.post("/account/invitations", {"action": "resend", "id": str(inv_id)})
    assert r.status_code == 200 and LINK_RE.search(r.text).group(1) != link.group(1)
    r = p.post("/account/invitations", {"action": "revoke", "id": str(inv_id)})
    assert r.status_code == 303
    r = p.get("/account/invitations")
    assert 'status-revoked">revoked</span>' in r.text
    # Not an inviter: 403 page.
    cli_user(db, "plain1")
    q = Pages(site)
    q.login("plain1")
    r = q.get("/account/invitations")
    assert r.status_code == 403
    assert_page_headers(r)


def test_pages_error_pages_are_html_api_stays_json(site):
    r = requests.get(site.url + "/account/nowhere", timeout=T)
    assert r.status_code == 404
    assert_page_headers(r)
    assert "Not found." in r.text
    r = requests.delete(site.url + "/account/login", timeout=T)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, POST"
    assert_page_headers(r)
    r = requests.post(site.url + "/account/login", data={"x": "y" * 20000}, timeout=T)
    assert r.status_code == 413 and "text/html" in r.headers["Content-Type"]
    r = requests.post(site.url + "/account/login", json={"username": "a"}, timeout=T)
    assert r.status_code == 415 and "text/html" in r.headers["Content-Type"]
    r = requests.get(site.url + "/nowhere", timeout=T)
    assert r.status_code == 404 and r.json()["code"] == "not_found"


def test_pages_full_hash_queue_shows_try_again(db, start_servers):
    server = start_servers(db, args=["--hash-workers", "1", "--hash-queue", "1",
                                     "--hash-memory", "65536", "--hash-passes", "4"])[0]
    clients = [Pages(server) for _ in range(8)]
    tokens = [c.csrf("/account/register") for c in clients]
    barrier = threading.Barrier(8)

    def post(i):
        barrier.wait(timeout=T)
        return clients[i].s.post(server.url + "/account/register", data={
            "username": f"busy{i}", "email": f"busy{i}@example.com", "password": PASSWORD,
            "csrf_token": tokens[i]}, headers={"Origin": server.url}, timeout=T,
            allow_redirects=False)

    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        results = list(ex.map(post, range(8)))
    busy = [r for r in results if r.status_code == 503]
    assert busy and all(r.status_code in (303, 503) for r in results), \
        [r.status_code for r in results]
    for r in busy:
        assert r.headers["Retry-After"].isdigit() and "Try again shortly" in r.text
        assert_page_headers(r)
    assert db.count_users() == len(results) - len(busy)


def test_pages_site_name_and_css(db, start_servers, tmp_path):
    css = tmp_path / "brand.css"
    css.write_text("body { background: #fffbe6; }\n")
    server = start_servers(db, args=[*FAST_HASH, "--site-name", "Acme <School>",
                                     "--site-css", str(css)])[0]
    r = requests.get(server.url + "/account/login", timeout=T)
    assert "<title>Log in · Acme &lt;School&gt;</title>" in r.text
    assert "<h1>Log in to Acme &lt;School&gt;</h1>" in r.text
    r = requests.get(server.url + "/account/static/site.css", timeout=T)
    assert r.status_code == 200 and r.text == css.read_text()
    assert r.headers["Content-Type"] == "text/css; charset=utf-8"
    etag = r.headers["ETag"]
    r = requests.get(server.url + "/account/static/site.css", headers={"If-None-Match": etag},
                     timeout=T)
    assert r.status_code == 304 and r.headers["ETag"] == etag


def test_pages_not_in_openapi_check():
    assert openapi_check.check("GET", "/account/login", 200, {}, b"<html>") == []
    assert openapi_check.check("GET", "/nowhere-else", 299, {}, b"") != []


# --------------------------------------------------------------------------- in a browser

@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


PAGE_NAMES = []


def shoot(b, ctx, name):
    """Screenshots of the page at 320 and 1280 px, in SHOTS; returns their paths."""
    paths = []
    for w in (320, 1280):
        b.cmd("viewport", id=ctx, width=w, height=900)
        path = os.path.join(SHOTS, f"{name}-{w}.png")
        b.cmd("screenshot", id=ctx, path=path)
        paths.append(path)
    b.cmd("viewport", id=ctx, width=1280, height=900)
    return paths


def axe(b, ctx, name):
    bad = [v for v in b.cmd("axe", id=ctx)["violations"] if v["impact"] in ("serious", "critical")]
    print(f"axe {name}: {len(bad)} serious/critical violation(s) {bad}")
    assert not bad, (name, bad)


def browser_register(b, ctx, base, name, email, bio="", goto=True):
    if goto:
        b.cmd("goto", id=ctx, url=base + "/account/register")
    b.cmd("fill", id=ctx, selector="#username", value=name)
    if email is not None:
        b.cmd("fill", id=ctx, selector="#email", value=email)
    b.cmd("fill", id=ctx, selector="#password", value=PASSWORD)
    b.cmd("fill", id=ctx, selector="#bio", value=bio)
    return b.cmd("submit", id=ctx, selector="button[type=submit] >> text=Create account")


def browser_login(b, ctx, base, name):
    b.cmd("goto", id=ctx, url=base + "/account/login")
    b.cmd("fill", id=ctx, selector="#username", value=name)
    b.cmd("fill", id=ctx, selector="#password", value=PASSWORD)
    return b.cmd("submit", id=ctx, selector="main button[type=submit]")


@pytest.mark.scenario
def test_browser_flows_axe_and_screenshots(browser, site, db):
    """register → profile; log in → edit bio → log out; the inviter's flow to a teacher;
    axe-core on every page; screenshots at 320 and 1280 px."""
    b, base = browser, site.url
    b.cmd("context", id="a", bypass_csp=True)  # axe is injected as a script
    b.cmd("goto", id="a", url=base + "/account/register")
    axe(b, "a", "register")
    shoot(b, "a", "register")
    r = browser_register(b, "a", base, "<b>Ann</b>", "ann@example.com")
    assert r["status"] == 400
    assert "Enter a valid username." in b.cmd("text", id="a", selector="#username-error")["text"]
    assert b.cmd("attr", id="a", selector="#username", name="aria-describedby")["value"] == \
        "username-hint username-error"
    axe(b, "a", "register with errors")
    shoot(b, "a", "register-errors")
    r = browser_register(b, "a", base, "ann", "ann@example.com",
                         bio='<script>alert(1)</script> "><img src=x onerror=alert(2)>')
    assert r["url"] == base + "/account/" and r["status"] == 200
    assert b.cmd("text", id="a", selector="dd.username")["text"] == "ann"
    assert b.cmd("count", id="a", selector="main img, main script")["count"] == 0
    assert "<script>alert(1)</script>" in b.cmd("text", id="a", selector="#bio")["text"]
    axe(b, "a", "profile")
    shoot(b, "a", "profile")
    r = b.cmd("goto", id="a", url=base + "/account/nowhere")
    assert r["status"] == 404
    axe(b, "a", "error page")
    shoot(b, "a", "error")
    b.cmd("close", id="a")

    # log in → edit bio → log out
    b.cmd("context", id="b", bypass_csp=True)
    browser_login(b, "b", base, "ann")
    axe(b, "b", "profile (after login)")
    b.cmd("fill", id="b", selector="#bio", value="Teaches chemistry")
    r = b.cmd("submit", id="b", selector="text=Save profile")
    assert r["url"].endswith("/account/?done=profile")
    assert db.query("SELECT bio FROM profiles")[0][0] == "Teaches chemistry"
    r = b.cmd("submit", id="b", selector="header button >> text=Log out")
    assert r["url"] == base + "/account/login"
    axe(b, "b", "login")
    shoot(b, "b", "login")
    assert b.cmd("goto", id="b", url=base + "/account/")["url"] == base + "/account/login"
    b.cmd("close", id="b")

    # the inviter creates an invitation; the invitee opens the link and registers
    cli_user(db, "boss", "--can-invite-teachers")
    b.cmd("context", id="c", bypass_csp=True)
    browser_login(b, "c", base, "boss")
    b.cmd("goto", id="c", url=base + "/account/invitations")
    axe(b, "c", "invitations")
    b.cmd("fill", id="c", selector="#email", value="newteacher@example.com")
    b.cmd("submit", id="c", selector="text=Create invitation")
    link = b.cmd("text", id="c", selector="a.invite-link")["text"]
    assert "/account/invitation?token=" in link
    axe(b, "c", "invitations (created)")
    shoot(b, "c", "invitations")
    b.cmd("context", id="d", bypass_csp=True)
    r = b.cmd("goto", id="d", url=link)
    assert r["headers"]["referrer-policy"] == "no-referrer"
    axe(b, "d", "invitation")
    shoot(b, "d", "invitation")
    b.cmd("submit", id="d", selector='main a[href^="/account/register?invitation="]')
    assert b.cmd("attr", id="d", selector="#email", name="value")["value"] == "newteacher@example.com"
    axe(b, "d", "register (invited)")
    r = browser_register(b, "d", base, "newteacher", None, goto=False)
    assert r["url"] == base + "/account/", r
    assert b.cmd("text", id="d", selector="dd.role")["text"] == "teacher"
    row = db.query("SELECT p.role, p.can_invite_teachers FROM users u JOIN profiles p"
                   " ON p.user_id = u.id WHERE u.username = ?", "newteacher")
    assert row == [("teacher", 0)]
    for ctx in ("c", "d"):
        b.cmd("close", id=ctx)
    if os.environ.get("ROSTER_UPDATE_SCREENSHOTS") == "1" and db.backend == "sqlite":
        for name in ("register", "profile"):  # the README's two, at desktop width
            shutil.copy(os.path.join(SHOTS, f"{name}-1280.png"), os.path.join(DOCS, f"{name}.png"))
    print(f"screenshots in {SHOTS}")


@pytest.mark.scenario
def test_browser_without_javascript_register_and_login(browser, site, db):
    b, base = browser, site.url
    b.cmd("context", id="nojs", js=False)
    r = browser_register(b, "nojs", base, "nojs1", "nojs1@example.com")
    assert r["url"] == base + "/account/" and r["status"] == 200
    b.cmd("submit", id="nojs", selector="header button >> text=Log out")
    r = browser_login(b, "nojs", base, "nojs1")
    assert r["url"] == base + "/account/"
    assert b.cmd("text", id="nojs", selector="dd.username")["text"] == "nojs1"
    b.cmd("close", id="nojs")


class _Attacker(http.server.BaseHTTPRequestHandler):
    page = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *args):
        pass


@pytest.mark.scenario
def test_browser_csrf_from_another_origin_and_framing(browser, site, db):
    """A page on another port (another origin, the same site: the cookie goes along)
    posts the profile form, even with the victim's real csrf_token: refused, nothing
    changes. The same page frames /account/login: the browser refuses the frame."""
    b, base = browser, site.url
    cli_user(db, "victim")
    b.cmd("context", id="v")
    browser_login(b, "v", base, "victim")
    page = b.cmd("html", id="v")["html"]
    token = CSRF_RE.search(page).group(1)
    _Attacker.page = (
        f'<!DOCTYPE html><html lang="en"><title>win</title><body>'
        f'<form method="post" action="{base}/account/">'
        f'<input type="hidden" name="csrf_token" value="{token}">'
        f'<input type="hidden" name="bio" value="pwned"><button>Win a prize</button></form>'
        f'<iframe src="{base}/account/login" title="framed"></iframe></body></html>').encode()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    openapi_check.foreign_ports.add(httpd.server_address[1])
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        b.cmd("goto", id="v", url=f"http://127.0.0.1:{httpd.server_address[1]}/")
        frames = b.cmd("frames", id="v")["frames"]
        assert frames and all("Log in to" not in f["html"] for f in frames), frames
        r = b.cmd("submit", id="v", selector="text=Win a prize")
        assert r["status"] == 403, r
        assert db.query("SELECT bio FROM profiles")[0][0] == ""
    finally:
        httpd.shutdown()
        httpd.server_close()
    b.cmd("close", id="v")


def test_pages_login_rate_limit_and_secure_cookie(db, start_servers):
    server = start_servers(db, args=[*FAST_HASH, "--rate-limits", "on",
                                     "--limit-login-failures", "2"])[0]
    cli_user(db, "rl1")
    if 300 - time.time() % 300 < 5:  # the failures' 5-minute window must not end midway
        time.sleep(300 - time.time() % 300 + 0.2)
    p = Pages(server)
    for _ in range(2):
        assert p.login("rl1", password="wrong-password-1").status_code == 400
    r = p.login("rl1", password="wrong-password-1")
    assert r.status_code == 429 and r.headers["Retry-After"].isdigit()
    assert "Too many requests; retry later." in r.text and 'value="rl1"' in r.text
    # Behind a TLS proxy (X-Forwarded-Proto: https) the cookies are Secure.
    cli_user(db, "sec1")
    q = Pages(server)
    host = server.url.split("://", 1)[1]
    token = q.csrf("/account/login")
    r = q.s.post(server.url + "/account/login", data={
        "username": "sec1", "password": PASSWORD, "csrf_token": token},
        headers={"Origin": "https://" + host, "X-Forwarded-Proto": "https"}, timeout=T,
        allow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    assert "; Secure" in r.headers["Set-Cookie"], r.headers["Set-Cookie"]
