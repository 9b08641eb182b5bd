/*
 * The session pages: /account/login, /account/logout (POST), /account/register,
 * and the helpers every page handler shares (the form of a POST, deferring,
 * fields and their errors, who is logged in).
 * A page session is the cookie roster_session holding a token of the token
 * table (made by the same login flow as POST /users/login/), so logout,
 * "log out everywhere" and every revocation end it as they end an API token.
 */
#include "pages/pages.h"
#include "pages/internal.h"
#include "accounts/acct.h"
#include "api/api.h"
#include "config.h"
#include "crypto/rcrypto.h"
#include "store/store.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- shared by the handlers ---- */

/* What a page's worker needs: the parsed form and the flow's validated input. */
struct page_ctx {
	struct page_form form;
	struct api_login *login;
	struct api_signup *signup;
	char next[512]; /* login: where to go after */
};

static void
ctx_free(void *p)
{
	struct page_ctx *c = p;

	if (c == NULL)
		return;
	page_form_clear(&c->form);
	api_login_free(c->login);
	api_signup_free(c->signup);
	free(c);
}

static struct page_ctx *
ctx_new(struct http_req *req)
{
	struct page_ctx *c = xcalloc(1, sizeof(*c));

	req->ctx = c;
	req->ctx_free = ctx_free;
	return c;
}

/* 403: the CSRF check failed. Nothing was read or written. */
void
page_csrf_refused(struct http_req *req)
{
	http_log(req, RS_LOG_INFO, "page form refused: CSRF check failed");
	page_reply(req, 403, "error.html",
	    json_pack("{s:s, s:s, s:s}", "title", "Not allowed", "message",
	        "This form was not sent from this site, or it has expired. Reload the page and "
	        "try again.",
	        "request_id", req->id),
	    0);
}

/*
 * The POST's form into `c->form`: its media type, its syntax. Replies
 * (415/400) and returns false when it is not a form a page sent.
 */
bool
page_read_form(struct http_req *req, struct page_form *form)
{
	if (!page_is_form(req)) {
		page_render_http_err(req, HTTP_ERR_UNSUPPORTED_MEDIA_TYPE);
		return false;
	}
	if (!page_form_parse(req->body, req->body_len, form)) {
		page_render_http_err(req, HTTP_ERR_BAD_REQUEST);
		return false;
	}
	return true;
}

bool
page_session_form(struct http_req *req, struct page_form *form, const char *token)
{
	if (!page_read_form(req, form))
		return false;
	if (!page_csrf_ok(req, form, token)) {
		page_csrf_refused(req);
		return false;
	}
	return true;
}

void
page_defer(struct http_req *req, enum http_pool pool, http_handler fn)
{
	if (!http_defer(req, pool, fn))
		page_render_http_err(req, HTTP_ERR_UNAVAILABLE);
}

/* Sets {value, error} of field `name` in vars.f (error may be NULL). */
void
page_set_field(json_t *vars, const char *name, const char *value, const char *error)
{
	json_t *f = json_object_get(vars, "f");

	if (f == NULL) {
		f = json_object();
		json_object_set_new(vars, "f", f);
	}
	json_object_set_new(
	    f, name, json_pack("{s:s, s:s?}", "value", value != NULL ? value : "", "error", error));
}

/* Each field's messages of `errs`, joined, into vars.f.<field>.error. */
void
page_set_errors(json_t *vars, const struct acct_errors *errs)
{
	json_t *f = json_object_get(vars, "f");

	for (size_t i = 0; i < errs->n; i++) {
		json_t *field = json_object_get(f, errs->items[i].field);
		const char *had;
		char *joined;

		if (field == NULL)
			continue; /* not a field of this form: shown at the top */
		had = json_string_value(json_object_get(field, "error"));
		if (had == NULL) {
			json_object_set_new(field, "error", json_string(errs->items[i].message));
			continue;
		}
		joined = xmalloc(strlen(had) + strlen(errs->items[i].message) + 2);
		sprintf(joined, "%s %s", had, errs->items[i].message);
		json_object_set_new(field, "error", json_string(joined));
		free(joined);
	}
}

/* The value of a form field, "" when absent. */
const char *
page_field(const struct page_form *f, const char *name)
{
	const char *v = page_form_get(f, name, NULL);

	return v != NULL ? v : "";
}

/* Where a login may send the browser afterwards: one of our pages, nothing else. */
static const char *
safe_next(const char *next)
{
	if (next == NULL || strncmp(next, "/account/", 9) != 0 || strstr(next, "//") != NULL)
		return "/account/";
	for (const char *p = next; *p != '\0'; p++)
		if ((unsigned char)*p < 0x21 || *p == '\\' || *p == 0x7f)
			return "/account/";
	return next;
}

/* ---- /account/login ---- */

/* The login form with `username`, the error at the top (or NULL) and `next`. */
static void
login_form(struct http_req *req, int status, const char *username, const char *form_error,
    const struct acct_errors *errs, const char *next)
{
	json_t *vars;
	char secret[65], csrf[65];

	page_anon_secret(req, secret);
	page_csrf_of(secret, csrf);
	vars = json_pack("{s:s, s:s, s:s?, s:s}", "title", "Log in", "csrf_token", csrf,
	    "form_error", form_error, "next", next);
	page_set_field(vars, "username", username, NULL);
	page_set_field(vars, "password", "", NULL);
	if (errs != NULL)
		page_set_errors(vars, errs);
	sodium_memzero(secret, sizeof(secret));
	page_reply(
	    req, status, "login.html", vars, strstr(next, "token=") != NULL ? PAGE_TOKEN_URL : 0);
}

static void
login_finish(struct http_req *req)
{
	struct page_ctx *c = req->ctx;
	char token[65], expires[64];
	enum api_err err = api_login_run(req, c->login, token, expires);
	const struct api_err_info *info = api_err_info(err);

	switch (err) {
	case API_ERR_NONE:
		page_set_session(req, token, api_config(req)->token_ttl_s);
		page_redirect(req, c->next);
		break;
	case API_ERR_INVALID_CREDENTIALS:
	case API_ERR_RATE_LIMITED:
		login_form(req, info->status, page_field(&c->form, "username"), info->message, NULL,
		    c->next);
		break;
	default:
		page_reply_error(req, err);
		break;
	}
	sodium_memzero(token, sizeof(token));
}

static void
login_post(struct http_req *req)
{
	struct page_ctx *c = ctx_new(req);
	struct acct_errors errs = {.n = 0};
	const char *username, *email, *password;
	size_t ulen = 0, elen = 0, plen = 0;

	if (!page_read_form(req, &c->form))
		return;
	snprintf(c->next, sizeof(c->next), "%s", safe_next(page_form_get(&c->form, "next", NULL)));
	if (!page_csrf_ok(req, &c->form, http_cookie(req, PAGE_CSRF_COOKIE))) {
		page_csrf_refused(req);
		return;
	}
	username = page_form_get(&c->form, "username", &ulen);
	email = page_form_get(&c->form, "email", &elen);
	password = page_form_get(&c->form, "password", &plen);
	if (username != NULL && ulen == 0)
		username = NULL; /* an empty box is an absent name */
	if (password != NULL && plen == 0)
		password = NULL;
	if (api_login_check(username, ulen, email, elen, password, plen, &errs, &c->login) !=
	    API_ERR_NONE) {
		login_form(req, 400, page_field(&c->form, "username"), NULL, &errs, c->next);
		return;
	}
	page_defer(req, HTTP_POOL_HASH, login_finish);
}

void
page_login(struct http_req *req)
{
	if (req->method == HTTP_POST)
		login_post(req);
	else
		login_form(req, 200, "", NULL, NULL, safe_next(http_query(req, "next")));
}

/* ---- /account/logout ---- */

static void
logout_finish(struct http_req *req)
{
	struct page_ctx *c = req->ctx;
	struct store_user user;
	char token[65], hash[65];
	enum api_err err = API_ERR_NOT_AUTHENTICATED;
	enum store_status st = STORE_OK;

	if (page_session_token(req, token))
		err = api_authenticate_token(req, token, &user, hash);
	else
		memset(&user, 0, sizeof(user));
	if (err == API_ERR_NONE) {
		if (page_form_get(&c->form, "all", NULL) != NULL) {
			api_audit_arm_new(req, STORE_AUDIT_TOKENS_REVOKED, user.id, user.id,
			    json_pack("{s:s}", "why", "logout_everywhere"));
			st = store_tokens_revoke_user(api_store(req), user.id);
		} else {
			api_audit_arm_new(req, STORE_AUDIT_LOGOUT, user.id, user.id, NULL);
			st = store_token_revoke(api_store(req), hash);
		}
	}
	store_user_clear(&user);
	sodium_memzero(token, sizeof(token));
	if (err != API_ERR_NONE && err != API_ERR_NOT_AUTHENTICATED) {
		page_reply_error(req, err);
		return;
	}
	if (st != STORE_OK) {
		page_reply_error(req, api_store_err(st, API_ERR_INTERNAL, API_ERR_INTERNAL));
		return;
	}
	page_end_session(req);
	page_redirect(req, "/account/login");
}

void
page_logout(struct http_req *req)
{
	struct page_ctx *c = ctx_new(req);
	char token[65];
	bool ok = page_session_form(req, &c->form, page_session_token(req, token) ? token : NULL);

	sodium_memzero(token, sizeof(token));
	if (ok)
		page_defer(req, HTTP_POOL_DB, logout_finish);
}

/* ---- /account/register ---- */

/*
 * The register form. With `invitation` (a pending one's token), the email is
 * the invited one and cannot be changed here.
 */
static void
register_form(struct http_req *req, int status, const struct page_form *typed,
    const char *invitation, const char *invited_email, const char *form_error,
    const struct acct_errors *errs)
{
	json_t *vars;
	char secret[65], csrf[65];

	page_anon_secret(req, secret);
	page_csrf_of(secret, csrf);
	vars = json_pack("{s:s, s:s, s:s?, s:s?}", "title", "Create an account", "csrf_token", csrf,
	    "form_error", form_error, "invitation", invitation);
	page_set_field(vars, "username", typed != NULL ? page_field(typed, "username") : "", NULL);
	page_set_field(vars, "email",
	    invited_email != NULL ? invited_email
	    : typed != NULL       ? page_field(typed, "email")
	                          : "",
	    NULL);
	page_set_field(vars, "password", "", NULL);
	page_set_field(vars, "bio", typed != NULL ? page_field(typed, "bio") : "", NULL);
	if (errs != NULL)
		page_set_errors(vars, errs);
	sodium_memzero(secret, sizeof(secret));
	page_reply(req, status, "register.html", vars, invitation != NULL ? PAGE_TOKEN_URL : 0);
}

/* The field an API error of registration belongs next to; NULL: the top of the form. */
static const char *
register_err_field(enum api_err err)
{
	switch (err) {
	case API_ERR_USERNAME_TAKEN:
		return "username";
	case API_ERR_EMAIL_TAKEN:
	case API_ERR_INVITATION_EMAIL_MISMATCH:
		return "email";
	default:
		return NULL;
	}
}

static void
register_finish(struct http_req *req)
{
	struct page_ctx *c = req->ctx;
	const char *invitation = page_form_get(&c->form, "invitation", NULL);
	struct store_user user = {0};
	enum api_err err = api_signup_run(req, c->signup, &user);
	const struct api_err_info *info = api_err_info(err);
	struct acct_errors errs = {.n = 0};
	char token[65], hash[65], expires[64];

	if (err == API_ERR_NONE) {
		/* Logged in at once: a token of the table, as a login makes. */
		rcrypto_random_hex(token, 32);
		rcrypto_sha256_hex(token, 64, hash);
		api_audit_arm_new(req, STORE_AUDIT_LOGIN, user.id, user.id, NULL);
		if (store_token_create(api_store(req), user.id, hash, api_config(req)->token_ttl_s,
		        expires) == STORE_OK) {
			page_set_session(req, token, api_config(req)->token_ttl_s);
			page_redirect(req, "/account/");
		} else {
			page_redirect(req, "/account/login");
		}
		sodium_memzero(token, sizeof(token));
	} else if (info->status == 400 || info->status == 403 || info->status == 429) {
		const char *at = register_err_field(err);

		if (at != NULL)
			acct_errors_add(&errs, at, info->message);
		register_form(req, info->status, &c->form,
		    invitation != NULL && invitation[0] != '\0' ? invitation : NULL, NULL,
		    at == NULL ? info->message : NULL, &errs);
	} else {
		page_reply_error(req, err);
	}
	store_user_clear(&user);
}

static void
register_post(struct http_req *req)
{
	struct page_ctx *c = ctx_new(req);
	struct acct_signup_input in = {0};
	struct acct_errors errs = {.n = 0};
	const char *invitation;
	size_t invitation_len = 0;
	enum api_err err;

	if (!page_read_form(req, &c->form))
		return;
	if (!page_csrf_ok(req, &c->form, http_cookie(req, PAGE_CSRF_COOKIE))) {
		page_csrf_refused(req);
		return;
	}
	in.username = page_form_get(&c->form, "username", &in.username_len);
	in.email = page_form_get(&c->form, "email", &in.email_len);
	in.password = page_form_get(&c->form, "password", &in.password_len);
	in.bio = page_form_get(&c->form, "bio", &in.bio_len);
	invitation = page_form_get(&c->form, "invitation", &invitation_len);
	if (invitation != NULL && invitation_len == 0)
		invitation = NULL;
	err = api_signup_check(api_config(req), &in, invitation, invitation_len, &errs, &c->signup);
	if (err == API_ERR_NONE) {
		page_defer(req, HTTP_POOL_HASH, register_finish);
		return;
	}
	if (err == API_ERR_INVALID) {
		register_form(req, 400, &c->form, invitation, NULL, NULL, &errs);
		return;
	}
	if (api_err_info(err)->status >= 500) {
		page_reply_error(req, err);
		return;
	}
	register_form(
	    req, api_err_info(err)->status, &c->form, NULL, NULL, api_err_info(err)->message, NULL);
}

/* The error of an invitation's computed status, API_ERR_NONE while pending. */
static enum api_err
invitation_status_err(const char *status)
{
	if (strcmp(status, "pending") == 0)
		return API_ERR_NONE;
	if (strcmp(status, "expired") == 0)
		return API_ERR_INVITATION_EXPIRED;
	if (strcmp(status, "accepted") == 0)
		return API_ERR_INVITATION_USED;
	if (strcmp(status, "revoked") == 0)
		return API_ERR_INVITATION_REVOKED;
	return API_ERR_INVITATION_INVALID;
}

enum api_err
page_invitation_lookup(struct http_req *req, const char *token, struct store_invitation *inv)
{
	char hash[65];
	enum store_status st;

	memset(inv, 0, sizeof(*inv));
	if (token == NULL || !api_invitation_token_hash(token, strlen(token), hash))
		return API_ERR_INVITATION_INVALID;
	st = store_invite_by_token(api_store(req), hash, inv);
	if (st == STORE_NOT_FOUND)
		return API_ERR_INVITATION_INVALID;
	if (st != STORE_OK)
		return api_store_err(st, API_ERR_INVITATION_INVALID, API_ERR_INTERNAL);
	return invitation_status_err(inv->status);
}

/* GET with ?invitation=: the invited email, read without touching the token. */
static void
register_invited(struct http_req *req)
{
	const char *token = http_query(req, "invitation");
	struct store_invitation inv;
	enum api_err err = page_invitation_lookup(req, token, &inv);

	if (err == API_ERR_NONE)
		register_form(req, 200, NULL, token, inv.email, NULL, NULL);
	else if (api_err_info(err)->status >= 500)
		page_reply_error(req, err);
	else
		register_form(req, 200, NULL, NULL, NULL, api_err_info(err)->message, NULL);
	store_invitation_clear(&inv);
}

void
page_register(struct http_req *req)
{
	if (req->method == HTTP_POST)
		register_post(req);
	else if (http_query(req, "invitation") != NULL)
		page_defer(req, HTTP_POOL_DB, register_invited);
	else
		register_form(req, 200, NULL, NULL, NULL, NULL, NULL);
}

/* ---- who is logged in ---- */

enum api_err
page_authenticate(struct http_req *req, struct store_user *user, char csrf[65], char token_hash[65])
{
	char token[65];
	enum api_err err;

	memset(user, 0, sizeof(*user));
	if (!page_session_token(req, token))
		return API_ERR_NOT_AUTHENTICATED;
	err = api_authenticate_token(req, token, user, token_hash);
	if (err == API_ERR_NONE && csrf != NULL)
		page_csrf_of(token, csrf);
	sodium_memzero(token, sizeof(token));
	return err;
}

void
page_login_first(struct http_req *req, const char *back)
{
	char loc[600];

	if (page_session_token(req, (char[65]){0}))
		page_end_session(req); /* a cookie that no longer authenticates */
	if (back == NULL) {
		page_redirect(req, "/account/login");
		return;
	}
	snprintf(loc, sizeof(loc), "/account/login?next=%s", back);
	page_redirect(req, loc);
}

json_t *
page_time_new(const char *rfc3339)
{
	char out[32];

	/* "2024-05-01T12:00:00.123456Z" → "2024-05-01 12:00 UTC"; anything else as it is. */
	if (rfc3339 == NULL)
		return json_string("");
	if (strlen(rfc3339) < 16 || rfc3339[10] != 'T')
		return json_string(rfc3339);
	snprintf(out, sizeof(out), "%.10s %.5s UTC", rfc3339, rfc3339 + 11);
	return json_string(out);
}

json_t *
page_user_json_new(const struct store_user *u)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:b}", "username", u->username,
	    "email", u->email != NULL ? u->email : "", "role", u->role, "bio",
	    u->bio != NULL ? u->bio : "", "first_name", u->first_name != NULL ? u->first_name : "",
	    "last_name", u->last_name != NULL ? u->last_name : "", "date_joined",
	    page_time_new(u->date_joined), "can_invite", u->can_invite_teachers);
}
