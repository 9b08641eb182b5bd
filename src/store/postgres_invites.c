/*
 * PostgreSQL backend, teacher invitations: create, list, resend, revoke,
 * accept. Single use comes from one conditional UPDATE checked by affected
 * rows (under READ COMMITTED a concurrent accept waits for the row lock, then
 * re-checks the WHERE clause and finds it accepted); the partial unique index
 * on pending email_key decides races between inviters. Statements: postgres.c.
 */
#include "store/postgres_int.h"

/* Why an invitation could not be used, read inside the failing transaction. */
static enum store_status
classify_invite(struct pg_store *s, const char *token_hash, const char *email_key, const char *now,
    enum store_invite_why *why)
{
	const char *params[2] = {token_hash, now};
	PGresult *r = NULL;
	enum store_status st = store_pg_run(s, ST_INV_BY_TOKEN, 2, params, &r);
	const char *status;

	if (st != STORE_OK)
		return st;
	if (PQntuples(r) != 1) {
		*why = STORE_INVITE_UNKNOWN;
	} else {
		status = PQgetvalue(r, 0, 0);
		if (strcmp(status, "accepted") == 0)
			*why = STORE_INVITE_USED;
		else if (strcmp(status, "revoked") == 0)
			*why = STORE_INVITE_REVOKED;
		else if (strcmp(status, "expired") == 0 || atoi(PQgetvalue(r, 0, 1)) != 0)
			*why = STORE_INVITE_EXPIRED;
		else if (strcmp(PQgetvalue(r, 0, 2), email_key) != 0)
			*why = STORE_INVITE_EMAIL_MISMATCH;
		else
			*why = STORE_INVITE_UNKNOWN;
	}
	PQclear(r);
	return STORE_CONFLICT;
}

/* The conditional update that makes an invitation single-use; then the profile. */
enum store_status
store_pg_accept_locked(struct pg_store *s, const char *token_hash, int64_t user_id,
    const char *email_key, enum store_invite_why *why)
{
	char now[64], id[24];
	const char *params[4] = {token_hash, id, now, email_key};
	enum store_status st;
	int changed = 0;

	store_time_rfc3339(0, now);
	store_pg_fmt_id(id, user_id);
	st = store_pg_exec(s, ST_INV_ACCEPT, 4, params, &changed);
	if (st != STORE_OK)
		return st;
	if (changed != 1)
		return classify_invite(s, token_hash, email_key, now, why);
	return store_pg_exec(s, ST_PROFILE_TEACHER, 1, params + 1, NULL);
}

/* Reads an INV_COLS row. */
static enum store_status
read_invite(const PGresult *r, int row, struct store_invitation *inv)
{
	inv->id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	inv->inviter_id = strtoll(PQgetvalue(r, row, 1), NULL, 10);
	inv->inviter = store_pg_dup(r, row, 2);
	inv->email = store_pg_dup(r, row, 3);
	snprintf(inv->status, sizeof(inv->status), "%s", PQgetvalue(r, row, 4));
	inv->created_at = store_pg_dup(r, row, 5);
	inv->expires_at = store_pg_dup(r, row, 6);
	inv->accepted_at = store_pg_dup(r, row, 7);
	if (inv->inviter == NULL || inv->email == NULL || inv->created_at == NULL ||
	    inv->expires_at == NULL)
		return STORE_ERROR;
	return STORE_OK;
}

static enum store_status
invite_get(struct pg_store *s, int64_t id, int64_t inviter_id, struct store_invitation *out)
{
	char key[24], now[64];
	const char *params[2] = {key, now};
	PGresult *r = NULL;
	enum store_status st;

	store_pg_fmt_id(key, id);
	store_time_rfc3339(0, now);
	st = store_pg_run(s, ST_INV_BY_ID, 2, params, &r);
	if (st == STORE_OK)
		st = PQntuples(r) == 1 ? read_invite(r, 0, out) : STORE_NOT_FOUND;
	PQclear(r);
	if (st == STORE_OK && inviter_id != 0 && out->inviter_id != inviter_id)
		st = STORE_NOT_FOUND; /* someone else's: as if it did not exist */
	if (st != STORE_OK)
		store_invitation_clear(out);
	return st;
}

/* Marks a pending invitation for the email that has run out as expired, so the
 * partial unique index only ever holds live ones. */
static enum store_status
expire_for_email(struct pg_store *s, const char *email_key, const char *now)
{
	const char *params[2] = {email_key, now};

	return store_pg_exec(s, ST_INV_EXPIRE_EMAIL, 2, params, NULL);
}

struct invite_args {
	int64_t id;
	int64_t inviter_id;
	const char *email;
	const char *email_key;
	const char *token_hash;
	long long ttl_s;
	struct store_invitation *out;
};

static enum store_status
invite_create_body(struct pg_store *s, void *arg)
{
	struct invite_args *a = arg;
	char now[64], expires[64], inviter[24];
	const char *ins[6] = {inviter, a->email, a->email_key, a->token_hash, now, expires};
	PGresult *r = NULL;
	int taken = 0;
	enum store_status st;

	store_time_rfc3339(0, now);
	store_time_rfc3339(a->ttl_s, expires);
	store_pg_fmt_id(inviter, a->inviter_id);
	st = store_pg_query_int(s, ST_EMAIL_HAS_ACCOUNT, 1, &a->email_key, &taken);
	if (st == STORE_OK && taken)
		return STORE_CONFLICT_EMAIL;
	if (st == STORE_OK)
		st = expire_for_email(s, a->email_key, now);
	if (st == STORE_OK)
		st = store_pg_run(s, ST_INV_INSERT, 6, ins, &r);
	if (st == STORE_OK)
		a->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return st == STORE_OK ? invite_get(s, a->id, 0, a->out) : st;
}

enum store_status
store_pg_invite_create(struct store *base, int64_t inviter_id, const char *email,
    const char *email_key, const char *token_hash, long long ttl_s, struct store_invitation *out)
{
	struct invite_args a = {0, inviter_id, email, email_key, token_hash, ttl_s, out};

	return store_pg_tx(store_pg_from(base), invite_create_body, &a);
}

enum store_status
store_pg_invite_list(struct store *base, int64_t inviter_id, struct store_invitations *out)
{
	char key[24], now[64];
	const char *params[2] = {key, now};
	PGresult *r = NULL;
	enum store_status st;
	int rows;

	store_pg_fmt_id(key, inviter_id);
	store_time_rfc3339(0, now);
	st = store_pg_run(store_pg_from(base), ST_INV_LIST, 2, params, &r);
	rows = st == STORE_OK ? PQntuples(r) : 0;
	if (rows > 0) {
		out->items = calloc((size_t)rows, sizeof(*out->items));
		if (out->items == NULL)
			st = STORE_ERROR;
	}
	for (int i = 0; st == STORE_OK && i < rows; i++) {
		out->n++;
		st = read_invite(r, i, &out->items[i]);
	}
	PQclear(r);
	if (st != STORE_OK)
		store_invitations_clear(out);
	return st;
}

static enum store_status
invite_resend_body(struct pg_store *s, void *arg)
{
	struct invite_args *a = arg;
	struct store_invitation cur = {0};
	char id[24], now[64], expires[64], *key = NULL;
	const char *params[3] = {id, a->token_hash, expires};
	PGresult *r = NULL;
	enum store_status st = invite_get(s, a->id, a->inviter_id, &cur);

	if (st != STORE_OK)
		return st;
	store_pg_fmt_id(id, a->id);
	store_time_rfc3339(0, now);
	store_time_rfc3339(a->ttl_s, expires);
	if (strcmp(cur.status, "pending") != 0 && strcmp(cur.status, "expired") != 0)
		st = STORE_CONFLICT;
	store_invitation_clear(&cur);
	if (st == STORE_OK)
		st = store_pg_run(s, ST_INV_EMAIL_KEY, 1, params, &r);
	if (st == STORE_OK && PQntuples(r) == 1)
		key = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	if (st == STORE_OK)
		st = key != NULL ? expire_for_email(s, key, now) : STORE_ERROR;
	free(key);
	if (st == STORE_OK)
		st = store_pg_exec(s, ST_INV_RESEND, 3, params, NULL);
	return st == STORE_OK ? invite_get(s, a->id, 0, a->out) : st;
}

enum store_status
store_pg_invite_resend(struct store *base, int64_t id, int64_t inviter_id, const char *token_hash,
    long long ttl_s, struct store_invitation *out)
{
	struct invite_args a = {id, inviter_id, NULL, NULL, token_hash, ttl_s, out};

	return store_pg_tx(store_pg_from(base), invite_resend_body, &a);
}

static enum store_status
invite_revoke_body(struct pg_store *s, void *arg)
{
	struct invite_args *a = arg;
	struct store_invitation cur = {0};
	char id[24], now[64];
	const char *params[2] = {id, now};
	int changed = 0;
	enum store_status st = invite_get(s, a->id, a->inviter_id, &cur);

	store_invitation_clear(&cur);
	if (st != STORE_OK)
		return st;
	store_pg_fmt_id(id, a->id);
	store_time_rfc3339(0, now);
	st = store_pg_exec(s, ST_INV_REVOKE, 2, params, &changed);
	return st == STORE_OK && changed != 1 ? STORE_CONFLICT : st;
}

enum store_status
store_pg_invite_revoke(struct store *base, int64_t id, int64_t inviter_id)
{
	struct invite_args a = {.id = id, .inviter_id = inviter_id};

	return store_pg_tx(store_pg_from(base), invite_revoke_body, &a);
}

struct accept_args {
	const char *token_hash;
	int64_t user_id;
	enum store_invite_why *why;
};

static enum store_status
accept_body(struct pg_store *s, void *arg)
{
	struct accept_args *a = arg;
	char id[24];
	const char *params[1] = {id};
	PGresult *r = NULL;
	enum store_status st;
	char *key = NULL;

	store_pg_fmt_id(id, a->user_id);
	st = store_pg_run(s, ST_USER_EMAIL_KEY, 1, params, &r);
	if (st == STORE_OK && PQntuples(r) == 1)
		key = strdup(PQgetvalue(r, 0, 0));
	else if (st == STORE_OK)
		st = STORE_NOT_FOUND;
	PQclear(r);
	if (st == STORE_OK)
		st = key != NULL ? store_pg_accept_locked(s, a->token_hash, a->user_id, key, a->why)
		                 : STORE_ERROR;
	free(key);
	return st;
}

enum store_status
store_pg_invite_accept(
    struct store *base, const char *token_hash, int64_t user_id, enum store_invite_why *why)
{
	struct accept_args a = {token_hash, user_id, why};

	return store_pg_tx(store_pg_from(base), accept_body, &a);
}
