/*
 * The account lifecycle by email (API.md "Account lifecycle"): email
 * verification and its resend, password reset request and confirm, password
 * change, email change request (PATCH /users/me/, from session.c) and
 * confirm. Each change that promises a mail queues it in its own transaction
 * (store/lifecycle.c); no handler sends mail (api/mailer.c does, on its own
 * thread). Passwords are hashed and verified on the hashing pool, never on
 * an I/O thread. Tokens arrive only in POST bodies: a GET of a link never
 * consumes one.
 */
#include "api/api.h"
#include "accounts/acct.h"
#include "config.h"
#include "crypto/rcrypto.h"
#include "http/req.h"
#include "log.h"
#include "store/store.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum api_err
api_otk_why_err(enum store_otk_why why)
{
	switch (why) {
	case STORE_OTK_EXPIRED:
		return API_ERR_TOKEN_EXPIRED;
	case STORE_OTK_USED:
		return API_ERR_TOKEN_USED;
	default:
		return API_ERR_TOKEN_INVALID;
	}
}

static enum api_err
store_err(enum store_status st)
{
	return api_store_err(st, API_ERR_NOT_AUTHENTICATED, API_ERR_INTERNAL);
}

static void
reply_message(struct http_req *req, int status, const char *message)
{
	http_reply_json_new(req, status, json_pack("{s:s}", "message", message));
}

/*
 * The body's `token` as its SHA-256 hex: false (replied) when the body is not
 * an object (malformed_json), lacks it (invalid) or it is not a token's shape
 * (token_invalid). `obj` is the parsed body, owned by the caller.
 */
static bool
token_of(struct http_req *req, json_t **obj, char hash[65])
{
	struct acct_errors errs = {.n = 0};
	const char *token = NULL;
	size_t len = 0;

	*obj = NULL;
	if (api_body_object_new(req->body, req->body_len, obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		return false;
	}
	if (!api_required_string(*obj, "token", &token, &len, &errs)) {
		api_reply_invalid(req, &errs);
		return false;
	}
	if (!api_invitation_token_hash(token, len, hash)) {
		api_reply_error(req, API_ERR_TOKEN_INVALID);
		return false;
	}
	return true;
}

/* POST /users/email/verify/ {"token"}: on a database worker. */
static void
verify_finish(struct http_req *req)
{
	enum store_otk_why why = STORE_OTK_OK;
	json_t *obj = NULL;
	char hash[65];
	enum store_status st;

	if (!token_of(req, &obj, hash))
		goto out;
	api_audit_arm_new(req, STORE_AUDIT_EMAIL_VERIFIED, 0, 0, NULL);
	st = store_email_verify(api_store(req), hash, &why);
	if (st == STORE_OK)
		reply_message(req, 200, "Your email address has been verified.");
	else if (st == STORE_CONFLICT)
		api_reply_error(req, api_otk_why_err(why));
	else
		api_reply_error(req, store_err(st));
out:
	json_decref(obj);
}

void
api_email_verify(struct http_req *req)
{
	api_defer(req, HTTP_POOL_DB, verify_finish);
}

/* POST /users/email/verify/resend/: a new verification mail unless verified already. */
static void
resend_finish(struct http_req *req)
{
	struct store_user user;
	enum api_err err = api_authenticate(req, &user, NULL);
	char subject[32];
	bool verified = false;
	enum store_status st;

	if (err == API_ERR_NONE) {
		snprintf(subject, sizeof(subject), "#%lld", (long long)user.id);
		err = api_limit(req, API_LIMIT_VERIFY_RESEND, subject, 1);
	}
	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		goto out;
	}
	st = store_user_email_verified(api_store(req), user.id, &verified);
	if (st == STORE_OK && !verified)
		st = store_mail_enqueue(api_store(req),
		    &(struct store_mail_new){.kind = "verify", .user_id = user.id}, NULL);
	if (st == STORE_OK)
		reply_message(req, 202, "A verification link has been sent.");
	else
		api_reply_error(req, store_err(st));
out:
	store_user_clear(&user);
}

void
api_email_verify_resend(struct http_req *req)
{
	api_defer_authenticated(req, resend_finish);
}

struct reset_ctx {
	char *email, *email_key;
};

static void
reset_ctx_free(void *p)
{
	struct reset_ctx *c = p;

	if (c != NULL) {
		free(c->email);
		free(c->email_key);
	}
	free(c);
}

#define RESET_SENT "If an account uses this email, a password reset link has been sent to it."

/*
 * POST /users/password/reset/, second half: the same limits, the same one
 * read and one insert, the same answer for every address (store_reset_request).
 */
static void
reset_finish(struct http_req *req)
{
	const struct reset_ctx *c = req->ctx;
	enum api_err err = api_limit(req, API_LIMIT_RESET_IP, req->remote_bucket, 1);
	enum store_status st;

	if (err == API_ERR_NONE)
		err = api_limit(req, API_LIMIT_RESET_EMAIL, c->email_key, 1);
	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		return;
	}
	api_audit_arm_new(req, STORE_AUDIT_PASSWORD_RESET_REQUESTED, 0, 0, NULL);
	st = store_reset_request(api_store(req), c->email, c->email_key);
	if (st == STORE_OK)
		reply_message(req, 202, RESET_SENT);
	else
		api_reply_error(req, store_err(st));
}

void
api_password_reset(struct http_req *req)
{
	struct acct_errors errs = {.n = 0};
	struct reset_ctx *c = NULL;
	const char *email = NULL, *msg = NULL;
	size_t len = 0;
	json_t *obj = NULL;

	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	if (!api_required_string(obj, "email", &email, &len, &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	c = xcalloc(1, sizeof(*c));
	if (acct_email_normalize(email, len, &c->email, &c->email_key, &msg) != ACCT_OK) {
		acct_errors_add(&errs, "email", msg != NULL ? msg : ACCT_MSG_EMAIL_INVALID);
		api_reply_invalid(req, &errs);
		goto out;
	}
	req->ctx = c;
	req->ctx_free = reset_ctx_free;
	c = NULL;
	api_defer(req, HTTP_POOL_DB, reset_finish);
out:
	reset_ctx_free(c);
	json_decref(obj);
}

/* A password field's problems under `field` (the policy names them "password"). */
static bool
password_ok(const char *pw, size_t len, const struct store_user *u, const char *field,
    struct acct_errors *errs)
{
	size_t before = errs->n;

	acct_password_check(pw, len, u->username, u->email, errs);
	for (size_t i = before; i < errs->n; i++)
		errs->items[i].field = field;
	return errs->n == before;
}

/*
 * POST /users/password/reset/confirm/ {"token", "password"}, on a hashing
 * worker: the token is checked first (no hash for a dead link), the policy
 * with the account's name and address, then the hash; the store's
 * conditional update decides whether the token still works.
 */
static void
reset_confirm_finish(struct http_req *req)
{
	const struct config *cfg = api_config(req);
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct acct_errors errs = {.n = 0};
	struct store_user user = {0};
	enum store_otk_why why = STORE_OTK_OK;
	const char *pw = NULL;
	size_t pwlen = 0;
	char hash[65], pwhash[RCRYPTO_HASH_MAX] = "";
	int64_t user_id = 0;
	json_t *obj = NULL;
	enum store_status st;

	if (!token_of(req, &obj, hash))
		goto out;
	if (!api_required_string(obj, "password", &pw, &pwlen, &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	st = store_otk_check(api_store(req), STORE_OTK_RESET, hash, &why, &user_id);
	if (st == STORE_OK && why == STORE_OTK_OK)
		st = store_user_get(
		    api_store(req), &(struct store_user_ref){user_id, NULL, NULL}, &user);
	if (st != STORE_OK || why != STORE_OTK_OK) {
		api_reply_error(req, st == STORE_OK          ? api_otk_why_err(why)
		                     : st == STORE_NOT_FOUND ? API_ERR_TOKEN_INVALID
		                                             : store_err(st));
		goto out;
	}
	if (!password_ok(pw, pwlen, &user, "password", &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	if (rcrypto_pwhash(pw, pwlen, &cost, pwhash) != 0) {
		http_log(req, RS_LOG_ERROR, "password hashing failed (out of memory?)");
		api_reply_error(req, API_ERR_INTERNAL);
		goto out;
	}
	api_audit_arm_new(req, STORE_AUDIT_PASSWORD_RESET, user.id, 0, NULL);
	st = store_reset_confirm(api_store(req), hash, pwhash, &why);
	if (st == STORE_OK) {
		log_json_new(RS_LOG_INFO, req->id, "password reset",
		    json_pack("{s:I}", "user_id", (json_int_t)user.id));
		reply_message(req, 200, "Your password has been reset.");
	} else if (st == STORE_CONFLICT) {
		api_reply_error(req, api_otk_why_err(why));
	} else {
		api_reply_error(req, store_err(st));
	}
out:
	if (pw != NULL)
		sodium_memzero((char *)pw, pwlen);
	sodium_memzero(pwhash, sizeof(pwhash));
	store_user_clear(&user);
	json_decref(obj);
}

void
api_password_reset_confirm(struct http_req *req)
{
	api_defer(req, HTTP_POOL_HASH, reset_confirm_finish);
}

/* Both password fields, or false (replied). */
static bool
change_fields(struct http_req *req, json_t *obj, const char **cur, size_t *curlen, const char **pw,
    size_t *pwlen)
{
	struct acct_errors errs = {.n = 0};
	bool a = api_required_string(obj, "current_password", cur, curlen, &errs);
	bool b = api_required_string(obj, "new_password", pw, pwlen, &errs);

	if (!a || !b)
		api_reply_invalid(req, &errs);
	return a && b;
}

/*
 * POST /users/me/password/ {"current_password", "new_password"}, on a hashing
 * worker: authenticate, verify the current password, the policy, the new
 * hash; the store replaces the hash only if it is still the one verified and
 * revokes every other token of the account.
 */
static void
change_finish(struct http_req *req)
{
	const struct config *cfg = api_config(req);
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct acct_errors errs = {.n = 0};
	struct store_user user = {0}, cred = {0};
	const char *cur = NULL, *pw = NULL;
	size_t curlen = 0, pwlen = 0;
	char keep[65], *stored = NULL, pwhash[RCRYPTO_HASH_MAX] = "";
	json_t *obj = NULL;
	bool rehash = false;
	enum api_err err = api_authenticate(req, &user, keep);
	enum store_status st;

	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		goto out;
	}
	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	if (!change_fields(req, obj, &cur, &curlen, &pw, &pwlen))
		goto out;
	st = store_user_credentials(
	    api_store(req), &(struct store_user_ref){user.id, NULL, NULL}, &cred, &stored);
	if (st != STORE_OK) {
		api_reply_error(req, store_err(st));
		goto out;
	}
	if (!rcrypto_verify_any(cur, curlen, stored, &cost, &rehash))
		acct_errors_add(&errs, "current_password", "Your current password is incorrect.");
	if (errs.n > 0 || !password_ok(pw, pwlen, &user, "new_password", &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	if (rcrypto_pwhash(pw, pwlen, &cost, pwhash) != 0) {
		http_log(req, RS_LOG_ERROR, "password hashing failed (out of memory?)");
		api_reply_error(req, API_ERR_INTERNAL);
		goto out;
	}
	api_audit_arm_new(req, STORE_AUDIT_PASSWORD_CHANGED, user.id, user.id, NULL);
	st = store_password_change(api_store(req), user.id, stored, pwhash, keep);
	if (st == STORE_OK) {
		log_json_new(RS_LOG_INFO, req->id, "password changed",
		    json_pack("{s:I}", "user_id", (json_int_t)user.id));
		reply_message(req, 200, "Your password has been changed.");
	} else {
		/* Changed by another request meanwhile: the current password checked is stale. */
		api_reply_error(req, st == STORE_CONFLICT ? API_ERR_CONFLICT : store_err(st));
	}
out:
	if (cur != NULL)
		sodium_memzero((char *)cur, curlen);
	if (pw != NULL)
		sodium_memzero((char *)pw, pwlen);
	sodium_memzero(pwhash, sizeof(pwhash));
	free(stored);
	store_user_clear(&cred);
	store_user_clear(&user);
	json_decref(obj);
}

void
api_password_change(struct http_req *req)
{
	char token[65];

	if (!api_auth_token(http_header(req, "Authorization"), token))
		api_reply_error(req, API_ERR_NOT_AUTHENTICATED);
	else
		api_defer(req, HTTP_POOL_HASH, change_finish);
}

void
api_email_change_request(struct http_req *req, const struct store_user *user, json_t *obj)
{
	struct acct_errors errs = {.n = 0};
	json_t *v = json_object_get(obj, "email");
	char *display = NULL, *key = NULL;
	const char *msg = NULL;
	enum store_status st;

	if (!json_is_string(v)) {
		acct_errors_add(&errs, "email", ACCT_MSG_NOT_STRING);
		api_reply_invalid(req, &errs);
		return;
	}
	if (acct_email_normalize(
	        json_string_value(v), json_string_length(v), &display, &key, &msg) != ACCT_OK) {
		acct_errors_add(&errs, "email", msg != NULL ? msg : ACCT_MSG_EMAIL_INVALID);
		api_reply_invalid(req, &errs);
		goto out;
	}
	api_audit_arm_new(req, STORE_AUDIT_EMAIL_CHANGE_REQUESTED, user->id, user->id, NULL);
	st = store_email_change_request(api_store(req), user->id, display, key);
	if (st == STORE_OK)
		reply_message(req, 202, "A confirmation link has been sent to the new address.");
	else
		api_reply_error(
		    req, st == STORE_CONFLICT_EMAIL ? API_ERR_EMAIL_TAKEN : store_err(st));
out:
	free(display);
	free(key);
}

/* POST /users/email/change/confirm/ {"token"}: the new address, then the account. */
static void
change_confirm_finish(struct http_req *req)
{
	enum store_otk_why why = STORE_OTK_OK;
	int64_t user_id = 0;
	json_t *obj = NULL;
	char hash[65];
	enum store_status st;

	if (!token_of(req, &obj, hash))
		goto out;
	api_audit_arm_new(req, STORE_AUDIT_EMAIL_CHANGED, 0, 0, NULL);
	st = store_email_change_confirm(api_store(req), hash, &user_id, &why);
	if (st == STORE_OK)
		api_reply_me(req, user_id);
	else if (st == STORE_CONFLICT)
		api_reply_error(req, api_otk_why_err(why));
	else
		api_reply_error(
		    req, st == STORE_CONFLICT_EMAIL ? API_ERR_EMAIL_TAKEN : store_err(st));
out:
	json_decref(obj);
}

void
api_email_change_confirm(struct http_req *req)
{
	api_defer(req, HTTP_POOL_DB, change_confirm_finish);
}
