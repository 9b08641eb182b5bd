/*
 * Teacher invitations: create, list, resend, revoke (by users with
 * can_invite_teachers) and accept (by the invited account). Tokens are 256
 * random bits, shown once, stored as SHA-256. Acceptance is the store's
 * conditional update: at most one caller ever wins. Every handler runs whole
 * on a database worker: authentication reads the database.
 */
#include "api/api.h"
#include "accounts/acct.h"
#include "config.h"
#include "http/req.h"
#include "crypto/rcrypto.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A store failure of an invitation operation: a missing invitation is 404. */
static enum api_err
store_api_err(enum store_status st)
{
	return api_store_err(st, API_ERR_NOT_FOUND, API_ERR_INTERNAL);
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

/* A fresh token: `token` for the client, its hash for the store. */
static void
new_token(char token[65], char token_hash[65])
{
	rcrypto_random_hex(token, 32);
	rcrypto_sha256_hex(token, 64, token_hash);
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

enum api_err
api_invite_create(struct http_req *req, int64_t user_id, const char *email, size_t len,
    struct acct_errors *errs, struct store_invitation *inv, char token[65])
{
	char *email_norm = NULL, *email_key = NULL, subject[24], token_hash[65];
	const char *msg = NULL;
	enum api_err err;

	memset(inv, 0, sizeof(*inv));
	token[0] = '\0';
	if (email == NULL)
		acct_errors_add(errs, "email", ACCT_MSG_REQUIRED);
	else if (acct_email_normalize(email, len, &email_norm, &email_key, &msg) != ACCT_OK)
		acct_errors_add(errs, "email", msg != NULL ? msg : ACCT_MSG_EMAIL_INVALID);
	if (errs->n > 0)
		return API_ERR_INVALID;
	snprintf(subject, sizeof(subject), "%lld", (long long)user_id);
	err = api_limit(req, API_LIMIT_INVITES, subject, 1);
	if (err == API_ERR_NONE) {
		new_token(token, token_hash);
		api_audit_arm_new(req, STORE_AUDIT_INVITATION_CREATED, user_id, user_id,
		    json_pack("{s:s}", "email", email_norm));
		/* The invitation mail commits with it; its link works as the returned token does.
		 */
		err = store_api_err(store_invite_create_mailed(api_store(req), user_id, email_norm,
		    email_key, token_hash, api_config(req)->invitation_ttl_s, "{}", inv));
		if (err != API_ERR_NONE)
			token[0] = '\0';
	}
	free(email_norm);
	free(email_key);
	return err;
}

/* POST: validate the email, count the inviter's limit, create. */
static void
create(struct http_req *req, int64_t user_id)
{
	struct acct_errors errs = {.n = 0};
	struct store_invitation inv = {0};
	const char *email = NULL;
	char token[65];
	json_t *obj = NULL;
	enum api_err err;
	size_t len = 0;

	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	if (!api_required_string(obj, "email", &email, &len, &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	err = api_invite_create(req, user_id, email, len, &errs, &inv, token);
	if (err == API_ERR_INVALID)
		api_reply_invalid(req, &errs);
	else if (err != API_ERR_NONE)
		api_reply_error(req, err);
	else
		reply_with_token(req, 201, &inv, token);
out:
	store_invitation_clear(&inv);
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

static void
invitations_finish(struct http_req *req)
{
	int64_t user_id;

	if (!inviter(req, &user_id))
		return;
	if (req->method == HTTP_POST)
		create(req, user_id);
	else
		list(req, user_id);
}

void
api_invitations(struct http_req *req)
{
	api_defer_authenticated(req, invitations_finish);
}

enum api_err
api_invite_resend(
    struct http_req *req, int64_t id, int64_t user_id, struct store_invitation *inv, char token[65])
{
	char token_hash[65];
	enum api_err err;

	new_token(token, token_hash);
	api_audit_arm_new(req, STORE_AUDIT_INVITATION_RESENT, user_id, user_id,
	    json_pack("{s:I}", "invitation_id", (json_int_t)id));
	err = store_api_err(store_invite_resend_mailed(
	    api_store(req), id, user_id, token_hash, api_config(req)->invitation_ttl_s, "{}", inv));
	if (err != API_ERR_NONE)
		token[0] = '\0';
	return err;
}

static void
resend_finish(struct http_req *req)
{
	struct store_invitation inv = {0};
	char token[65];
	enum api_err err;
	int64_t user_id;

	if (!inviter(req, &user_id))
		return;
	err = api_invite_resend(req, req->path_id, user_id, &inv, token);
	if (err == API_ERR_NONE)
		reply_with_token(req, 200, &inv, token);
	else
		api_reply_error(req, err);
	store_invitation_clear(&inv);
}

void
api_invitation_resend(struct http_req *req)
{
	api_defer_authenticated(req, resend_finish);
}

enum api_err
api_invite_revoke(struct http_req *req, int64_t id, int64_t user_id)
{
	api_audit_arm_new(req, STORE_AUDIT_INVITATION_REVOKED, user_id, user_id,
	    json_pack("{s:I}", "invitation_id", (json_int_t)id));
	return store_api_err(store_invite_revoke(api_store(req), id, user_id));
}

static void
revoke_finish(struct http_req *req)
{
	enum api_err st;
	int64_t user_id;

	if (!inviter(req, &user_id))
		return;
	st = api_invite_revoke(req, req->path_id, user_id);
	if (st == API_ERR_NONE)
		http_reply_empty(req, 204);
	else
		api_reply_error(req, st);
}

void
api_invitation(struct http_req *req)
{
	api_defer_authenticated(req, revoke_finish);
}

bool
api_invitation_token_hash(const char *token, size_t len, char out[65])
{
	/* roster's are 64 hex characters; one imported from Django keeps its link token,
	 * up to 64 URL-safe characters (secrets.token_urlsafe and the like) */
	static const char url_safe[] = "0123456789abcdefghijklmnopqrstuvwxyz"
	                               "ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.~";

	if (len == 0 || len > 64 || strspn(token, url_safe) != len)
		return false;
	rcrypto_sha256_hex(token, len, out);
	return true;
}

enum api_err
api_invite_accept(struct http_req *req, int64_t user_id, const char *token, size_t len)
{
	enum store_invite_why why = STORE_INVITE_OK;
	char token_hash[65];
	enum store_status st;

	if (!api_invitation_token_hash(token, len, token_hash))
		return API_ERR_INVITATION_INVALID;
	api_audit_arm_new(req, STORE_AUDIT_INVITATION_ACCEPTED, user_id, user_id, NULL);
	st = store_invite_accept(api_store(req), token_hash, user_id, &why);
	if (st == STORE_CONFLICT)
		return api_invite_why_err(why);
	/* NOT_FOUND: the account was deleted after it authenticated; as on
	 * /users/me/, its token no longer stands for anyone (401). */
	if (st != STORE_OK)
		return api_store_err(st, API_ERR_NOT_AUTHENTICATED, API_ERR_INTERNAL);
	log_json_new(RS_LOG_INFO, req->id, "invitation accepted",
	    json_pack("{s:I}", "user_id", (json_int_t)user_id));
	return API_ERR_NONE;
}

/* Authenticate, read the token, then the shared acceptance. */
static void
accept_finish(struct http_req *req)
{
	struct acct_errors errs = {.n = 0};
	const char *token = NULL;
	json_t *obj = NULL;
	size_t len = 0;
	struct store_user user;
	enum api_err err = api_authenticate(req, &user, NULL);

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
	err = api_invite_accept(req, user.id, token, len);
	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		goto out;
	}
	http_reply_json_new(req, 200,
	    json_pack("{s:s, s:{s:s, s:b}}", "message", "Invitation accepted.", "profile", "role",
	        "teacher", "can_invite_teachers", 0));
out:
	store_user_clear(&user);
	json_decref(obj);
}

void
api_invitation_accept(struct http_req *req)
{
	api_defer_authenticated(req, accept_finish);
}
