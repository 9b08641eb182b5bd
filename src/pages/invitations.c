/*
 * The invitation pages: /account/invitation?token=… (what a link opens: a GET
 * only shows the invitation, the button's POST accepts it) and
 * /account/invitations (an inviter's list: create, resend, revoke). Every
 * change goes through the API's flows (api_invite_*), so the rules, the
 * limits and the store's conditional updates are the API's.
 *
 * A token is shown once: after a create or a resend the page itself (200,
 * not a redirect) shows the link, since a redirect could only carry it in a
 * URL or a cookie.
 */
#include "pages/pages.h"
#include "pages/internal.h"
#include "accounts/acct.h"
#include "api/api.h"
#include "store/store.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inv_ctx {
	struct page_form form;
};

static void
inv_ctx_free(void *p)
{
	struct inv_ctx *c = p;

	if (c != NULL)
		page_form_clear(&c->form);
	free(c);
}

static struct inv_ctx *
inv_ctx_new(struct http_req *req)
{
	struct inv_ctx *c = xcalloc(1, sizeof(*c));

	req->ctx = c;
	req->ctx_free = inv_ctx_free;
	return c;
}

/* ---- /account/invitation ---- */

/*
 * The invitation page for `token`: what it is, and what the visitor can do
 * (accept when logged in; else register with it, or log in and come back).
 * `error` (NULL: none) says why the last attempt failed.
 */
static void
invitation_page(struct http_req *req, int status, const char *token, const char *error)
{
	struct store_invitation inv;
	struct store_user user;
	char csrf[65] = "", next[200];
	enum api_err err = page_invitation_lookup(req, token, &inv);
	enum api_err auth = page_authenticate(req, &user, csrf, NULL);
	json_t *vars;

	if (auth != API_ERR_NONE && auth != API_ERR_NOT_AUTHENTICATED) {
		page_reply_error(req, auth);
		goto out;
	}
	if (err != API_ERR_NONE && api_err_info(err)->status >= 500) {
		page_reply_error(req, err);
		goto out;
	}
	/* The token is 64 hex characters once looked up, so it needs no escaping in a query. */
	snprintf(next, sizeof(next), "/account/invitation%%3Ftoken%%3D%s",
	    err == API_ERR_NONE ? token : "");
	vars = json_pack("{s:s, s:s?, s:s, s:s?, s:b}", "title", "Teacher invitation", "error",
	    error != NULL         ? error
	    : err != API_ERR_NONE ? api_err_info(err)->message
	                          : NULL,
	    "csrf_token", csrf, "token", err == API_ERR_NONE ? token : NULL, "pending",
	    err == API_ERR_NONE);
	if (err == API_ERR_NONE || inv.email != NULL)
		json_object_set_new(vars, "invitation",
		    json_pack("{s:s, s:s, s:o}", "email", inv.email, "inviter",
		        inv.inviter != NULL ? inv.inviter : "", "expires_at",
		        page_time_new(inv.expires_at)));
	if (auth == API_ERR_NONE)
		json_object_set_new(vars, "user", page_user_json_new(&user));
	json_object_set_new(vars, "login_next", json_string(next));
	page_reply(req, status, "invitation.html", vars, PAGE_TOKEN_URL);
out:
	store_invitation_clear(&inv);
	store_user_clear(&user);
	sodium_memzero(csrf, sizeof(csrf));
}

static void
invitation_show(struct http_req *req)
{
	invitation_page(req, 200, http_query(req, "token"), NULL);
}

static void
invitation_accept(struct http_req *req)
{
	struct inv_ctx *c = req->ctx;
	const char *token = page_form_get(&c->form, "token", NULL);
	struct store_user user;
	enum api_err err = page_authenticate(req, &user, NULL, NULL);
	size_t len = 0;

	if (err == API_ERR_NONE) {
		token = page_form_get(&c->form, "token", &len);
		err = api_invite_accept(req, user.id, token != NULL ? token : "", len);
	}
	store_user_clear(&user);
	if (err == API_ERR_NONE)
		page_redirect(req, "/account/?accepted=1");
	else if (err == API_ERR_NOT_AUTHENTICATED)
		invitation_page(req, 200, token, NULL); /* offers registering or logging in */
	else if (api_err_info(err)->status >= 500)
		page_reply_error(req, err);
	else
		invitation_page(req, api_err_info(err)->status, token, api_err_info(err)->message);
}

void
page_invitation(struct http_req *req)
{
	struct inv_ctx *c;
	char token[65];
	bool has;

	if (req->method != HTTP_POST) {
		page_defer(req, HTTP_POOL_DB, invitation_show);
		return;
	}
	c = inv_ctx_new(req);
	has = page_session_token(req, token);
	if (!has) {
		/* Nobody to accept for: the page again, with its offers. Nothing changes. */
		if (page_read_form(req, &c->form))
			page_defer(req, HTTP_POOL_DB, invitation_accept);
		return;
	}
	if (page_session_form(req, &c->form, token))
		page_defer(req, HTTP_POOL_DB, invitation_accept);
	sodium_memzero(token, sizeof(token));
}

/* ---- /account/invitations ---- */

static json_t *
invitation_row_new(const struct store_invitation *inv)
{
	bool pending = strcmp(inv->status, "pending") == 0;

	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o?, s:b, s:b}", "id", (json_int_t)inv->id,
	    "email", inv->email, "status", inv->status, "created_at",
	    page_time_new(inv->created_at), "expires_at", page_time_new(inv->expires_at),
	    "accepted_at", inv->accepted_at != NULL ? page_time_new(inv->accepted_at) : NULL,
	    "can_resend", pending || strcmp(inv->status, "expired") == 0, "can_revoke", pending);
}

/*
 * The inviter's page: the create form (with `email` typed and `errs`), the
 * list, `error` at the top, and `token`'s link when one was just made.
 */
static void
invitations_page(struct http_req *req, int status, const struct store_user *u, const char *csrf,
    const char *email, const struct acct_errors *errs, const char *error,
    const struct store_invitation *made, const char *token)
{
	struct store_invitations all = {0};
	enum store_status st = store_invite_list(api_store(req), u->id, &all);
	json_t *vars, *rows;
	char origin[300], *link;

	if (st != STORE_OK) {
		page_reply_error(req, api_store_err(st, API_ERR_INTERNAL, API_ERR_INTERNAL));
		return;
	}
	rows = json_array();
	for (size_t i = 0; i < all.n; i++)
		json_array_append_new(rows, invitation_row_new(&all.items[i]));
	store_invitations_clear(&all);
	vars = json_pack("{s:s, s:s, s:o, s:o, s:s?}", "title", "Invitations", "csrf_token", csrf,
	    "user", page_user_json_new(u), "invitations", rows, "error", error);
	page_set_field(vars, "email", email, NULL);
	if (errs != NULL)
		page_set_errors(vars, errs);
	if (made != NULL && token != NULL) {
		page_origin(req, origin, sizeof(origin));
		link = xmalloc(strlen(origin) + 100);
		sprintf(link, "%s/account/invitation?token=%s", origin, token);
		json_object_set_new(vars, "made",
		    json_pack("{s:s, s:s, s:o}", "email", made->email, "link", link, "expires_at",
		        page_time_new(made->expires_at)));
		sodium_memzero(link, strlen(link));
		free(link);
	}
	page_reply(req, status, "invitations.html", vars, 0);
}

/* The field an invitation error belongs next to; NULL: the top of the page. */
static const char *
create_err_field(enum api_err err)
{
	return err == API_ERR_EMAIL_TAKEN || err == API_ERR_INVITATION_PENDING ? "email" : NULL;
}

static void
invitations_post(
    struct http_req *req, const struct store_user *u, const char *csrf, const struct page_form *f)
{
	const char *action = page_field(f, "action"), *email;
	struct store_invitation inv = {0};
	struct acct_errors errs = {.n = 0};
	char token[65] = "";
	enum api_err err;
	long long id = strtoll(page_field(f, "id"), NULL, 10);
	size_t len = 0;

	if (strcmp(action, "create") == 0) {
		email = page_form_get(f, "email", &len);
		err = api_invite_create(
		    req, u->id, email != NULL && len > 0 ? email : NULL, len, &errs, &inv, token);
	} else if (strcmp(action, "resend") == 0 && id > 0) {
		err = api_invite_resend(req, id, u->id, &inv, token);
	} else if (strcmp(action, "revoke") == 0 && id > 0) {
		err = api_invite_revoke(req, id, u->id);
		if (err == API_ERR_NONE) {
			page_redirect(req, "/account/invitations");
			return;
		}
	} else {
		page_render_http_err(req, HTTP_ERR_BAD_REQUEST);
		return;
	}
	if (err == API_ERR_NONE) {
		invitations_page(req, 200, u, csrf, "", NULL, NULL, &inv, token);
	} else if (err == API_ERR_INVALID) {
		invitations_page(
		    req, 400, u, csrf, page_field(f, "email"), &errs, NULL, NULL, NULL);
	} else if (api_err_info(err)->status >= 500) {
		page_reply_error(req, err);
	} else {
		const char *at = strcmp(action, "create") == 0 ? create_err_field(err) : NULL;

		if (at != NULL)
			acct_errors_add(&errs, at, api_err_info(err)->message);
		invitations_page(req, api_err_info(err)->status, u, csrf, page_field(f, "email"),
		    &errs, at == NULL ? api_err_info(err)->message : NULL, NULL, NULL);
	}
	sodium_memzero(token, sizeof(token));
	store_invitation_clear(&inv);
}

static void
invitations_finish(struct http_req *req)
{
	struct inv_ctx *c = req->ctx;
	struct store_user user;
	char csrf[65];
	enum api_err err = page_authenticate(req, &user, csrf, NULL);

	if (err == API_ERR_NONE && !user.can_invite_teachers)
		err = API_ERR_FORBIDDEN;
	if (err == API_ERR_NOT_AUTHENTICATED)
		page_login_first(req, "/account/invitations");
	else if (err != API_ERR_NONE)
		page_reply_error(req, err);
	else if (req->method == HTTP_POST)
		invitations_post(req, &user, csrf, &c->form);
	else
		invitations_page(req, 200, &user, csrf, "", NULL, NULL, NULL, NULL);
	store_user_clear(&user);
}

void
page_invitations(struct http_req *req)
{
	struct inv_ctx *c = inv_ctx_new(req);
	char token[65];
	bool ok = true;

	if (!page_session_token(req, token)) {
		page_login_first(req, "/account/invitations");
		return;
	}
	if (req->method == HTTP_POST)
		ok = page_session_form(req, &c->form, token);
	sodium_memzero(token, sizeof(token));
	if (ok)
		page_defer(req, HTTP_POOL_DB, invitations_finish);
}
