/*
 * The pages the mails link to, and the reset request:
 *   /account/password/forgot          an address; POST queues a reset link
 *   /account/password/reset?token=    a new password; POST sets it
 *   /account/email/verify?token=      a button; POST verifies the address
 *   /account/email/change?token=      a button; POST makes the new address the account's
 * A GET never consumes a token (mail scanners fetch links): it only reads
 * whether the token would still work, and shows the button or the reason. The
 * POST carries the token in its body and calls the API's flow (api/api.h).
 * Pages with a token in their URL send Referrer-Policy: no-referrer.
 */
#include "pages/pages.h"
#include "pages/internal.h"
#include "accounts/acct.h"
#include "api/api.h"
#include "store/store.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* One kind of link: its page, its token's purpose, what it says and does. */
struct link_kind {
	const char *path;    /* the form's action */
	const char *purpose; /* STORE_OTK_* */
	const char *title;
	const char *intro;                  /* above the button */
	const char *button;                 /* the POST's */
	bool password;                      /* the form asks for a new password (reset) */
	const char *done;                   /* what was done, on the page after the POST */
	const char *done_href, *done_label; /* where to go after */
};

static const struct link_kind reset_kind = {
    .path = "/account/password/reset",
    .purpose = STORE_OTK_RESET,
    .title = "Choose a new password",
    .intro = "Choose a new password for your account. Every session of the account ends.",
    .button = "Set the new password",
    .password = true,
    .done = API_MSG_PASSWORD_RESET,
    .done_href = "/account/login",
    .done_label = "Log in with the new password",
};
static const struct link_kind verify_kind = {
    .path = "/account/email/verify",
    .purpose = STORE_OTK_VERIFY,
    .title = "Verify your email address",
    .intro = "Confirm that this address is yours.",
    .button = "Verify my email address",
    .done = API_MSG_EMAIL_VERIFIED,
    .done_href = "/account/",
    .done_label = "Go to your account",
};
static const struct link_kind change_kind = {
    .path = "/account/email/change",
    .purpose = STORE_OTK_EMAIL_CHANGE,
    .title = "Confirm your new email address",
    .intro = "Confirm that this address is yours and becomes the one of your account.",
    .button = "Confirm the new address",
    .done = API_MSG_EMAIL_CHANGED,
    .done_href = "/account/",
    .done_label = "Go to your account",
};

struct link_ctx {
	struct page_form form;
	const struct link_kind *kind;
	struct api_reset *reset;
};

static void
ctx_free(void *p)
{
	struct link_ctx *c = p;

	if (c == NULL)
		return;
	page_form_clear(&c->form);
	api_reset_free(c->reset);
	free(c);
}

static struct link_ctx *
ctx_new(struct http_req *req, const struct link_kind *kind)
{
	struct link_ctx *c = xcalloc(1, sizeof(*c));

	c->kind = kind;
	req->ctx = c;
	req->ctx_free = ctx_free;
	return c;
}

/*
 * The page of a link: the form with the token when `token` is not NULL, the
 * reason the link does not work (`form_error`), the field problems `errs`,
 * or what was done (`done`). A GET of the link has the token in its URL:
 * page_security_headers then sends no-referrer by itself.
 */
static void
link_page(struct http_req *req, int status, const struct link_kind *k, const char *token,
    const char *form_error, const struct acct_errors *errs, const char *done)
{
	char secret[65], csrf[65];
	json_t *vars;

	page_anon_secret(req, secret);
	page_csrf_of(secret, csrf);
	sodium_memzero(secret, sizeof(secret));
	vars = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:b, s:s, s:s}", "title",
	    k->title, "intro", k->intro, "button", k->button, "action", k->path, "csrf_token", csrf,
	    "token", token, "form_error", form_error, "done", done, "password", k->password,
	    "done_href", k->done_href, "done_label", k->done_label);
	page_set_field(vars, "password", "", NULL);
	if (errs != NULL)
		page_set_errors(vars, errs);
	page_reply(req, status, "link.html", vars, 0);
}

/* A token's refusal, or the error page for what is not about the link. */
static void
link_refused(struct http_req *req, const struct link_kind *k, enum api_err err)
{
	const struct api_err_info *info = api_err_info(err);

	if (err == API_ERR_TOKEN_INVALID || err == API_ERR_TOKEN_EXPIRED ||
	    err == API_ERR_TOKEN_USED)
		link_page(req, info->status, k, NULL, info->message, NULL, NULL);
	else
		page_reply_error(req, err);
}

/* GET ?token=: on a database worker, whether the link works; nothing is consumed. */
static void
link_peek(struct http_req *req)
{
	const struct link_ctx *c = req->ctx;
	const char *token = http_query(req, "token");
	enum api_err err =
	    api_otk_peek(req, c->kind->purpose, token, token != NULL ? strlen(token) : 0);

	if (err == API_ERR_NONE)
		link_page(req, 200, c->kind, token, NULL, NULL, NULL);
	else
		link_refused(req, c->kind, err);
}

/* POST: on a worker, the flow of the link's kind with the form's token. */
static void
link_use(struct http_req *req)
{
	const struct link_ctx *c = req->ctx;
	const struct link_kind *k = c->kind;
	struct acct_errors errs = {.n = 0};
	size_t tlen = 0, pwlen = 0;
	const char *token = page_form_get(&c->form, "token", &tlen);
	const char *pw = page_form_get(&c->form, "password", &pwlen);
	int64_t user_id = 0;
	struct store_user who;
	char loc[64];
	enum api_err err;

	if (k == &reset_kind) {
		if (pw == NULL || pwlen == 0) {
			err = api_otk_peek(req, k->purpose, token, tlen); /* a dead link first */
			if (err == API_ERR_NONE) {
				acct_errors_add(&errs, "password", ACCT_MSG_REQUIRED);
				err = API_ERR_INVALID;
			}
		} else {
			err = api_reset_confirm_run(req, token, tlen, pw, pwlen, &errs);
		}
	} else if (k == &verify_kind) {
		err = api_email_verify_run(req, token, tlen);
	} else {
		err = api_email_change_confirm_run(req, token, tlen, &user_id);
	}
	if (err == API_ERR_NONE) {
		/* The reset ended every session of its account: forget this browser's if it was
		 * one. */
		if (k == &reset_kind && page_session_token(req, (char[65]){0})) {
			if (page_authenticate(req, &who, NULL, NULL) == API_ERR_NOT_AUTHENTICATED)
				page_end_session(req);
			store_user_clear(&who);
		}
		/* After a POST, a page to reload safely: ?done= says what was done. */
		snprintf(loc, sizeof(loc), "%s?done=1", k->path);
		page_redirect(req, loc);
	} else if (err == API_ERR_INVALID) {
		link_page(req, 400, k, token, NULL, &errs, NULL);
	} else if (err == API_ERR_EMAIL_TAKEN) {
		link_page(req, api_err_info(err)->status, k, NULL, api_err_info(err)->message, NULL,
		    NULL);
	} else {
		link_refused(req, k, err);
	}
}

static void
link_handle(struct http_req *req, const struct link_kind *k)
{
	struct link_ctx *c = ctx_new(req, k);

	if (req->method != HTTP_POST && http_query(req, "done") != NULL &&
	    http_query(req, "token") == NULL) {
		link_page(req, 200, k, NULL, NULL, NULL, k->done);
		return;
	}
	if (req->method != HTTP_POST) {
		page_defer(req, HTTP_POOL_DB, link_peek);
		return;
	}
	if (!page_read_form(req, &c->form))
		return;
	if (!page_csrf_ok(req, &c->form, http_cookie(req, PAGE_CSRF_COOKIE))) {
		page_csrf_refused(req);
		return;
	}
	page_defer(req, k->password ? HTTP_POOL_HASH : HTTP_POOL_DB, link_use);
}

void
page_password_reset(struct http_req *req)
{
	link_handle(req, &reset_kind);
}

void
page_email_verify(struct http_req *req)
{
	link_handle(req, &verify_kind);
}

void
page_email_change(struct http_req *req)
{
	link_handle(req, &change_kind);
}

/* ---- /account/password/forgot ---- */

static void
forgot_page(struct http_req *req, int status, const char *email, const char *form_error,
    const struct acct_errors *errs, const char *done)
{
	char secret[65], csrf[65];
	json_t *vars;

	page_anon_secret(req, secret);
	page_csrf_of(secret, csrf);
	sodium_memzero(secret, sizeof(secret));
	vars = json_pack("{s:s, s:s, s:s?, s:s?}", "title", "Forgot your password?", "csrf_token",
	    csrf, "form_error", form_error, "done", done);
	page_set_field(vars, "email", email, NULL);
	if (errs != NULL)
		page_set_errors(vars, errs);
	page_reply(req, status, "forgot.html", vars, 0);
}

/* On a database worker: the limits, the one read and one insert; the same page for every address.
 */
static void
forgot_finish(struct http_req *req)
{
	const struct link_ctx *c = req->ctx;
	enum api_err err = api_reset_run(req, c->reset);
	const struct api_err_info *info = api_err_info(err);

	if (err == API_ERR_NONE)
		forgot_page(req, 200, "", NULL, NULL, API_MSG_RESET_SENT);
	else if (err == API_ERR_RATE_LIMITED)
		forgot_page(
		    req, info->status, page_field(&c->form, "email"), info->message, NULL, NULL);
	else
		page_reply_error(req, err);
}

void
page_password_forgot(struct http_req *req)
{
	struct link_ctx *c;
	struct acct_errors errs = {.n = 0};
	const char *email;
	size_t len = 0;

	if (req->method != HTTP_POST) {
		forgot_page(req, 200, "", NULL, NULL, NULL);
		return;
	}
	c = ctx_new(req, NULL);
	if (!page_read_form(req, &c->form))
		return;
	if (!page_csrf_ok(req, &c->form, http_cookie(req, PAGE_CSRF_COOKIE))) {
		page_csrf_refused(req);
		return;
	}
	email = page_form_get(&c->form, "email", &len);
	if (email != NULL && len == 0)
		email = NULL; /* an empty box: the field is required */
	if (api_reset_check(email, len, &errs, &c->reset) != API_ERR_NONE) {
		forgot_page(req, 400, page_field(&c->form, "email"), NULL, &errs, NULL);
		return;
	}
	page_defer(req, HTTP_POOL_DB, forgot_finish);
}
