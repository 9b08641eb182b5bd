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

/* ---- the flows, shared with the pages (each on a worker) ---- */

/* A link's token as its SHA-256 hex; false when absent or not of a token's shape. */
static bool
link_hash(const char *token, size_t len, char hash[65])
{
	return token != NULL && api_invitation_token_hash(token, len, hash);
}

enum api_err
api_otk_peek(struct http_req *req, const char *purpose, const char *token, size_t len)
{
	enum store_otk_why why = STORE_OTK_OK;
	int64_t user_id = 0;
	char hash[65];
	enum store_status st;

	if (!link_hash(token, len, hash))
		return API_ERR_TOKEN_INVALID;
	st = store_otk_check(api_store(req), purpose, hash, &why, &user_id);
	if (st == STORE_OK && why != STORE_OTK_OK)
		return api_otk_why_err(why);
	return st == STORE_NOT_FOUND ? API_ERR_TOKEN_INVALID : store_err(st);
}

enum api_err
api_email_verify_run(struct http_req *req, const char *token, size_t len)
{
	enum store_otk_why why = STORE_OTK_OK;
	char hash[65];
	enum store_status st;

	if (!link_hash(token, len, hash))
		return API_ERR_TOKEN_INVALID;
	api_audit_arm_new(req, STORE_AUDIT_EMAIL_VERIFIED, 0, 0, NULL);
	st = store_email_verify(api_store(req), hash, &why);
	if (st == STORE_CONFLICT)
		return api_otk_why_err(why);
	return store_err(st);
}

enum api_err
api_verify_resend_run(struct http_req *req, const struct store_user *user)
{
	char subject[32];
	bool verified = false;
	enum api_err err;
	enum store_status st;

	snprintf(subject, sizeof(subject), "#%lld", (long long)user->id);
	err = api_limit(req, API_LIMIT_VERIFY_RESEND, subject, 1);
	if (err != API_ERR_NONE)
		return err;
	st = store_user_email_verified(api_store(req), user->id, &verified);
	if (st == STORE_OK && !verified)
		st = store_mail_enqueue(api_store(req),
		    &(struct store_mail_new){.kind = "verify", .user_id = user->id}, NULL);
	return store_err(st);
}

struct api_reset {
	char *email, *email_key;
};

void
api_reset_free(struct api_reset *r)
{
	if (r != NULL) {
		free(r->email);
		free(r->email_key);
	}
	free(r);
}

enum api_err
api_reset_check(const char *email, size_t len, struct acct_errors *errs, struct api_reset **out)
{
	struct api_reset *r = xcalloc(1, sizeof(*r));
	const char *msg = NULL;

	*out = NULL;
	if (email == NULL ||
	    acct_email_normalize(email, len, &r->email, &r->email_key, &msg) != ACCT_OK) {
		acct_errors_add(errs, "email",
		    email == NULL ? ACCT_MSG_REQUIRED
		    : msg != NULL ? msg
		                  : ACCT_MSG_EMAIL_INVALID);
		api_reset_free(r);
		return API_ERR_INVALID;
	}
	*out = r;
	return API_ERR_NONE;
}

/*
 * The same limits, the same one read and one insert, the same answer for
 * every address (store_reset_request).
 */
enum api_err
api_reset_run(struct http_req *req, const struct api_reset *r)
{
	enum api_err err = api_limit(req, API_LIMIT_RESET_IP, req->remote_bucket, 1);

	if (err == API_ERR_NONE)
		err = api_limit(req, API_LIMIT_RESET_EMAIL, r->email_key, 1);
	if (err != API_ERR_NONE)
		return err;
	api_audit_arm_new(req, STORE_AUDIT_PASSWORD_RESET_REQUESTED, 0, 0, NULL);
	return store_err(store_reset_request(api_store(req), r->email, r->email_key));
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

/* The new password's hash at the configured cost; false (logged) when hashing fails. */
static bool
new_hash(struct http_req *req, const char *pw, size_t len, char out[RCRYPTO_HASH_MAX])
{
	const struct config *cfg = api_config(req);
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};

	if (rcrypto_pwhash(pw, len, &cost, out) == 0)
		return true;
	http_log(req, RS_LOG_ERROR, "password hashing failed (out of memory?)");
	return false;
}

/*
 * The token is checked first (no hash for a dead link), the policy with the
 * account's name and address, then the hash; the store's conditional update
 * decides whether the token still works.
 */
enum api_err
api_reset_confirm_run(struct http_req *req, const char *token, size_t tlen, const char *pw,
    size_t pwlen, struct acct_errors *errs)
{
	struct store_user user = {0};
	enum store_otk_why why = STORE_OTK_OK;
	char hash[65], pwhash[RCRYPTO_HASH_MAX] = "";
	int64_t user_id = 0;
	enum api_err err = API_ERR_NONE;
	enum store_status st;

	if (!link_hash(token, tlen, hash))
		return API_ERR_TOKEN_INVALID;
	st = store_otk_check(api_store(req), STORE_OTK_RESET, hash, &why, &user_id);
	if (st == STORE_OK && why == STORE_OTK_OK)
		st = store_user_get(
		    api_store(req), &(struct store_user_ref){user_id, NULL, NULL}, &user);
	if (st != STORE_OK || why != STORE_OTK_OK) {
		err = st == STORE_OK          ? api_otk_why_err(why)
		      : st == STORE_NOT_FOUND ? API_ERR_TOKEN_INVALID
		                              : store_err(st);
		goto out;
	}
	if (!password_ok(pw, pwlen, &user, "password", errs)) {
		err = API_ERR_INVALID;
		goto out;
	}
	if (!new_hash(req, pw, pwlen, pwhash)) {
		err = API_ERR_INTERNAL;
		goto out;
	}
	api_audit_arm_new(req, STORE_AUDIT_PASSWORD_RESET, user.id, 0, NULL);
	st = store_reset_confirm(api_store(req), hash, pwhash, &why);
	if (st == STORE_OK)
		log_json_new(RS_LOG_INFO, req->id, "password reset",
		    json_pack("{s:I}", "user_id", (json_int_t)user.id));
	err = st == STORE_CONFLICT ? api_otk_why_err(why) : store_err(st);
out:
	sodium_memzero(pwhash, sizeof(pwhash));
	store_user_clear(&user);
	return err;
}

/*
 * Verifies the current password, the policy, the new hash; the store
 * replaces the hash only if it is still the one verified and revokes every
 * other token of the account (all but the one whose hash is `keep`).
 */
enum api_err
api_password_change_run(struct http_req *req, const struct store_user *user, const char *keep,
    const char *cur, size_t curlen, const char *pw, size_t pwlen, struct acct_errors *errs)
{
	const struct config *cfg = api_config(req);
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct store_user cred = {0};
	char *stored = NULL, pwhash[RCRYPTO_HASH_MAX] = "";
	bool rehash = false;
	enum api_err err = API_ERR_NONE;
	enum store_status st = store_user_credentials(
	    api_store(req), &(struct store_user_ref){user->id, NULL, NULL}, &cred, &stored);

	if (st != STORE_OK) {
		err = store_err(st);
		goto out;
	}
	if (!rcrypto_verify_any(cur, curlen, stored, &cost, &rehash))
		acct_errors_add(errs, "current_password", API_MSG_CURRENT_PASSWORD_WRONG);
	if (errs->n > 0 || !password_ok(pw, pwlen, user, "new_password", errs)) {
		err = API_ERR_INVALID;
		goto out;
	}
	if (!new_hash(req, pw, pwlen, pwhash)) {
		err = API_ERR_INTERNAL;
		goto out;
	}
	api_audit_arm_new(req, STORE_AUDIT_PASSWORD_CHANGED, user->id, user->id, NULL);
	st = store_password_change(api_store(req), user->id, stored, pwhash, keep);
	if (st == STORE_OK)
		log_json_new(RS_LOG_INFO, req->id, "password changed",
		    json_pack("{s:I}", "user_id", (json_int_t)user->id));
	/* Changed by another request meanwhile: the current password checked is stale. */
	err = st == STORE_CONFLICT ? API_ERR_CONFLICT : store_err(st);
out:
	sodium_memzero(pwhash, sizeof(pwhash));
	free(stored);
	store_user_clear(&cred);
	return err;
}

enum api_err
api_email_change_run(struct http_req *req, const struct store_user *user, const char *email,
    size_t len, struct acct_errors *errs)
{
	char *display = NULL, *key = NULL, *ukey;
	const char *msg = NULL;
	enum store_status st;

	if (acct_email_normalize(email, len, &display, &key, &msg) != ACCT_OK) {
		acct_errors_add(errs, "email", msg != NULL ? msg : ACCT_MSG_EMAIL_INVALID);
		return API_ERR_INVALID;
	}
	ukey = acct_username_key_any(display, strlen(display));
	if (ukey == NULL) { /* out of memory: a valid address always has a key */
		free(display);
		free(key);
		return API_ERR_INTERNAL;
	}
	api_audit_arm_new(req, STORE_AUDIT_EMAIL_CHANGE_REQUESTED, user->id, user->id, NULL);
	st = store_email_change_request(api_store(req), user->id, display, key, ukey);
	free(display);
	free(key);
	free(ukey);
	return st == STORE_CONFLICT_EMAIL ? API_ERR_EMAIL_TAKEN : store_err(st);
}

enum api_err
api_email_change_confirm_run(struct http_req *req, const char *token, size_t len, int64_t *user_id)
{
	enum store_otk_why why = STORE_OTK_OK;
	char hash[65];
	enum store_status st;

	*user_id = 0;
	if (!link_hash(token, len, hash))
		return API_ERR_TOKEN_INVALID;
	api_audit_arm_new(req, STORE_AUDIT_EMAIL_CHANGED, 0, 0, NULL);
	st = store_email_change_confirm(api_store(req), hash, user_id, &why);
	if (st == STORE_CONFLICT)
		return api_otk_why_err(why);
	return st == STORE_CONFLICT_EMAIL ? API_ERR_EMAIL_TAKEN : store_err(st);
}

/* ---- the JSON endpoints ---- */

/*
 * The body as an object and its required string `name`: false (replied) when
 * the body is not an object (malformed_json) or lacks it (invalid). `obj` is
 * the parsed body, owned by the caller.
 */
static bool
body_string(struct http_req *req, const char *name, json_t **obj, const char **out, size_t *len)
{
	struct acct_errors errs = {.n = 0};

	*obj = NULL;
	if (api_body_object_new(req->body, req->body_len, obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		return false;
	}
	if (!api_required_string(*obj, name, out, len, &errs)) {
		api_reply_invalid(req, &errs);
		return false;
	}
	return true;
}

/* The answer of a flow: `message` with `status`, its problems, or its error. */
static void
reply_flow(struct http_req *req, enum api_err err, const struct acct_errors *errs, int status,
    const char *message)
{
	static const struct acct_errors none = {.n = 0};

	if (err == API_ERR_NONE)
		reply_message(req, status, message);
	else if (err == API_ERR_INVALID)
		api_reply_invalid(req, errs != NULL ? errs : &none);
	else
		api_reply_error(req, err);
}

/* POST /users/email/verify/ {"token"}: on a database worker. */
static void
verify_finish(struct http_req *req)
{
	json_t *obj = NULL;
	const char *token = NULL;
	size_t len = 0;

	if (body_string(req, "token", &obj, &token, &len))
		reply_flow(
		    req, api_email_verify_run(req, token, len), NULL, 200, API_MSG_EMAIL_VERIFIED);
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

	if (err == API_ERR_NONE)
		err = api_verify_resend_run(req, &user);
	reply_flow(req, err, NULL, 202, API_MSG_VERIFY_SENT);
	store_user_clear(&user);
}

void
api_email_verify_resend(struct http_req *req)
{
	api_defer_authenticated(req, resend_finish);
}

static void
reset_ctx_free(void *p)
{
	api_reset_free(p);
}

/* POST /users/password/reset/, second half. */
static void
reset_finish(struct http_req *req)
{
	reply_flow(req, api_reset_run(req, req->ctx), NULL, 202, API_MSG_RESET_SENT);
}

void
api_password_reset(struct http_req *req)
{
	struct acct_errors errs = {.n = 0};
	struct api_reset *r = NULL;
	const char *email = NULL;
	size_t len = 0;
	json_t *obj = NULL;

	if (!body_string(req, "email", &obj, &email, &len))
		goto out;
	if (api_reset_check(email, len, &errs, &r) != API_ERR_NONE) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	req->ctx = r;
	req->ctx_free = reset_ctx_free;
	api_defer(req, HTTP_POOL_DB, reset_finish);
out:
	json_decref(obj);
}

/* POST /users/password/reset/confirm/ {"token", "password"}, on a hashing worker. */
static void
reset_confirm_finish(struct http_req *req)
{
	struct acct_errors errs = {.n = 0};
	const char *token = NULL, *pw = NULL;
	size_t tlen = 0, pwlen = 0;
	json_t *obj = NULL;

	if (!body_string(req, "token", &obj, &token, &tlen))
		goto out;
	if (!link_hash(token, tlen, (char[65]){0})) {
		api_reply_error(
		    req, API_ERR_TOKEN_INVALID); /* a dead link before a missing field */
		goto out;
	}
	if (!api_required_string(obj, "password", &pw, &pwlen, &errs)) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	reply_flow(req, api_reset_confirm_run(req, token, tlen, pw, pwlen, &errs), &errs, 200,
	    API_MSG_PASSWORD_RESET);
out:
	if (pw != NULL)
		sodium_memzero((char *)pw, pwlen);
	json_decref(obj);
}

void
api_password_reset_confirm(struct http_req *req)
{
	api_defer(req, HTTP_POOL_HASH, reset_confirm_finish);
}

/* POST /users/me/password/ {"current_password", "new_password"}, on a hashing worker. */
static void
change_finish(struct http_req *req)
{
	struct acct_errors errs = {.n = 0};
	struct store_user user = {0};
	const char *cur = NULL, *pw = NULL;
	size_t curlen = 0, pwlen = 0;
	char keep[65];
	json_t *obj = NULL;
	enum api_err err = api_authenticate(req, &user, keep);

	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		goto out;
	}
	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	api_required_string(obj, "current_password", &cur, &curlen, &errs);
	api_required_string(obj, "new_password", &pw, &pwlen, &errs);
	if (errs.n > 0) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	reply_flow(req, api_password_change_run(req, &user, keep, cur, curlen, pw, pwlen, &errs),
	    &errs, 200, API_MSG_PASSWORD_CHANGED);
out:
	if (cur != NULL)
		sodium_memzero((char *)cur, curlen);
	if (pw != NULL)
		sodium_memzero((char *)pw, pwlen);
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
	enum api_err err;

	if (!json_is_string(v)) {
		acct_errors_add(&errs, "email", ACCT_MSG_NOT_STRING);
		api_reply_invalid(req, &errs);
		return;
	}
	err = api_email_change_run(req, user, json_string_value(v), json_string_length(v), &errs);
	reply_flow(req, err, &errs, 202, API_MSG_EMAIL_CHANGE_SENT);
}

/* POST /users/email/change/confirm/ {"token"}: the new address, then the account. */
static void
change_confirm_finish(struct http_req *req)
{
	json_t *obj = NULL;
	const char *token = NULL;
	size_t len = 0;
	int64_t user_id = 0;
	enum api_err err;

	if (!body_string(req, "token", &obj, &token, &len))
		goto out;
	err = api_email_change_confirm_run(req, token, len, &user_id);
	if (err == API_ERR_NONE)
		api_reply_me(req, user_id);
	else
		api_reply_error(req, err);
out:
	json_decref(obj);
}

void
api_email_change_confirm(struct http_req *req)
{
	api_defer(req, HTTP_POOL_DB, change_confirm_finish);
}
