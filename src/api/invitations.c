/*
 * Teacher invitations: create, list, resend, revoke (by users with
 * can_invite_teachers) and accept (by the invited account). Tokens are 256
 * random bits, shown once, stored as SHA-256. Acceptance is the store's
 * conditional update: at most one caller ever wins.
 */
#include "api/api.h"
#include "accounts/acct.h"
#include "http/http.h"
#include "crypto/rcrypto.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct inv_ctx {
	int64_t user_id;
	char *email;
	char *email_key;
	char token_hash[65];
};

static void
inv_ctx_free(void *p)
{
	struct inv_ctx *c = p;

	if (c != NULL) {
		free(c->email);
		free(c->email_key);
	}
	free(c);
}

static enum api_err
store_api_err(enum store_status st)
{
	switch (st) {
	case STORE_NOT_FOUND:
		return API_ERR_NOT_FOUND;
	case STORE_CONFLICT:
		return API_ERR_CONFLICT;
	case STORE_CONFLICT_PENDING:
		return API_ERR_INVITATION_PENDING;
	case STORE_CONFLICT_EMAIL:
		return API_ERR_EMAIL_TAKEN;
	case STORE_BUSY:
	case STORE_UNAVAILABLE:
		return API_ERR_UNAVAILABLE;
	default:
		return API_ERR_INTERNAL;
	}
}

enum api_err
api_invite_why_err(enum store_invite_why why)
{
	switch (why) {
	case STORE_INVITE_EXPIRED:
		return API_ERR_INVITATION_EXPIRED;
	case STORE_INVITE_USED:
		return API_ERR_INVITATION_USED;
	case STORE_INVITE_REVOKED:
		return API_ERR_INVITATION_REVOKED;
	case STORE_INVITE_EMAIL_MISMATCH:
		return API_ERR_INVITATION_EMAIL_MISMATCH;
	default:
		return API_ERR_INVITATION_INVALID;
	}
}

static json_t *
invitation_json_new(const struct store_invitation *inv)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s?}", "id", (json_int_t)inv->id, "email",
	    inv->email, "status", inv->status, "created_at", inv->created_at, "expires_at",
	    inv->expires_at, "accepted_at", inv->accepted_at);
}

/* Authenticates and requires can_invite_teachers; replies and returns false otherwise. */
static bool
inviter(struct http_req *req, int64_t *user_id)
{
	struct store_user u;
	enum api_err err = api_authenticate(req, &u, NULL);

	if (err == API_ERR_NONE && !u.can_invite_teachers)
		err = API_ERR_FORBIDDEN;
	*user_id = u.id;
	store_user_clear(&u);
	if (err != API_ERR_NONE)
		api_reply_error(req, err);
	return err == API_ERR_NONE;
}

/* A fresh token: `token` for the client, its hash into the context. */
static void
new_token(struct inv_ctx *c, char token[65])
{
	rcrypto_random_hex(token, 32);
	rcrypto_sha256_hex(token, 64, c->token_hash);
}

/* 201/200 with the invitation and its token, shown this once. */
static void
reply_with_token(
    struct http_req *req, int status, const struct store_invitation *inv, const char *token)
{
	json_t *body = json_pack("{s:I, s:s, s:s, s:s, s:s}", "id", (json_int_t)inv->id, "email",
	    inv->email, "token", token, "status", inv->status, "expires_at", inv->expires_at);

	http_reply_json_new(req, status, body);
}

static void
create_finish(struct http_req *req)
{
	struct inv_ctx *c = req->ctx;
	struct store_invitation inv = {0};
	enum store_status st;
	char token[65];

	snprintf(token, sizeof(token), "%lld", (long long)c->user_id);
	if (api_limit(req, API_LIMIT_INVITES, token, 1) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_RATE_LIMITED);
		return;
	}
	new_token(c, token);
	st = store_invite_create(req->store, c->user_id, c->email, c->email_key, c->token_hash,
	    http_config(req)->invitation_ttl_s, &inv);
	if (st == STORE_OK)
		reply_with_token(req, 201, &inv, token);
	else
		api_reply_error(req, store_api_err(st));
	store_invitation_clear(&inv);
}

static void
create(struct http_req *req, int64_t user_id)
{
	struct acct_errors errs = {.n = 0};
	struct inv_ctx *c = calloc(1, sizeof(*c));
	const char *msg = NULL, *email = NULL;
	json_t *obj = NULL;
	size_t len = 0;

	if (c == NULL) {
		api_reply_error(req, API_ERR_INTERNAL);
		goto out;
	}
	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	if (api_required_string(obj, "email", &email, &len, &errs) &&
	    acct_email_normalize(email, len, &c->email, &c->email_key, &msg) != ACCT_OK)
		acct_errors_add(&errs, "email", msg != NULL ? msg : ACCT_MSG_EMAIL_INVALID);
	if (errs.n > 0) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	c->user_id = user_id;
	req->ctx = c;
	req->ctx_free = inv_ctx_free;
	c = NULL;
	if (!http_defer(req, create_finish))
		api_reply_error(req, API_ERR_UNAVAILABLE);
out:
	inv_ctx_free(c);
	json_decref(obj);
}

static void
list(struct http_req *req, int64_t user_id)
{
	struct store_invitations all = {0};
	enum store_status st = store_invite_list(api_store(req), user_id, &all);
	json_t *items;

	if (st != STORE_OK) {
		api_reply_error(req, store_api_err(st));
		return;
	}
	items = json_array();
	for (size_t i = 0; i < all.n; i++)
		json_array_append_new(items, invitation_json_new(&all.items[i]));
	http_reply_json_new(req, 200, json_pack("{s:o}", "invitations", items));
	store_invitations_clear(&all);
}

void
api_invitations(struct http_req *req)
{
	int64_t user_id;

	if (!inviter(req, &user_id))
		return;
	if (req->method == HTTP_POST)
		create(req, user_id);
	else
		list(req, user_id);
}

/* Defers `fn` with a context holding the caller and nothing else yet. */
static void
defer_with_user(struct http_req *req, int64_t user_id, http_handler fn)
{
	struct inv_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		api_reply_error(req, API_ERR_INTERNAL);
		return;
	}
	c->user_id = user_id;
	req->ctx = c;
	req->ctx_free = inv_ctx_free;
	if (!http_defer(req, fn))
		api_reply_error(req, API_ERR_UNAVAILABLE);
}

static void
resend_finish(struct http_req *req)
{
	struct inv_ctx *c = req->ctx;
	struct store_invitation inv = {0};
	enum store_status st;
	char token[65];

	new_token(c, token);
	st = store_invite_resend(req->store, req->path_id, c->user_id, c->token_hash,
	    http_config(req)->invitation_ttl_s, &inv);
	if (st == STORE_OK)
		reply_with_token(req, 200, &inv, token);
	else
		api_reply_error(req, store_api_err(st));
	store_invitation_clear(&inv);
}

void
api_invitation_resend(struct http_req *req)
{
	int64_t user_id;

	if (inviter(req, &user_id))
		defer_with_user(req, user_id, resend_finish);
}

static void
revoke_finish(struct http_req *req)
{
	const struct inv_ctx *c = req->ctx;
	enum store_status st;

	st = store_invite_revoke(req->store, req->path_id, c->user_id);
	if (st == STORE_OK)
		http_reply_empty(req, 204);
	else
		api_reply_error(req, store_api_err(st));
}

void
api_invitation(struct http_req *req)
{
	int64_t user_id;

	if (inviter(req, &user_id))
		defer_with_user(req, user_id, revoke_finish);
}

static void
accept_finish(struct http_req *req)
{
	const struct inv_ctx *c = req->ctx;
	enum store_invite_why why = STORE_INVITE_OK;
	enum store_status st;

	st = store_invite_accept(req->store, c->token_hash, c->user_id, &why);
	if (st == STORE_CONFLICT) {
		api_reply_error(req, api_invite_why_err(why));
		return;
	}
	if (st != STORE_OK) {
		api_reply_error(req, store_api_err(st));
		return;
	}
	log_json_new(RS_LOG_INFO, req->id, "invitation accepted",
	    json_pack("{s:I}", "user_id", (json_int_t)c->user_id));
	http_reply_json_new(req, 200,
	    json_pack("{s:s, s:{s:s, s:b}}", "message", "Invitation accepted.", "profile", "role",
	        "teacher", "can_invite_teachers", 0));
}

bool
api_invitation_token_hash(const char *token, size_t len, char out[65])
{
	if (len != 64 || strspn(token, "0123456789abcdef") != 64)
		return false;
	rcrypto_sha256_hex(token, 64, out);
	return true;
}

void
api_invitation_accept(struct http_req *req)
{
	struct acct_errors errs = {.n = 0};
	struct inv_ctx *c = NULL;
	const char *token = NULL;
	json_t *obj = NULL;
	size_t len = 0;
	struct store_user user;
	enum api_err err = api_authenticate(req, &user, NULL);
	int64_t user_id = user.id;

	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		goto out;
	}
	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	if (!api_required_string(obj, "token", &token, &len, &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		api_reply_error(req, API_ERR_INTERNAL);
		goto out;
	}
	if (!api_invitation_token_hash(token, len, c->token_hash)) {
		api_reply_error(req, API_ERR_INVITATION_INVALID);
		goto out;
	}
	c->user_id = user_id;
	req->ctx = c;
	req->ctx_free = inv_ctx_free;
	c = NULL;
	if (!http_defer(req, accept_finish))
		api_reply_error(req, API_ERR_UNAVAILABLE);
out:
	store_user_clear(&user);
	inv_ctx_free(c);
	json_decref(obj);
}
