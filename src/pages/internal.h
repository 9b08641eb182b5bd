/*
 * pages/internal.h: what the files of src/pages/ share: the form parser
 * (form.c), rendering and replies (render.c), the session cookie and the
 * CSRF defence (csrf.c, session.c); the handlers are in session.c,
 * profile.c, links.c and invitations.c.
 */
#ifndef ROSTER_PAGES_INTERNAL_H
#define ROSTER_PAGES_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"
#include "http/req.h"

/* ---- form.c: application/x-www-form-urlencoded bodies ---- */

#define PAGE_FORM_MAX 16 /* fields in one form */

struct page_form {
	struct {
		char *name;
		char *value; /* decoded, NUL-terminated; wiped on clear (it may be a password) */
		size_t len;
	} f[PAGE_FORM_MAX];
	size_t n;
};

/*
 * Parses `len` bytes of a urlencoded body into `out` (cleared first). False
 * for more than PAGE_FORM_MAX fields, a name given twice, a bad %-escape, a
 * NUL, or a value that is not valid UTF-8: the form did not come from a page.
 */
bool page_form_parse(const char *body, size_t len, /* OUT: */ struct page_form *out);

/* The value of `name` (its length in `*len` when not NULL), or NULL (and 0) when absent. */
const char *page_form_get(const struct page_form *f, const char *name, size_t *len);

void page_form_clear(struct page_form *f);

/* True when the request's Content-Type is application/x-www-form-urlencoded. */
bool page_is_form(const struct http_req *req);

/* ---- render.c: pages and replies ---- */

enum page_flags {
	PAGE_TOKEN_URL = 1 << 0, /* a token is in the URL: Referrer-Policy no-referrer */
};

/*
 * Renders the template `name` (e.g. "login.html") inside the layout with
 * `vars` (taken; site_name is added) and sets it as the reply with the pages'
 * security headers.
 */
void page_reply(struct http_req *req, int status, const char *name, json_t *vars, unsigned flags);

/* The error page of an API error (its status, its message; Retry-After on 429/503). */
void page_reply_error(struct http_req *req, enum api_err err);

/* A 303 to `location` (a path of ours) with the pages' headers. */
void page_redirect(struct http_req *req, const char *location);

/* Adds the pages' security headers (CSP, nosniff, frame and referrer policy). */
void page_security_headers(struct http_req *req, unsigned flags);

/* GET /account/static/site.css: the stylesheet, with an ETag and 304 for a match. */
void page_css(struct http_req *req);

/* ---- session.c: the session cookie and CSRF ---- */

#define PAGE_SESSION_COOKIE API_SESSION_COOKIE
#define PAGE_CSRF_COOKIE    "roster_csrf"

/* The session cookie's token when it is well formed (its shape only): true and `out`. */
bool page_session_token(const struct http_req *req, char out[65]);

/* The CSRF token that goes with the secret `secret` (a session token, or the anonymous cookie). */
void page_csrf_of(const char *secret, char out[65]);

/*
 * The anonymous forms' secret (the roster_csrf cookie): the request's when
 * well formed, else a fresh one, and then the reply sets the cookie.
 */
void page_anon_secret(struct http_req *req, char out[65]);

/*
 * The CSRF defence of a state-changing POST: an Origin that is not ours (or,
 * without Origin, a Referer that is not ours) is refused, and the form's
 * csrf_token must be the one of `secret`. False: the caller answers 403.
 */
bool page_csrf_ok(const struct http_req *req, const struct page_form *f, const char *secret);

/* Set-Cookie for a page session of `ttl_s` seconds, or one that ends it. */
void page_set_session(struct http_req *req, const char *token, long long ttl_s);
void page_end_session(struct http_req *req);

/* The scheme and host of this server as the browser sees it ("http://host:port"). */
void page_origin(const struct http_req *req, char *out, size_t size);

/* ---- session.c: helpers of every handler ---- */

/* 403: the CSRF check failed; nothing was read or written. */
void page_csrf_refused(struct http_req *req);

/* The POST's form (its media type and syntax); replies 415/400 and false otherwise. */
bool page_read_form(struct http_req *req, /* OUT: */ struct page_form *form);

/* page_read_form, then page_csrf_ok with the session `token` (may be NULL); replies 403. */
bool page_session_form(struct http_req *req, /* OUT: */ struct page_form *form, const char *token);

/* Defers to `pool`; a full queue is the 503 "try again" page. */
void page_defer(struct http_req *req, enum http_pool pool, http_handler fn);

/* Sets vars.f.<name> = {value, error}; page_set_errors puts each problem next to its field. */
void page_set_field(json_t *vars, const char *name, const char *value, const char *error);
void page_set_errors(json_t *vars, const struct acct_errors *errs);

/* A form field's value, "" when absent. */
const char *page_field(const struct page_form *f, const char *name);

/*
 * On a worker: the account of the session cookie, the CSRF token of its
 * forms in `csrf` and the session token's hash in `token_hash` (each may be
 * NULL). API_ERR_NOT_AUTHENTICATED without a session.
 */
enum api_err page_authenticate(
    struct http_req *req, /* OUT: */ struct store_user *user, char csrf[65], char token_hash[65]);

/* 303 to the login page (then back to `back`, a path with its query, when not NULL). */
void page_login_first(struct http_req *req, const char *back);

/* An RFC 3339 UTC time as the pages show it ("2024-05-01 12:00 UTC"). */
json_t *page_time_new(const char *rfc3339);

/* The account as the layout and the pages show it. */
json_t *page_user_json_new(const struct store_user *u);

/* On a worker: the invitation of a link's token, read only; its status as an API error. */
enum api_err page_invitation_lookup(struct http_req *req, const char *token,
    /* OUT: */ struct store_invitation *inv);

/* ---- handlers (session.c, profile.c, links.c, invitations.c) ---- */

void page_login(struct http_req *req);
void page_logout(struct http_req *req);
void page_register(struct http_req *req);
/* The profile and its forms: names and bio, password, email, verification mail. */
void page_profile(struct http_req *req);
void page_password_change(struct http_req *req);
void page_email_change_request(struct http_req *req);
void page_verify_resend(struct http_req *req);
/* The pages of the mails' links, and the reset request. */
void page_password_forgot(struct http_req *req);
void page_password_reset(struct http_req *req);
void page_email_verify(struct http_req *req);
void page_email_change(struct http_req *req);
void page_invitation(struct http_req *req);
void page_invitations(struct http_req *req);

#endif
