/*
 * Sessions: POST /users/login/, POST /users/logout/, GET and PATCH /users/me/.
 * Login verifies on a hashing worker; logout and /users/me/ run whole on a
 * database worker (authentication reads the database). An unknown account is verified against a
 * dummy hash of the same cost, so both failures take the same time and give
 * the same answer. Imported Django hashes are upgraded on the first login.
 */
#include "api/api.h"
#include "accounts/acct.h"
#include "config.h"
#include "http/req.h"
#include "metrics.h"
#include "crypto/rcrypto.h"
#include "store/store.h"
#include "xmalloc.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Which account a login name names. An email-shaped name (the `email` field,
 * or an email-shaped `username`) is looked up by email; no username made by
 * roster is email-shaped, so that is the only account it can name. Only when
 * no account has that email is an email-shaped `username` looked up as a
 * username: accounts imported from Django (or made before usernames were
 * refused that shape) keep logging in, and an email can never be shadowed by
 * one of them, since registration refuses an email that is some account's
 * username. Any other `username` is only a username.
 */
struct api_login {
	char *email_key;    /* looked up first; NULL when the value is not an email */
	char *username_key; /* then (or only) this; NULL when it cannot be a username */
	char name[320];     /* the normalised login name, for failure counting */
	char *password;     /* wiped */
	size_t password_len;
};

void
api_login_free(struct api_login *c)
{
	if (c == NULL)
		return;
	if (c->password != NULL)
		sodium_memzero(c->password, c->password_len);
	free(c->username_key);
	free(c->email_key);
	free(c->password);
	free(c);
}

static pthread_mutex_t dummy_mu = PTHREAD_MUTEX_INITIALIZER;
static char dummy_hash[RCRYPTO_HASH_MAX];

/* A hash of a random password at the configured cost, made once. */
static const char *
dummy(const struct rcrypto_cost *cost)
{
	char pw[33];

	pthread_mutex_lock(&dummy_mu);
	if (dummy_hash[0] == '\0') {
		rcrypto_random_hex(pw, 16);
		if (rcrypto_pwhash(pw, 32, cost, dummy_hash) != 0)
			dummy_hash[0] = '\0';
	}
	pthread_mutex_unlock(&dummy_mu);
	return dummy_hash;
}

/* A store failure of a session operation; a missing row here is our problem, not the client's. */
static enum api_err
store_api_err(enum store_status st)
{
	return api_store_err(st, API_ERR_INTERNAL, API_ERR_INTERNAL);
}

/* After a successful verify of an old-format hash: store a current one. */
static void
upgrade_hash(struct http_req *req, const struct api_login *c, int64_t id, const char *old,
    const struct rcrypto_cost *cost)
{
	char fresh[RCRYPTO_HASH_MAX];
	enum store_status st;

	if (rcrypto_pwhash(c->password, c->password_len, cost, fresh) != 0)
		return;
	st = store_user_update(api_store(req), id,
	    &(struct store_user_update){.is_active = -1,
	        .is_admin = -1,
	        .can_invite_teachers = -1,
	        .password_hash = fresh,
	        .expect_hash = old});
	sodium_memzero(fresh, sizeof(fresh));
	if (st == STORE_OK)
		http_log(req, RS_LOG_INFO, "password hash upgraded to argon2id");
	else if (st != STORE_CONFLICT)
		http_log(
		    req, RS_LOG_WARNING, "password hash upgrade failed: %s", store_status_str(st));
}

/*
 * Counts one failed login under both bounds, and records `login_failed` in
 * the transaction of the second counter (alone when rate limits are off);
 * false when a counter or the record cannot be written. The row names the
 * account when the login name reached one (`user_id`), and never the name
 * typed: it may be a password typed into the wrong field, and a plain hash
 * of a password is guessable offline.
 */
static bool
count_failure(struct http_req *req, const char *subject, const char *subject_ip, int64_t user_id,
    const char *reason)
{
	bool ok = api_limit(req, API_LIMIT_LOGIN_FAILURES, subject_ip, 1) != API_ERR_UNAVAILABLE;

	api_audit_arm_new(
	    req, STORE_AUDIT_LOGIN_FAILED, user_id, 0, json_pack("{s:s}", "reason", reason));
	/* Both are written even when the first fails: the other bound still counts. */
	ok = api_limit(req, API_LIMIT_LOGIN_ACCOUNT, subject, 1) != API_ERR_UNAVAILABLE && ok;
	/* Not consumed: no counter was written (rate limits off), or one failed. */
	if (api_store(req) != NULL && store_audit_armed(api_store(req))) {
		if (ok)
			ok = store_audit_flush(api_store(req)) == STORE_OK;
		else
			store_audit_disarm(api_store(req));
	}
	return ok;
}

/* A login's outcome for the metrics; returns `err`. */
static enum api_err
login_counted(enum api_err err)
{
	metrics_login(err == API_ERR_NONE                  ? METRICS_LOGIN_OK
	              : err == API_ERR_RATE_LIMITED        ? METRICS_LOGIN_RATE_LIMITED
	              : err == API_ERR_INVALID_CREDENTIALS ? METRICS_LOGIN_FAILED
	              : err == API_ERR_EMAIL_NOT_VERIFIED  ? METRICS_LOGIN_FAILED
	                                                   : METRICS_LOGIN_UNAVAILABLE);
	return err;
}

enum api_err
api_login_run(struct http_req *req, const struct api_login *c, char token[65], char expires[64])
{
	const struct config *cfg = api_config(req);
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct store *db = api_store(req);
	struct store_user_ref by_email = {0, NULL, c->email_key},
	                      by_name = {0, c->username_key, NULL};
	struct store_user user = {0};
	char *hash = NULL, token_hash[65], subject[330];
	char subject_ip[400];
	bool ok = false, rehash = false;
	enum store_status st = STORE_NOT_FOUND;
	enum api_err err = api_limit(req, API_LIMIT_LOGIN_IP, req->remote_bucket, 1);

	token[0] = '\0';
	/* A counter the database cannot write is 503 before the password is looked at. */
	if (err != API_ERR_NONE)
		return login_counted(err);
	if (c->email_key != NULL)
		st = store_user_credentials(db, &by_email, &user, &hash);
	if (st == STORE_NOT_FOUND && c->username_key != NULL)
		st = store_user_credentials(db, &by_name, &user, &hash);
	if (st != STORE_OK && st != STORE_NOT_FOUND) {
		err = store_api_err(st);
		goto out;
	}
	/* Failures count per account, whichever name it was reached by, and per
	 * login name when no account has it: unknown names lock out the same way,
	 * so a lockout says nothing about whether an account exists. Two bounds:
	 * the strict one per (account, client IP), so an attacker at one address
	 * cannot lock out the owner at another, and a higher one per account over
	 * every address with a short window, against guessing spread over many. */
	if (st == STORE_OK)
		snprintf(subject, sizeof(subject), "#%lld", (long long)user.id);
	else
		snprintf(subject, sizeof(subject), "%s", c->name);
	snprintf(subject_ip, sizeof(subject_ip), "%s|%s", subject, req->remote_bucket);
	err = api_limit(req, API_LIMIT_LOGIN_FAILURES, subject_ip, 0);
	if (err == API_ERR_NONE)
		err = api_limit(req, API_LIMIT_LOGIN_ACCOUNT, subject, 0);
	if (err != API_ERR_NONE)
		goto out;
	ok = rcrypto_verify_any(
	    c->password, c->password_len, st == STORE_OK ? hash : dummy(&cost), &cost, &rehash);
	if (!ok || st != STORE_OK || !user.is_active) {
		/* A failure that cannot be counted gets no verdict: 503, as the right
		 * password gets when its token cannot be written. Else a database that
		 * refuses writes would answer "wrong" (400) or "right" (503) forever. */
		err = count_failure(req, subject, subject_ip, st == STORE_OK ? user.id : 0,
		          st != STORE_OK    ? "unknown_account"
		          : !user.is_active ? "inactive"
		                            : "password")
		          ? API_ERR_INVALID_CREDENTIALS
		          : API_ERR_UNAVAILABLE;
		goto out;
	}
	if (cfg->require_verified_email) {
		bool verified = false;

		st = store_user_email_verified(db, user.id, &verified);
		if (st != STORE_OK || !verified) {
			err = st != STORE_OK ? store_api_err(st) : API_ERR_EMAIL_NOT_VERIFIED;
			goto out;
		}
	}
	if (rehash)
		upgrade_hash(req, c, user.id, hash, &cost);
	rcrypto_random_hex(token, 32);
	rcrypto_sha256_hex(token, 64, token_hash);
	api_audit_arm_new(req, STORE_AUDIT_LOGIN, user.id, user.id, NULL);
	st = store_token_create(db, user.id, token_hash, cfg->token_ttl_s, expires);
	if (st != STORE_OK) {
		err = store_api_err(st);
		goto out;
	}
	log_json_new(
	    RS_LOG_INFO, req->id, "login", json_pack("{s:I}", "user_id", (json_int_t)user.id));
out:
	if (err != API_ERR_NONE)
		sodium_memzero(token, 65);
	free(hash);
	store_user_clear(&user);
	return login_counted(err);
}

static void
login_finish(struct http_req *req)
{
	char token[65], expires[64];
	enum api_err err = api_login_run(req, req->ctx, token, expires);

	if (err != API_ERR_NONE)
		api_reply_error(req, err);
	else
		http_reply_json_new(
		    req, 200, json_pack("{s:s, s:s}", "token", token, "expires_at", expires));
	sodium_memzero(token, sizeof(token));
}

/* Keys for the login identifier, as struct api_login says; `username` wins over `email`. */
static void
login_keys(struct api_login *c, const char *username, size_t ulen, const char *email, size_t elen)
{
	char *display = NULL;
	const char *msg;

	if (username != NULL) {
		email = username;
		elen = ulen;
	}
	if (acct_email_normalize(email, elen, &display, &c->email_key, &msg) == ACCT_OK)
		free(display);
	display = NULL;
	if (username != NULL &&
	    acct_username_normalize(username, ulen, &display, &c->username_key, &msg) == ACCT_OK)
		free(display);
	else if (username != NULL && ulen <= 4 * ACCT_USERNAME_MAX)
		/* A username roster refuses for new accounts, imported from Django as it was
		 * (e.g. with a space): only such an account can have this key. */
		c->username_key = acct_username_key_any(username, ulen);
	snprintf(c->name, sizeof(c->name), "%s",
	    c->email_key != NULL      ? c->email_key
	    : c->username_key != NULL ? c->username_key
	                              : "-");
}

static void
login_ctx_free(void *p)
{
	api_login_free(p);
}

enum api_err
api_login_check(const char *username, size_t ulen, const char *email, size_t elen,
    const char *password, size_t plen, struct acct_errors *errs, struct api_login **out)
{
	bool pw_error = false;
	struct api_login *c;

	*out = NULL;
	for (size_t i = 0; i < errs->n; i++)
		pw_error = pw_error || strcmp(errs->items[i].field, "password") == 0;
	if (username == NULL && email == NULL && errs->n == 0)
		acct_errors_add(errs, "username", ACCT_MSG_REQUIRED);
	if (password == NULL && !pw_error)
		acct_errors_add(errs, "password", ACCT_MSG_REQUIRED);
	else if (password != NULL && plen > ACCT_PASSWORD_MAX_BYTES)
		acct_errors_add(errs, "password", ACCT_MSG_PW_TOO_LONG);
	if (errs->n > 0)
		return API_ERR_INVALID;
	c = xcalloc(1, sizeof(*c));
	c->password = xmalloc(plen + 1);
	memcpy(c->password, password, plen);
	c->password[plen] = '\0';
	c->password_len = plen;
	login_keys(c, username, ulen, email, elen);
	*out = c;
	return API_ERR_NONE;
}

void
api_login(struct http_req *req)
{
	const char *username = NULL, *email = NULL, *password = NULL;
	size_t ulen = 0, elen = 0, plen = 0;
	struct acct_errors errs = {.n = 0};
	struct api_login *c = NULL;
	json_t *obj = NULL;

	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	api_string_field(obj, "username", &username, &ulen, &errs);
	api_string_field(obj, "email", &email, &elen, &errs);
	api_string_field(obj, "password", &password, &plen, &errs);
	if (api_login_check(username, ulen, email, elen, password, plen, &errs, &c) !=
	    API_ERR_NONE) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	req->ctx = c;
	req->ctx_free = login_ctx_free;
	c = NULL;
	if (!http_defer(req, HTTP_POOL_HASH, login_finish))
		api_reply_error(req, API_ERR_UNAVAILABLE);
out:
	if (password != NULL)
		sodium_memzero((char *)password, plen);
	api_login_free(c);
	json_decref(obj);
}

/* On a database worker: authenticate, revoke the token presented. */
static void
logout_finish(struct http_req *req)
{
	struct store_user user;
	char hash[65];
	enum api_err err = api_authenticate(req, &user, hash);
	enum store_status st;

	if (err != API_ERR_NONE) {
		store_user_clear(&user);
		api_reply_error(req, err);
		return;
	}
	api_audit_arm_new(req, STORE_AUDIT_LOGOUT, user.id, user.id, NULL);
	st = store_token_revoke(api_store(req), hash);
	if (st != STORE_OK)
		api_reply_error(req, store_api_err(st));
	else
		http_reply_empty(req, 204);
	store_user_clear(&user);
}

void
api_logout(struct http_req *req)
{
	api_defer_authenticated(req, logout_finish);
}

/* GET /users/me/ shape. */
static json_t *
me_json_new(const struct store_user *u, bool verified)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:s, s:s, s:s, s:{s:s, s:s, s:b}}", "id",
	    (json_int_t)u->id, "username", u->username, "email", u->email, "email_verified",
	    verified, "first_name", u->first_name, "last_name", u->last_name, "date_joined",
	    u->date_joined, "profile", "role", u->role, "bio", u->bio, "can_invite_teachers",
	    u->can_invite_teachers);
}

/* The account with its verification state; the account deleted meanwhile is 401. */
static void
reply_user(struct http_req *req, const struct store_user *u)
{
	bool verified = false;
	enum store_status st = store_user_email_verified(api_store(req), u->id, &verified);

	if (st == STORE_OK)
		http_reply_json_new(req, 200, me_json_new(u, verified));
	else
		api_reply_error(
		    req, api_store_err(st, API_ERR_NOT_AUTHENTICATED, API_ERR_INTERNAL));
}

/* The account deleted meanwhile is 401, as a token that no longer authenticates. */
void
api_reply_me(struct http_req *req, int64_t user_id)
{
	struct store_user_ref ref = {user_id, NULL, NULL};
	struct store_user u = {0};
	enum store_status st = store_user_get(api_store(req), &ref, &u);

	if (st == STORE_OK)
		reply_user(req, &u);
	else
		api_reply_error(
		    req, api_store_err(st, API_ERR_NOT_AUTHENTICATED, API_ERR_INTERNAL));
	store_user_clear(&u);
}

/*
 * The profile's rules and write, for PATCH /users/me/ and the profile page:
 * `bio` (at most 500 characters), `first_name`, `last_name` (at most 150
 * each); problems already in `errs` (the caller's) also stop the write.
 */
enum api_err
api_me_update(struct http_req *req, int64_t user_id, const struct api_profile_edit *e,
    struct acct_errors *errs)
{
	json_t *fields;

	if (e->bio != NULL)
		acct_bio_check(e->bio, e->bio_len, errs);
	if (e->first_name != NULL)
		acct_name_check("first_name", e->first_name, e->first_name_len, errs);
	if (e->last_name != NULL)
		acct_name_check("last_name", e->last_name, e->last_name_len, errs);
	if (errs->n > 0)
		return API_ERR_INVALID;
	fields = json_array();
	if (e->bio != NULL)
		json_array_append_new(fields, json_string("bio"));
	if (e->first_name != NULL)
		json_array_append_new(fields, json_string("first_name"));
	if (e->last_name != NULL)
		json_array_append_new(fields, json_string("last_name"));
	if (json_array_size(fields) > 0) /* a change: nothing to record for an empty PATCH */
		api_audit_arm_new(req, STORE_AUDIT_PROFILE_UPDATED, user_id, user_id,
		    json_pack("{s:o}", "fields", fields));
	else
		json_decref(fields);
	return api_store_err(store_user_update(api_store(req), user_id,
	                         &(struct store_user_update){.bio = e->bio,
	                             .first_name = e->first_name,
	                             .last_name = e->last_name,
	                             .is_active = -1,
	                             .is_admin = -1,
	                             .can_invite_teachers = -1}),
	    API_ERR_NOT_AUTHENTICATED, API_ERR_INTERNAL);
}

/*
 * PATCH: the profile's members (api_me_update), then the updated account; or
 * `email` alone, which queues a confirmation to the new address (202,
 * lifecycle.c): the address changes when its link is confirmed.
 */
static void
me_patch(struct http_req *req, const struct store_user *user)
{
	struct acct_errors errs = {.n = 0};
	struct api_profile_edit e = {0};
	json_t *obj = NULL, *v;
	enum api_err err;
	const char *key;

	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		api_reply_error(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	if (json_object_get(obj, "email") != NULL && json_object_size(obj) == 1) {
		api_email_change_request(req, user, obj);
		goto out;
	}
	json_object_foreach(obj, key, v)
	{
		const char **at = strcmp(key, "bio") == 0          ? &e.bio
		                  : strcmp(key, "first_name") == 0 ? &e.first_name
		                  : strcmp(key, "last_name") == 0  ? &e.last_name
		                                                   : NULL;
		size_t *len = at == &e.bio          ? &e.bio_len
		              : at == &e.first_name ? &e.first_name_len
		                                    : &e.last_name_len;

		if (at == NULL)
			acct_errors_add(&errs, key, ACCT_MSG_UNKNOWN_FIELD); /* obj outlives errs */
		else if (!json_is_string(v))
			acct_errors_add(&errs, key, ACCT_MSG_NOT_STRING);
		else {
			*at = json_string_value(v);
			*len = json_string_length(v);
		}
	}
	err = api_me_update(req, user->id, &e, &errs);
	if (err == API_ERR_INVALID)
		api_reply_invalid(req, &errs);
	else if (err != API_ERR_NONE)
		api_reply_error(req, err);
	else
		api_reply_me(req, user->id);
out:
	json_decref(obj);
}

/* On a database worker: authenticate, then GET (the one read) or PATCH. */
static void
me_finish(struct http_req *req)
{
	struct store_user user;
	enum api_err err = api_authenticate(req, &user, NULL);

	if (err != API_ERR_NONE)
		api_reply_error(req, err);
	else if (req->method == HTTP_PATCH)
		me_patch(req, &user);
	else
		reply_user(req, &user);
	store_user_clear(&user);
}

void
api_me(struct http_req *req)
{
	api_defer_authenticated(req, me_finish);
}
