/*
 * One-time tokens and the account-lifecycle changes that consume them,
 * written once for every backend. A token is minted by the delivery loop
 * when its mail leaves (store_otk_mint: only its SHA-256 hex is stored) and
 * consumed by one conditional update (unused, unexpired, of its purpose)
 * checked by the row it returns, so it works at most once. A change that
 * promises a mail queues it in its own transaction (store_mail_enqueue_locked).
 */
#include "store/driver.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The status (computed) and expiry of an invitation: columns 4 and 6 of INV_COLS. */
struct inv_state {
	char status[16];
	char expires[64];
};

static enum store_status
read_inv_state(const struct store_row *r, void *arg)
{
	struct inv_state *o = arg;
	const char *status = store_col_text(r, 4), *expires = store_col_text(r, 6);

	if (status == NULL || expires == NULL)
		return STORE_ERROR;
	snprintf(o->status, sizeof(o->status), "%s", status);
	snprintf(o->expires, sizeof(o->expires), "%s", expires);
	return STORE_OK;
}

enum store_status
store_otk_mint(struct store *s, const char *purpose, int64_t user_id, int64_t invitation_id,
    const char *token_hash, long long ttl_s, const char *new_email, const char *new_email_key)
{
	char now[64], expires[64];
	struct store_arg args[] = {
	    user_id > 0 ? ARG_I(user_id) : (struct store_arg){.type = ARG_NULL},
	    invitation_id > 0 ? ARG_I(invitation_id) : (struct store_arg){.type = ARG_NULL},
	    ARG_T(purpose), ARG_T(token_hash), ARG_T(new_email), ARG_T(new_email_key), ARG_T(now),
	    ARG_T(expires)};
	struct inv_state inv = {"", ""};
	enum store_status st;

	store_time_rfc3339(0, now);
	store_time_rfc3339(ttl_s, expires);
	if (invitation_id > 0) {
		struct store_arg by_id[] = {ARG_I(invitation_id), ARG_T(now)};

		st = store_db_one(s, STMT_INV_BY_ID, by_id, NARGS(by_id), read_inv_state, &inv);
		if (st == STORE_OK && strcmp(inv.status, "pending") != 0)
			st = STORE_NOT_FOUND; /* accepted, revoked or expired: no link to send */
		if (st != STORE_OK)
			return st;
		memcpy(expires, inv.expires, sizeof(expires)); /* the link lives as long as it */
	}
	return store_tx_exec(s, STMT_OTK_INSERT, args, NARGS(args), NULL);
}

struct state_out {
	const char *purpose;
	enum store_otk_why why;
	int64_t user_id;
};

static enum store_status
read_state(const struct store_row *r, void *arg)
{
	struct state_out *o = arg;
	const char *purpose = store_col_text(r, 0);

	if (purpose == NULL || strcmp(purpose, o->purpose) != 0)
		o->why = STORE_OTK_UNKNOWN; /* another flow's token is no token of this one */
	else if (store_col_bool(r, 1))
		o->why = STORE_OTK_USED;
	else if (store_col_bool(r, 2))
		o->why = STORE_OTK_EXPIRED;
	else
		o->why = STORE_OTK_OK;
	o->user_id = store_col_int(r, 3);
	return STORE_OK;
}

/* Why `token_hash` is not a usable token of `purpose` ($1 hash, $2 now). */
static enum store_status
otk_state(struct store *s, const char *purpose, const char *token_hash, const char *now,
    enum store_otk_why *why, int64_t *user_id)
{
	struct store_arg args[] = {ARG_T(token_hash), ARG_T(now)};
	struct state_out o = {purpose, STORE_OTK_UNKNOWN, 0};
	enum store_status st = store_db_one(s, STMT_OTK_STATE, args, NARGS(args), read_state, &o);

	*why = o.why;
	if (user_id != NULL)
		*user_id = o.user_id;
	return st == STORE_NOT_FOUND ? STORE_OK : st;
}

enum store_status
store_otk_check(struct store *s, const char *purpose, const char *token_hash,
    enum store_otk_why *why, int64_t *user_id)
{
	char now[64];

	store_time_rfc3339(0, now);
	return otk_state(s, purpose, token_hash, now, why, user_id);
}

/* What a consumed token names. */
struct used {
	int64_t user_id;
	char *new_email, *new_email_key;
};

static enum store_status
read_used(const struct store_row *r, void *arg)
{
	struct used *u = arg;

	u->user_id = store_col_int(r, 0);
	free(u->new_email);
	free(u->new_email_key);
	u->new_email = store_col_dup(r, 1);
	u->new_email_key = store_col_dup(r, 2);
	return STORE_OK;
}

/*
 * Inside a transaction: consumes the token or says why not (STORE_CONFLICT
 * with `*why`). The update is the decision; the read after it only explains.
 */
static enum store_status
otk_use(struct store *s, const char *purpose, const char *token_hash, const char *now,
    struct used *u, enum store_otk_why *why)
{
	struct store_arg args[] = {ARG_T(token_hash), ARG_T(purpose), ARG_T(now)};
	enum store_status st = store_db_one(s, STMT_OTK_USE, args, NARGS(args), read_used, u);

	*why = STORE_OTK_OK;
	if (st == STORE_OK && u->user_id > 0)
		s->audit_new_user = u->user_id; /* the armed event is about the token's account */
	if (st != STORE_NOT_FOUND)
		return st;
	st = otk_state(s, purpose, token_hash, now, why, NULL);
	if (st == STORE_OK && *why == STORE_OTK_OK)
		*why = STORE_OTK_UNKNOWN; /* cannot happen inside one transaction */
	return st == STORE_OK ? STORE_CONFLICT : st;
}

static void
used_clear(struct used *u)
{
	free(u->new_email);
	free(u->new_email_key);
	memset(u, 0, sizeof(*u));
}

/* What a flow does, in the token's transaction, once its token `u` is consumed at `now`. */
typedef enum store_status (*otk_then)(
    struct store *s, const struct used *u, const char *now, void *arg);

struct otk_flow {
	const char *purpose, *token_hash;
	enum store_otk_why *why;
	otk_then then;
	void *arg;
};

static enum store_status
otk_flow_body(struct store *s, void *arg)
{
	struct otk_flow *f = arg;
	struct used u = {0};
	char now[64];
	enum store_status st;

	store_time_rfc3339(0, now);
	st = otk_use(s, f->purpose, f->token_hash, now, &u, f->why);
	if (st == STORE_OK)
		st = f->then(s, &u, now, f->arg);
	used_clear(&u);
	return st;
}

/*
 * One transaction: the token of `purpose` consumed (or STORE_CONFLICT with
 * `*why`), then `then`; either both commit or neither does.
 */
static enum store_status
otk_flow(struct store *s, const char *purpose, const char *token_hash, enum store_otk_why *why,
    otk_then then, void *arg)
{
	struct otk_flow f = {purpose, token_hash, why, then, arg};

	*why = STORE_OTK_OK;
	return store_tx(s, otk_flow_body, &f);
}

/* Uses up every unused token of `purpose` of the account ($1 user, $2 purpose, $3 now). */
static enum store_status
use_others(struct store *s, int64_t user_id, const char *purpose, const char *now)
{
	struct store_arg args[] = {ARG_I(user_id), ARG_T(purpose), ARG_T(now)};

	return store_db_exec(s, STMT_OTK_USE_OTHERS, args, NARGS(args), NULL);
}

static enum store_status
verify_then(struct store *s, const struct used *u, const char *now, void *arg)
{
	struct store_arg id[] = {ARG_I(u->user_id)};

	(void)now, (void)arg;
	return store_db_exec(s, STMT_SET_VERIFIED, id, 1, NULL);
}

enum store_status
store_email_verify(struct store *s, const char *token_hash, enum store_otk_why *why)
{
	return otk_flow(s, STORE_OTK_VERIFY, token_hash, why, verify_then, NULL);
}

enum store_status
store_user_email_verified(struct store *s, int64_t user_id, bool *verified)
{
	struct store_arg id[] = {ARG_I(user_id)};

	*verified = false;
	return store_db_one(s, STMT_USER_VERIFIED, id, 1, store_row_bool, verified);
}

struct reset_args {
	const char *email, *email_key;
};

static enum store_status
reset_request_body(struct store *s, void *arg)
{
	struct reset_args *a = arg;
	struct store_arg key[] = {ARG_T(a->email_key)};
	int64_t id = 0;
	enum store_status st =
	    store_db_one(s, STMT_USER_ACTIVE_BY_EMAIL, key, 1, store_row_int, &id);
	/* Known or not, one read and one insert: the same work and time for every address. */
	struct store_mail_new m = {.kind = "reset_unknown", .to = a->email};

	if (st == STORE_OK) {
		m = (struct store_mail_new){.kind = "reset", .user_id = id};
		s->audit_new_user = id;
	} else if (st != STORE_NOT_FOUND)
		return st;
	return store_mail_enqueue_locked(s, &m, NULL);
}

enum store_status
store_reset_request(struct store *s, const char *email, const char *email_key)
{
	struct reset_args a = {email, email_key};

	return store_tx(s, reset_request_body, &a);
}

static enum store_status
reset_then(struct store *s, const struct used *u, const char *now, void *arg)
{
	const char *password_hash = arg;
	struct store_arg id[] = {ARG_I(u->user_id)};
	struct store_arg pw[] = {ARG_I(u->user_id), ARG_T(password_hash)};
	struct store_mail_new notice = {.kind = "password_changed", .user_id = u->user_id};
	enum store_status st = store_db_exec(s, STMT_SET_PASSWORD, pw, NARGS(pw), NULL);

	if (st == STORE_OK) /* the link proved the mailbox */
		st = store_db_exec(s, STMT_SET_VERIFIED, id, 1, NULL);
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_TOKENS_REVOKE_USER, id, 1, NULL);
	if (st == STORE_OK)
		st = use_others(s, u->user_id, STORE_OTK_RESET, now);
	if (st == STORE_OK)
		st = store_mail_enqueue_locked(s, &notice, NULL);
	return st;
}

enum store_status
store_reset_confirm(
    struct store *s, const char *token_hash, const char *password_hash, enum store_otk_why *why)
{
	return otk_flow(s, STORE_OTK_RESET, token_hash, why, reset_then, (void *)password_hash);
}

struct change_args {
	int64_t user_id;
	const char *expect_hash, *password_hash, *keep_token_hash;
};

static enum store_status
change_body(struct store *s, void *arg)
{
	struct change_args *a = arg;
	struct store_arg rehash[] = {
	    ARG_I(a->user_id), ARG_T(a->password_hash), ARG_T(a->expect_hash)};
	struct store_arg keep[] = {ARG_I(a->user_id), ARG_T(a->keep_token_hash)};
	struct store_mail_new notice = {.kind = "password_changed", .user_id = a->user_id};
	int64_t changed = 0;
	enum store_status st = store_db_exec(s, STMT_REHASH, rehash, NARGS(rehash), &changed);

	if (st == STORE_OK && changed != 1)
		return STORE_CONFLICT; /* changed meanwhile: the current password checked is stale
		                        */
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_TOKENS_REVOKE_OTHERS, keep, NARGS(keep), NULL);
	if (st == STORE_OK)
		st = store_mail_enqueue_locked(s, &notice, NULL);
	return st;
}

enum store_status
store_password_change(struct store *s, int64_t user_id, const char *expect_hash,
    const char *password_hash, const char *keep_token_hash)
{
	struct change_args a = {user_id, expect_hash, password_hash, keep_token_hash};

	return store_tx(s, change_body, &a);
}

struct email_args {
	int64_t user_id;
	const char *new_email, *new_email_key, *new_email_username_key;
	char *payload;
};

static enum store_status
email_request_body(struct store *s, void *arg)
{
	struct email_args *a = arg;
	struct store_arg key[] = {
	    ARG_T(a->new_email_key), ARG_T(a->new_email_username_key), ARG_I(a->user_id)};
	bool taken = false;
	struct store_mail_new confirm = {.kind = "email_change",
	    .to = a->new_email,
	    .user_id = a->user_id,
	    .payload = a->payload};
	struct store_mail_new notice = {
	    .kind = "email_change_notice", .user_id = a->user_id, .payload = a->payload};
	enum store_status st =
	    store_db_one(s, STMT_EMAIL_CHANGE_TAKEN, key, NARGS(key), store_row_bool, &taken);

	if (st == STORE_OK && taken)
		return STORE_CONFLICT_EMAIL;
	if (st == STORE_OK)
		st = store_mail_enqueue_locked(s, &confirm, NULL);
	if (st == STORE_OK)
		st = store_mail_enqueue_locked(s, &notice, NULL);
	return st;
}

/* The payload {"new_email": ..., "new_email_key": ...}, JSON-escaped by hand: store/ has no JSON.
 */
static char *
email_payload(const char *email, const char *key)
{
	size_t cap = 64 + 6 * (strlen(email) + strlen(key)), n = 0;
	char *out = xmalloc(cap);
	const char *parts[] = {"{\"new_email\":\"", email, "\",\"new_email_key\":\"", key, "\"}"};

	for (size_t p = 0; p < 5; p++)
		for (const unsigned char *c = (const unsigned char *)parts[p]; *c != '\0'; c++) {
			if (p % 2 == 1 && (*c == '"' || *c == '\\' || *c < 0x20))
				n += (size_t)snprintf(out + n, cap - n, "\\u%04x", *c);
			else
				out[n++] = (char)*c;
		}
	out[n] = '\0';
	return out;
}

enum store_status
store_email_change_request(struct store *s, int64_t user_id, const char *new_email,
    const char *new_email_key, const char *new_email_username_key)
{
	struct email_args a = {user_id, new_email, new_email_key, new_email_username_key, NULL};
	enum store_status st;

	a.payload = email_payload(new_email, new_email_key);
	st = store_tx(s, email_request_body, &a);
	free(a.payload);
	return st;
}

static enum store_status
email_then(struct store *s, const struct used *u, const char *now, void *arg)
{
	int64_t *user_id = arg;
	struct store_arg set[] = {ARG_I(u->user_id), ARG_T(u->new_email), ARG_T(u->new_email_key)};
	enum store_status st;

	if (u->new_email == NULL || u->new_email_key == NULL)
		return STORE_ERROR;
	*user_id = u->user_id;
	/* The unique index decides a race for the address: STORE_CONFLICT_EMAIL. */
	st = store_db_exec(s, STMT_SET_EMAIL, set, NARGS(set), NULL);
	if (st == STORE_OK)
		st = use_others(s, u->user_id, STORE_OTK_EMAIL_CHANGE, now);
	if (st == STORE_OK) /* a link to the old address verifies it no more */
		st = use_others(s, u->user_id, STORE_OTK_VERIFY, now);
	return st;
}

enum store_status
store_email_change_confirm(
    struct store *s, const char *token_hash, int64_t *user_id, enum store_otk_why *why)
{
	*user_id = 0;
	return otk_flow(s, STORE_OTK_EMAIL_CHANGE, token_hash, why, email_then, user_id);
}
