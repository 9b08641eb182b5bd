"""
The pages of the account lifecycle (issue 12 with issue 11's flows): the
forgotten password, the links of the mails (reset, verify, email change) and
the profile's forms (names, password, email, a new verification link), first
without a browser (a cookie jar posting forms, as a browser without
JavaScript does), each against real `roster serve` processes on both backends
that send their mails to a real SMTP server (smtp_server.py). The browser
tests of these flows are in test_pages.py.
"""
import re
import time

import pytest
import requests

from conftest import FAST_HASH, ME, PASSWORD, T, auth, cli_user, token_of
from smtp_server import link_token, smtp, text_of, to_addr  # noqa: F401 (smtp: a fixture)
from test_pages import Pages, assert_page_headers, field_error

NEW_PASSWORD = "another-Staple-battery-7"
RESET_SENT = "If an account uses this email, a password reset link has been sent to it."
FORM_ERROR_RE = re.compile(r'<p class="alert" role="alert"[^>]*>([^<]*)</p>')


def mail_args(smtp):
    return ["--mail-url", smtp.url, "--mail-retry-min", "1s", "--mail-poll", "1s", *FAST_HASH]


@pytest.fixture
def msite(db, start_servers, smtp):
    return start_servers(db, args=mail_args(smtp))[0]


def to(addr):
    return lambda m: to_addr(m) == addr


def form_error(page):
    m = FORM_ERROR_RE.search(page)
    return m.group(1) if m else None


def registered(site, name):
    """A new account registered through the page; the Pages client holds its session."""
    p = Pages(site)
    r = p.register(name)
    assert r.status_code == 303 and r.headers["Location"] == "/account/", r.text[:400]
    return p


def test_pages_forgot_reset_then_login(msite, smtp, db):
    p = registered(msite, "fr1")
    old_session = p.s.cookies["roster_session"]
    api_token = token_of(msite, "fr1")
    q = Pages(msite)
    r = q.get("/account/login")
    assert 'href="/account/password/forgot"' in r.text
    r = q.get("/account/password/forgot")
    assert r.status_code == 200 and 'autocomplete="email"' in r.text
    assert_page_headers(r, personal=False)
    r = q.post("/account/password/forgot", {"email": "not-an-address"})
    assert r.status_code == 400
    assert field_error(r.text, "email") == "Enter a valid email address."
    assert 'value="not-an-address"' in r.text
    r = q.post("/account/password/forgot", {"email": ""})
    assert r.status_code == 400 and field_error(r.text, "email") == "This field is required."
    # Known and unknown addresses: the same page.
    known = q.post("/account/password/forgot", {"email": "FR1@example.com"})
    unknown = q.post("/account/password/forgot", {"email": "nobody@example.com"})
    for r in (known, unknown):
        assert r.status_code == 200 and RESET_SENT in r.text, r.text[:400]
    assert known.text == unknown.text
    msg = smtp.wait_for(lambda m: to_addr(m) == "fr1@example.com" and "reset" in
                        str(m["Subject"]).lower())
    token = link_token(msg, "/account/password/reset")
    link = f"/account/password/reset?token={token}"
    for _ in range(2):  # a GET (a mail scanner) never consumes the link
        r = q.get(link)
        assert r.status_code == 200 and f'name="token" value="{token}"' in r.text
        assert 'autocomplete="new-password"' in r.text
        assert_page_headers(r, token_url=True, personal=False)
    r = q.post("/account/password/reset", {"token": token, "password": "12345678"},
               csrf_from=link)
    assert r.status_code == 400, r.text[:400]
    assert "This password is entirely numeric." in field_error(r.text, "password")
    assert f'name="token" value="{token}"' in r.text  # the form again, the link still good
    r = q.post("/account/password/reset", {"token": token, "password": NEW_PASSWORD},
               csrf_from=link)
    assert r.status_code == 303, r.text[:400]
    assert r.headers["Location"] == "/account/password/reset?done=1"  # reloading it posts nothing
    r = q.get(r.headers["Location"])
    assert r.status_code == 200 and "Your password has been reset." in r.text, r.text[:400]
    assert 'href="/account/login"' in r.text and 'name="token"' not in r.text
    # Every session ended: the page's cookie and the API token.
    r = requests.get(msite.url + "/auth/check", cookies={"roster_session": old_session}, timeout=T)
    assert r.status_code == 401
    assert msite.get(ME, headers=auth(api_token)).status_code == 401
    assert q.login("fr1").status_code == 400  # the old password no longer works
    assert q.login("fr1", password=NEW_PASSWORD).status_code == 303
    r = q.post("/account/password/reset", {"token": token, "password": NEW_PASSWORD + "x"},
               csrf_from="/account/password/forgot")
    assert r.status_code == 400 and form_error(r.text) == "This link has already been used."
    r = q.get(link)
    assert form_error(r.text) == "This link has already been used."
    assert 'name="token"' not in r.text and 'href="/account/password/forgot"' in r.text
    r = q.get("/account/password/reset?token=" + "0" * 64)
    assert form_error(r.text) == "This link is invalid."


def test_pages_verify_link_and_resend_from_profile(msite, smtp, db):
    p = registered(msite, "vl1")
    first = link_token(smtp.wait_for(to("vl1@example.com")), "/account/email/verify")
    r = p.get("/account/")
    assert "(not verified)" in r.text and "Send a new verification link" in r.text
    r = p.post("/account/email/verify/resend", {}, csrf_from="/account/")
    assert r.status_code == 303 and r.headers["Location"] == "/account/?done=verify"
    assert "A verification link has been sent." in p.get("/account/?done=verify").text
    mails = smtp.wait_for(to("vl1@example.com"), count=2)
    second = link_token(mails[1], "/account/email/verify")
    assert second != first
    link = f"/account/email/verify?token={second}"
    anon = Pages(msite)  # the link opened in another browser: no session needed
    r = anon.get(link)
    assert r.status_code == 200 and "Verify my email address" in r.text
    assert_page_headers(r, token_url=True, personal=False)
    assert db.query("SELECT email_verified FROM users WHERE username = ?", "vl1")[0][0] in (0, False)
    r = anon.post("/account/email/verify", {"token": second}, csrf_from=link)
    assert r.status_code == 303 and r.headers["Location"] == "/account/email/verify?done=1"
    assert "Your email address has been verified." in anon.get(r.headers["Location"]).text
    assert db.query("SELECT email_verified FROM users WHERE username = ?", "vl1")[0][0] in (1, True)
    r = p.get("/account/")
    assert "(verified)" in r.text and "Send a new verification link" not in r.text
    r = anon.post("/account/email/verify", {"token": second}, csrf_from="/account/login")
    assert r.status_code == 400 and form_error(r.text) == "This link has already been used."
    # A POST without the CSRF token changes nothing.
    r = anon.post("/account/email/verify", {"token": first}, csrf=False)
    assert r.status_code == 403


def test_pages_profile_names_password_and_email_change(msite, smtp, db):
    cli_user(db, "other1", email="taken@example.com")
    p = registered(msite, "pc1")
    api_token = token_of(msite, "pc1")
    r = p.post("/account/", {"first_name": "Ada", "last_name": "Lovelace", "bio": "Maths"},
               csrf_from="/account/")
    assert r.status_code == 303 and r.headers["Location"] == "/account/?done=profile"
    r = p.get("/account/?done=profile")
    assert "Your profile was saved." in r.text
    assert 'value="Ada"' in r.text and 'value="Lovelace"' in r.text
    me = msite.get(ME, headers=auth(api_token)).json()
    assert (me["first_name"], me["last_name"], me["profile"]["bio"]) == ("Ada", "Lovelace", "Maths")
    r = p.post("/account/", {"first_name": "x" * 151, "last_name": "L", "bio": "kept"},
               csrf_from="/account/")
    assert r.status_code == 400
    assert field_error(r.text, "first_name") == "Ensure this field has no more than 150 characters."
    assert ">kept</textarea>" in r.text  # the values typed stay

    # Password: the current one is checked, the policy applies, other sessions end.
    r = p.post("/account/password", {"current_password": "wrong-password-1",
                                      "new_password": NEW_PASSWORD}, csrf_from="/account/")
    assert r.status_code == 400
    assert field_error(r.text, "current_password") == "Your current password is incorrect."
    assert form_error(r.text) == "Nothing was changed: see the field marked below."
    assert "wrong-password-1" not in r.text and NEW_PASSWORD not in r.text
    r = p.post("/account/password", {"current_password": PASSWORD, "new_password": "pc1"},
               csrf_from="/account/")
    assert r.status_code == 400 and field_error(r.text, "new_password") is not None
    r = p.post("/account/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
               csrf_from="/account/")
    assert r.status_code == 303 and r.headers["Location"] == "/account/?done=password"
    assert "Your password has been changed." in p.get("/account/?done=password").text
    assert msite.get(ME, headers=auth(api_token)).status_code == 401  # the other session
    assert token_of(msite, "pc1", password=NEW_PASSWORD)

    # Email: invalid, taken, then a link to the new address; the address changes on its POST.
    r = p.post("/account/email", {"email": "nope"}, csrf_from="/account/")
    assert r.status_code == 400 and field_error(r.text, "email") == "Enter a valid email address."
    assert 'value="nope"' in r.text
    r = p.post("/account/email", {"email": "Taken@example.com"}, csrf_from="/account/")
    assert r.status_code == 400 and field_error(r.text, "email") == "Email already registered."
    r = p.post("/account/email", {"email": "pc1-new@example.com"}, csrf_from="/account/")
    assert r.status_code == 303 and r.headers["Location"] == "/account/?done=email"
    assert "A confirmation link has been sent to the new address." in \
        p.get("/account/?done=email").text
    token = link_token(smtp.wait_for(to("pc1-new@example.com")), "/account/email/change")
    link = f"/account/email/change?token={token}"
    r = p.get(link)
    assert r.status_code == 200 and "Confirm the new address" in r.text
    assert 'class="email">pc1@example.com' in p.get("/account/").text  # not yet
    r = p.post("/account/email/change", {"token": token}, csrf_from=link)
    assert r.status_code == 303 and r.headers["Location"] == "/account/email/change?done=1"
    assert "Your email address has been changed." in p.get(r.headers["Location"]).text
    assert 'class="email">pc1-new@example.com' in p.get("/account/").text
    r = p.post("/account/email/change", {"token": token}, csrf_from="/account/login")
    assert form_error(r.text) == "This link has already been used."


def test_pages_invitation_page_takes_the_mailed_link(msite, smtp, db):
    cli_user(db, "inv9", "--can-invite-teachers")
    r = msite.post("/users/invitations/", json={"email": "mt9@example.com"},
                   headers=auth(token_of(msite, "inv9")))
    assert r.status_code == 201, r.text
    returned = r.json()["token"]
    mailed = link_token(smtp.wait_for(to("mt9@example.com")), "/account/invitation")
    assert mailed != returned  # minted when the mail was sent
    p = Pages(msite)
    link = f"/account/invitation?token={mailed}"
    for method in ("GET", "HEAD", "GET"):
        r = p.s.request(method, msite.url + link, timeout=T, allow_redirects=False)
        assert r.status_code == 200 and r.headers["Referrer-Policy"] == "no-referrer"
    r = p.get(link)
    assert 'class="email">mt9@example.com' in r.text and "Create an account" in r.text
    r = p.get(f"/account/register?invitation={mailed}")
    assert 'value="mt9@example.com" readonly' in r.text
    r = p.register("mt9", email="mt9@example.com", invitation=mailed,
                   csrf_from=f"/account/register?invitation={mailed}")
    assert r.status_code == 303, r.text[:400]
    assert '<dd class="role">teacher</dd>' in p.get("/account/").text
    assert "This invitation has already been used." in p.get(link).text
    row = db.query("SELECT p.role, p.can_invite_teachers FROM users u JOIN profiles p"
                   " ON p.user_id = u.id WHERE u.username = ?", "mt9")
    assert row in ([("teacher", 0)], [("teacher", False)]), row


def test_pages_profile_forms_need_a_session_and_csrf(msite, db):
    anon = Pages(msite)
    for path in ("/account/password", "/account/email", "/account/email/verify/resend"):
        r = anon.post(path, {"email": "a@example.com"}, csrf_from="/account/login")
        assert r.status_code == 303 and r.headers["Location"].startswith("/account/login"), path
    p = registered(msite, "cs1")
    for path, body in (("/account/password", {"current_password": PASSWORD,
                                              "new_password": NEW_PASSWORD}),
                       ("/account/email", {"email": "cs1-b@example.com"}),
                       ("/account/email/verify/resend", {"go": "1"})):
        r = p.post(path, body, csrf=False)
        assert r.status_code == 403, path
        r = p.post(path, body, csrf_from="/account/", origin="http://evil.example")
        assert r.status_code == 403, path
    assert token_of(msite, "cs1")  # the password is unchanged
    assert db.query("SELECT count(*) FROM one_time_tokens WHERE purpose = 'email_change'") == [(0,)]
    assert p.s.get(msite.url + "/account/password", timeout=T).status_code == 405


# --------------------------------------------------------------------------- in a browser

from test_pages import axe, browser, browser_login, browser_register, shoot  # noqa: E402,F401


@pytest.mark.scenario
def test_browser_verify_forgot_reset_login_and_email_change(browser, msite, smtp, db):
    """register → the verification link → verified; log out → forgot → the reset link → a
    new password → log in; the profile's email change → its link → the new address; the
    password form's errors; axe-core on every page; screenshots at 320 and 1280 px."""
    b, base = browser, msite.url
    b.cmd("context", id="m", bypass_csp=True)  # axe is injected as a script
    r = browser_register(b, "m", base, "bea", "bea@example.com")
    assert r["url"] == base + "/account/", r
    assert "(not verified)" in b.cmd("text", id="m", selector="dd.email")["text"]
    token = link_token(smtp.wait_for(to("bea@example.com")), "/account/email/verify")
    r = b.cmd("goto", id="m", url=f"{base}/account/email/verify?token={token}")
    assert r["status"] == 200 and r["headers"]["referrer-policy"] == "no-referrer"
    axe(b, "m", "email verify link")
    shoot(b, "m", "email-verify")
    r = b.cmd("submit", id="m", selector="text=Verify my email address")
    assert "Your email address has been verified." in b.cmd("text", id="m", selector="main")["text"]
    axe(b, "m", "email verified")
    b.cmd("goto", id="m", url=base + "/account/")
    assert "(verified)" in b.cmd("text", id="m", selector="dd.email")["text"]

    # The password form: a wrong current password, shown next to its field.
    b.cmd("fill", id="m", selector="#current_password", value="wrong-password-1")
    b.cmd("fill", id="m", selector="#new_password", value=NEW_PASSWORD)
    r = b.cmd("submit", id="m", selector="text=Change password")
    assert r["status"] == 400
    assert b.cmd("text", id="m", selector="#current_password-error")["text"] == \
        "Your current password is incorrect."
    assert b.cmd("attr", id="m", selector="#current_password",
                 name="aria-describedby")["value"] == "current_password-error"
    assert b.cmd("attr", id="m", selector="#current_password", name="value")["value"] in (None, "")
    axe(b, "m", "profile with a password error")
    shoot(b, "m", "profile-password-error")

    # Log out, forgot → reset → log in with the new password.
    b.cmd("submit", id="m", selector="header button >> text=Log out")
    b.cmd("submit", id="m", selector="text=Forgot your password?")
    axe(b, "m", "password forgot")
    shoot(b, "m", "password-forgot")
    b.cmd("fill", id="m", selector="#email", value="bea@example.com")
    b.cmd("submit", id="m", selector="text=Send the link")
    assert RESET_SENT in b.cmd("text", id="m", selector="main")["text"]
    axe(b, "m", "password forgot (sent)")
    msg = smtp.wait_for(lambda m: to_addr(m) == "bea@example.com" and "reset" in
                        str(m["Subject"]).lower())
    token = link_token(msg, "/account/password/reset")
    r = b.cmd("goto", id="m", url=f"{base}/account/password/reset?token={token}")
    assert r["status"] == 200 and r["headers"]["referrer-policy"] == "no-referrer"
    axe(b, "m", "password reset link")
    shoot(b, "m", "password-reset")
    b.cmd("fill", id="m", selector="#password", value=NEW_PASSWORD)
    b.cmd("submit", id="m", selector="text=Set the new password")
    assert "Your password has been reset." in b.cmd("text", id="m", selector="main")["text"]
    axe(b, "m", "password reset (done)")
    b.cmd("submit", id="m", selector="text=Log in with the new password")
    b.cmd("fill", id="m", selector="#username", value="bea")
    b.cmd("fill", id="m", selector="#password", value=NEW_PASSWORD)
    r = b.cmd("submit", id="m", selector="main button[type=submit]")
    assert r["url"] == base + "/account/", r

    # The email change: the form, the link to the new address, its page, the new address.
    b.cmd("fill", id="m", selector="#email", value="bea.new@example.com")
    r = b.cmd("submit", id="m", selector="text=Change email")
    assert r["url"].endswith("/account/?done=email")
    assert "A confirmation link has been sent to the new address." in \
        b.cmd("text", id="m", selector="main")["text"]
    token = link_token(smtp.wait_for(to("bea.new@example.com")), "/account/email/change")
    b.cmd("goto", id="m", url=f"{base}/account/email/change?token={token}")
    axe(b, "m", "email change link")
    shoot(b, "m", "email-change")
    b.cmd("submit", id="m", selector="text=Confirm the new address")
    assert "Your email address has been changed." in b.cmd("text", id="m", selector="main")["text"]
    b.cmd("goto", id="m", url=base + "/account/")
    assert "bea.new@example.com" in b.cmd("text", id="m", selector="dd.email")["text"]
    axe(b, "m", "profile (email changed)")
    b.cmd("close", id="m")
    row = db.query("SELECT email, email_verified FROM users WHERE username = ?", "bea")
    assert row[0][0] == "bea.new@example.com" and row[0][1] in (1, True), row


@pytest.mark.scenario
def test_browser_invitation_from_the_mail_to_a_teacher(browser, msite, smtp, db):
    """An inviter creates an invitation on /account/invitations; the invitee opens the link
    of the mail they got, registers, and is a teacher who may not invite."""
    b, base = browser, msite.url
    cli_user(db, "head1", "--can-invite-teachers")
    b.cmd("context", id="i", bypass_csp=True)
    browser_login(b, "i", base, "head1")
    b.cmd("goto", id="i", url=base + "/account/invitations")
    b.cmd("fill", id="i", selector="#email", value="mailed.teacher@example.com")
    b.cmd("submit", id="i", selector="text=Create invitation")
    msg = smtp.wait_for(to("mailed.teacher@example.com"))
    m = re.search(r"(http://\S+/account/invitation\?token=[0-9a-f]{64})", text_of(msg))
    assert m, text_of(msg)
    link = m.group(1)
    assert link.startswith(base + "/"), (link, base)  # without --public-url: this server
    b.cmd("context", id="t", bypass_csp=True)
    r = b.cmd("goto", id="t", url=link)
    assert r["status"] == 200 and r["headers"]["referrer-policy"] == "no-referrer"
    assert "mailed.teacher@example.com" in b.cmd("text", id="t", selector="dd.email")["text"]
    axe(b, "t", "invitation (from the mail)")
    b.cmd("submit", id="t", selector='main a[href^="/account/register?invitation="]')
    assert b.cmd("attr", id="t", selector="#email", name="value")["value"] == \
        "mailed.teacher@example.com"
    r = browser_register(b, "t", base, "mailedteacher", None, goto=False)
    assert r["url"] == base + "/account/", r
    assert b.cmd("text", id="t", selector="dd.role")["text"] == "teacher"
    assert b.cmd("count", id="t", selector='a[href="/account/invitations"]')["count"] == 0
    row = db.query("SELECT p.role, p.can_invite_teachers FROM users u JOIN profiles p"
                   " ON p.user_id = u.id WHERE u.username = ?", "mailedteacher")
    assert row == [("teacher", 0)] or row == [("teacher", False)], row
    # The mailed link is spent; the inviter's list says accepted.
    r = b.cmd("goto", id="t", url=link)
    assert "This invitation has already been used." in b.cmd("text", id="t", selector="main")["text"]
    b.cmd("goto", id="i", url=base + "/account/invitations")
    assert "accepted" in b.cmd("text", id="i", selector="main")["text"]
    for ctx in ("i", "t"):
        b.cmd("close", id=ctx)


def test_pages_forgot_shares_the_reset_limits_with_the_api(db, start_servers, smtp):
    """The page and POST /users/password/reset/ count against one limit per address."""
    server = start_servers(db, args=[*mail_args(smtp), "--rate-limits", "on",
                                     "--limit-reset-per-email", "2"])[0]
    if 3600 - time.time() % 3600 < 5:  # the hour's window must not end midway
        time.sleep(3600 - time.time() % 3600 + 0.2)
    q = Pages(server)
    assert q.post("/account/password/forgot", {"email": "lim@example.com"}).status_code == 200
    assert server.post("/users/password/reset/", json={"email": "Lim@example.com"}).status_code == 202
    r = q.post("/account/password/forgot", {"email": "lim@example.com"})
    assert r.status_code == 429 and r.headers["Retry-After"].isdigit()
    assert form_error(r.text) == "Too many requests; retry later."
    assert 'value="lim@example.com"' in r.text
    assert server.post("/users/password/reset/", json={"email": "lim@example.com"}).status_code == 429
