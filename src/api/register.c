/*
 * POST /users/register/. First half on the I/O thread: parse, validate and
 * normalise every field, apply the role policy. Second half on a hashing
 * worker (it has a database connection): hash the password and create user +
 * profile in one transaction.
 * Duplicates are decided by the store's unique indexes, so a race still yields
 * 400, never 500, and never a second account.
 */
#include "api/api.h"
#include "accounts/acct.h"
#include "config.h"
#include "http/req.h"
#include "metrics.h"
#include "crypto/rcrypto.h"
#include "store/store.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* What the worker needs: the validated input and, with an invitation, its hash. */
struct api_signup {
	struct acct_signup signup;
	char invitation_hash[65]; /* "" without an invitation */
};

void
api_signup_free(struct api_signup *c)
{
	if (c != NULL)
		acct_signup_clear(&c->signup);
	free(c);
}

static void
signup_free(void *p)
{
	api_signup_free(p);
}

/* Registration's internal errors keep their own message. */
static enum api_err
store_err(enum store_status st)
{
	return api_store_err(st, API_ERR_INTERNAL_REGISTER, API_ERR_INTERNAL_REGISTER);
}

/* Counts a registration's refusal by its error; returns `err`. */
static enum api_err
counted(enum api_err err)
{
	enum metrics_registration m;

	switch (err) {
	case API_ERR_USERNAME_TAKEN:
		m = METRICS_REG_USERNAME_TAKEN;
		break;
	case API_ERR_EMAIL_TAKEN:
		m = METRICS_REG_EMAIL_TAKEN;
		break;
	case API_ERR_MALFORMED_JSON:
	case API_ERR_INVALID:
		m = METRICS_REG_INVALID;
		break;
	case API_ERR_ROLE_NOT_ALLOWED:
		m = METRICS_REG_FORBIDDEN;
		break;
	case API_ERR_UNAVAILABLE:
		m = METRICS_REG_UNAVAILABLE;
		break;
	case API_ERR_RATE_LIMITED:
		m = METRICS_REG_RATE_LIMITED;
		break;
	case API_ERR_INVITATION_INVALID:
	case API_ERR_INVITATION_EXPIRED:
	case API_ERR_INVITATION_USED:
	case API_ERR_INVITATION_REVOKED:
	case API_ERR_INVITATION_EMAIL_MISMATCH:
		m = METRICS_REG_INVITATION_REFUSED;
		break;
	case API_ERR_NONE:
		m = METRICS_REG_CREATED;
		break;
	default:
		m = METRICS_REG_ERROR;
		break;
	}
	metrics_registration(m);
	return err;
}

/* Replies with `err` and counts the registration's outcome. */
static void
refuse(struct http_req *req, enum api_err err)
{
	api_reply_error(req, counted(err));
}

enum api_err
api_signup_run(struct http_req *req, const struct api_signup *ctx, struct store_user *user)
{
	const struct acct_signup *s = &ctx->signup;
	const struct config *cfg = api_config(req);
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct store *db = api_store(req);
	enum store_invite_why why = STORE_INVITE_OK;
	char hash[RCRYPTO_HASH_MAX];
	enum store_status st;
	enum api_err limited = api_limit(req, API_LIMIT_REGISTER_IP, req->remote_bucket, 1);

	memset(user, 0, sizeof(*user));
	if (limited == API_ERR_NONE)
		limited = api_limit(req, API_LIMIT_ACCOUNTS_IP, req->remote_bucket, 0);
	if (limited != API_ERR_NONE)
		return counted(limited);
	/* Advisory: spares the hash for a key already taken. The insert decides. */
	st = store_user_keys_taken(db, s->username_key, s->username_skeleton,
	    s->username_skeleton_cased, s->email_key, s->email_username_key);
	if (st != STORE_OK)
		return counted(store_err(st));
	if (rcrypto_pwhash(s->password, s->password_len, &cost, hash) != 0) {
		http_log(req, RS_LOG_ERROR, "password hashing failed (out of memory?)");
		return counted(API_ERR_INTERNAL_REGISTER);
	}
	api_audit_arm_new(req, STORE_AUDIT_REGISTER, 0, 0,
	    json_pack(
	        "{s:s, s:b}", "role", s->role, "invitation", ctx->invitation_hash[0] != '\0'));
	st = store_user_create(db,
	    &(struct store_new_user){.username = s->username,
	        .username_key = s->username_key,
	        .username_skeleton = s->username_skeleton,
	        .username_skeleton_cased = s->username_skeleton_cased,
	        .email = s->email,
	        .email_key = s->email_key,
	        .email_username_key = s->email_username_key,
	        .password_hash = hash,
	        .role = s->role,
	        .bio = s->bio,
	        .invitation_hash = ctx->invitation_hash[0] != '\0' ? ctx->invitation_hash : NULL,
	        /* I7: the verification mail commits with the account (sent by api/mailer.c). */
	        .mail = &(struct store_mail_new){.kind = "verify"}},
	    user, &why);
	sodium_memzero(hash, sizeof(hash));
	if (st == STORE_CONFLICT)
		return counted(api_invite_why_err(why));
	if (st != STORE_OK)
		return counted(store_err(st));
	counted(API_ERR_NONE);
	/* The account is committed: it stands even if the count fails (logged). */
	(void)api_limit(req, API_LIMIT_ACCOUNTS_IP, req->remote_bucket, 1);
	log_json_new(RS_LOG_INFO, req->id, "user registered",
	    json_pack("{s:I, s:s}", "user_id", (json_int_t)user->id, "role", user->role));
	return API_ERR_NONE;
}

/* Second half, on a hashing worker with its own database connection. */
static void
register_finish(struct http_req *req)
{
	struct store_user user = {0};
	enum api_err err = api_signup_run(req, req->ctx, &user);

	if (err != API_ERR_NONE)
		api_reply_error(req, err);
	else
		http_reply_json_new(req, 201,
		    json_pack("{s:s, s:{s:I, s:s, s:s, s:s}}", "message",
		        "User registered successfully.", "user", "id", (json_int_t)user.id,
		        "username", user.username, "email", user.email, "role", user.role));
	store_user_clear(&user);
}

/*
 * The role policy: with an invitation the account is a teacher (who cannot
 * invite), whatever `role` says; without one the role must be open to
 * self-registration.
 */
static enum api_err
apply_role_policy(
    const struct config *cfg, struct api_signup *c, const char *invitation, size_t len)
{
	if (invitation != NULL) {
		if (!api_invitation_token_hash(invitation, len, c->invitation_hash))
			return API_ERR_INVITATION_INVALID;
		free(c->signup.role);
		c->signup.role = xstrdup("teacher");
		return API_ERR_NONE;
	}
	if (!acct_role_in_list(cfg->self_register_roles, c->signup.role))
		return API_ERR_ROLE_NOT_ALLOWED;
	return API_ERR_NONE;
}

enum api_err
api_signup_check(const struct config *cfg, const struct acct_signup_input *in,
    const char *invitation, size_t invitation_len, struct acct_errors *errs,
    struct api_signup **out)
{
	struct api_signup *c = xcalloc(1, sizeof(*c));
	enum api_err err;

	*out = NULL;
	switch (acct_signup_validate(in, &c->signup, errs)) {
	case ACCT_OK:
		err = apply_role_policy(cfg, c, invitation, invitation_len);
		break;
	case ACCT_INVALID:
		err = API_ERR_INVALID;
		break;
	default:
		err = API_ERR_INTERNAL_REGISTER;
		break;
	}
	if (err != API_ERR_NONE) {
		api_signup_free(c);
		return counted(err);
	}
	*out = c;
	return API_ERR_NONE;
}

void
api_register(struct http_req *req)
{
	struct acct_signup_input in = {0};
	struct acct_errors errs = {.n = 0};
	struct api_signup *c = NULL;
	const char *invitation = NULL;
	size_t invitation_len = 0;
	json_t *obj = NULL;
	enum api_err err;

	if (api_body_object_new(req->body, req->body_len, &obj) != API_ERR_NONE) {
		refuse(req, API_ERR_MALFORMED_JSON);
		goto out;
	}
	api_string_field(obj, "username", &in.username, &in.username_len, &errs);
	api_string_field(obj, "email", &in.email, &in.email_len, &errs);
	api_string_field(obj, "password", &in.password, &in.password_len, &errs);
	api_string_field(obj, "role", &in.role, NULL, &errs);
	api_string_field(obj, "bio", &in.bio, &in.bio_len, &errs);
	api_string_field(obj, "invitation", &invitation, &invitation_len, &errs);
	err = api_signup_check(api_config(req), &in, invitation, invitation_len, &errs, &c);
	if (err == API_ERR_INVALID) {
		api_reply_invalid(req, &errs);
		goto out;
	}
	if (err != API_ERR_NONE) {
		api_reply_error(req, err);
		goto out;
	}
	req->ctx = c;
	req->ctx_free = signup_free;
	c = NULL;
	if (!http_defer(req, HTTP_POOL_HASH, register_finish))
		refuse(req, API_ERR_UNAVAILABLE);
out:
	if (in.password != NULL)
		sodium_memzero((char *)in.password, in.password_len);
	api_signup_free(c);
	json_decref(obj);
}
