/*
 * SQLite backend, teacher invitations: create, list, resend, revoke, accept.
 * Single use comes from one conditional UPDATE checked by affected rows,
 * inside a BEGIN IMMEDIATE transaction; the partial unique index on pending
 * email_key decides races between inviters. Statements: sqlite.c's table.
 */
#include "store/sqlite_int.h"

#include <stdio.h>

/* Reads an invitation's classification row; `why` for an unusable one. */
static enum store_status
classify_invite(struct sqlite_store *s, const char *token_hash, const char *email_key,
    const char *now, enum store_invite_why *why)
{
	sqlite3_stmt *st = store_sq_stmt(s, ST_INV_BY_TOKEN);
	const char *status, *expires, *key;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	store_sq_bind(st, 1, token_hash);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return store_sq_map(s, rc);
		*why = STORE_INVITE_UNKNOWN;
		return STORE_CONFLICT;
	}
	status = (const char *)sqlite3_column_text(st, 0);
	expires = (const char *)sqlite3_column_text(st, 1);
	key = (const char *)sqlite3_column_text(st, 2);
	if (strcmp(status, "accepted") == 0)
		*why = STORE_INVITE_USED;
	else if (strcmp(status, "revoked") == 0)
		*why = STORE_INVITE_REVOKED;
	else if (strcmp(status, "expired") == 0 || strcmp(expires, now) <= 0)
		*why = STORE_INVITE_EXPIRED;
	else if (strcmp(key, email_key) != 0)
		*why = STORE_INVITE_EMAIL_MISMATCH;
	else
		*why = STORE_INVITE_UNKNOWN; /* changed under us: cannot happen in a write tx */
	sqlite3_reset(st);
	return STORE_CONFLICT;
}

/* The conditional update that makes an invitation single-use; then the profile. */
enum store_status
store_sq_accept_locked(struct sqlite_store *s, const char *token_hash, int64_t user_id,
    const char *email_key, enum store_invite_why *why)
{
	sqlite3_stmt *st = store_sq_stmt(s, ST_INV_ACCEPT);
	enum store_status res;
	char now[64];

	if (st == NULL)
		return STORE_ERROR;
	store_time_rfc3339(0, now);
	store_sq_bind(st, 1, token_hash);
	sqlite3_bind_int64(st, 2, user_id);
	store_sq_bind(st, 3, now);
	store_sq_bind(st, 4, email_key);
	res = store_sq_done(s, st);
	if (res != STORE_OK)
		return res;
	if (sqlite3_changes(s->db) != 1)
		return classify_invite(s, token_hash, email_key, now, why);
	return store_sq_exec_id(s, ST_PROFILE_TEACHER, user_id, NULL, NULL);
}

/* Reads an INV_COLS row. */
static enum store_status
read_invite(sqlite3_stmt *st, struct store_invitation *inv)
{
	const unsigned char *status = sqlite3_column_text(st, 4);

	inv->id = sqlite3_column_int64(st, 0);
	inv->inviter_id = sqlite3_column_int64(st, 1);
	inv->inviter = store_sq_dup(st, 2);
	inv->email = store_sq_dup(st, 3);
	snprintf(
	    inv->status, sizeof(inv->status), "%s", status != NULL ? (const char *)status : "");
	inv->created_at = store_sq_dup(st, 5);
	inv->expires_at = store_sq_dup(st, 6);
	inv->accepted_at = store_sq_dup(st, 7);
	if (inv->inviter == NULL || inv->email == NULL || inv->created_at == NULL ||
	    inv->expires_at == NULL)
		return STORE_ERROR;
	return STORE_OK;
}

static enum store_status
invite_get_locked(
    struct sqlite_store *s, int64_t id, int64_t inviter_id, struct store_invitation *out)
{
	sqlite3_stmt *st = store_sq_stmt(s, ST_INV_BY_ID);
	enum store_status res;
	char now[64];
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	store_time_rfc3339(0, now);
	sqlite3_bind_int64(st, 1, id);
	store_sq_bind(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		res = read_invite(st, out);
	else
		res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sq_map(s, rc);
	sqlite3_reset(st);
	if (res == STORE_OK && inviter_id != 0 && out->inviter_id != inviter_id)
		res = STORE_NOT_FOUND; /* someone else's: as if it did not exist */
	if (res != STORE_OK)
		store_invitation_clear(out);
	return res;
}

/* Marks a pending invitation for the email that has run out as expired, so the
 * partial unique index only ever holds live ones. */
static enum store_status
expire_for_email(struct sqlite_store *s, const char *email_key, const char *now)
{
	sqlite3_stmt *st = store_sq_stmt(s, ST_INV_EXPIRE_EMAIL);

	if (st == NULL)
		return STORE_ERROR;
	store_sq_bind(st, 1, email_key);
	store_sq_bind(st, 2, now);
	return store_sq_done(s, st);
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
invite_create_body(struct sqlite_store *s, void *arg)
{
	struct invite_args *a = arg;
	char now[64], expires[64];
	enum store_status res;
	sqlite3_stmt *st;
	int taken = 0;

	store_time_rfc3339(0, now);
	store_time_rfc3339(a->ttl_s, expires);
	st = store_sq_stmt(s, ST_EMAIL_HAS_ACCOUNT);
	if (st == NULL)
		return STORE_ERROR;
	store_sq_bind(st, 1, a->email_key);
	if (sqlite3_step(st) == SQLITE_ROW)
		taken = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	if (taken)
		return STORE_CONFLICT_EMAIL;
	res = expire_for_email(s, a->email_key, now);
	st = res == STORE_OK ? store_sq_stmt(s, ST_INV_INSERT) : NULL;
	if (st == NULL)
		return res == STORE_OK ? STORE_ERROR : res;
	sqlite3_bind_int64(st, 1, a->inviter_id);
	store_sq_bind(st, 2, a->email);
	store_sq_bind(st, 3, a->email_key);
	store_sq_bind(st, 4, a->token_hash);
	store_sq_bind(st, 5, now);
	store_sq_bind(st, 6, expires);
	res = store_sq_done(s, st);
	if (res != STORE_OK)
		return res;
	return invite_get_locked(s, sqlite3_last_insert_rowid(s->db), 0, a->out);
}

enum store_status
store_sq_invite_create(struct store *base, int64_t inviter_id, const char *email,
    const char *email_key, const char *token_hash, long long ttl_s, struct store_invitation *out)
{
	struct invite_args a = {0, inviter_id, email, email_key, token_hash, ttl_s, out};

	return store_sq_tx(store_sq_from(base), invite_create_body, &a);
}

enum store_status
store_sq_invite_list(struct store *base, int64_t inviter_id, struct store_invitations *out)
{
	struct sqlite_store *s = store_sq_from(base);
	sqlite3_stmt *st = store_sq_stmt(s, ST_INV_LIST);
	enum store_status res = STORE_OK;
	size_t cap = 0;
	char now[64];
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	store_time_rfc3339(0, now);
	sqlite3_bind_int64(st, 1, inviter_id);
	store_sq_bind(st, 2, now);
	while (res == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!store_sq_grow((void **)&out->items, out->n, &cap, sizeof(out->items[0]))) {
			res = STORE_ERROR;
			break;
		}
		memset(&out->items[out->n], 0, sizeof(out->items[0]));
		res = read_invite(st, &out->items[out->n++]);
	}
	if (res == STORE_OK && rc != SQLITE_DONE)
		res = store_sq_map(s, rc);
	sqlite3_reset(st);
	if (res != STORE_OK)
		store_invitations_clear(out);
	return res;
}

static enum store_status
email_key_of(struct sqlite_store *s, int64_t user_id, char **out)
{
	return store_sq_text_by_id(s, ST_USER_EMAIL_KEY, user_id, out);
}

/* Expires a stale pending twin of the invitation's email, so the resent one can be pending. */
static enum store_status
expire_twin(struct sqlite_store *s, int64_t id, const char *now)
{
	char *key = NULL;
	enum store_status res = store_sq_text_by_id(s, ST_INV_EMAIL_KEY, id, &key);

	if (res == STORE_OK)
		res = expire_for_email(s, key, now);
	free(key);
	return res;
}

static enum store_status
invite_resend_body(struct sqlite_store *s, void *arg)
{
	struct invite_args *a = arg;
	struct store_invitation cur = {0};
	char now[64], expires[64];
	enum store_status res = invite_get_locked(s, a->id, a->inviter_id, &cur);
	sqlite3_stmt *st;

	if (res != STORE_OK)
		return res;
	store_time_rfc3339(0, now);
	store_time_rfc3339(a->ttl_s, expires);
	if (strcmp(cur.status, "pending") != 0 && strcmp(cur.status, "expired") != 0)
		res = STORE_CONFLICT;
	else
		res = expire_twin(s, a->id, now);
	store_invitation_clear(&cur);
	st = res == STORE_OK ? store_sq_stmt(s, ST_INV_RESEND) : NULL;
	if (st == NULL)
		return res == STORE_OK ? STORE_ERROR : res;
	sqlite3_bind_int64(st, 1, a->id);
	store_sq_bind(st, 2, a->token_hash);
	store_sq_bind(st, 3, expires);
	res = store_sq_done(s, st);
	if (res != STORE_OK)
		return res;
	return invite_get_locked(s, a->id, 0, a->out);
}

enum store_status
store_sq_invite_resend(struct store *base, int64_t id, int64_t inviter_id, const char *token_hash,
    long long ttl_s, struct store_invitation *out)
{
	struct invite_args a = {id, inviter_id, NULL, NULL, token_hash, ttl_s, out};

	return store_sq_tx(store_sq_from(base), invite_resend_body, &a);
}

static enum store_status
invite_revoke_body(struct sqlite_store *s, void *arg)
{
	struct invite_args *a = arg;
	struct store_invitation cur = {0};
	enum store_status res = invite_get_locked(s, a->id, a->inviter_id, &cur);
	sqlite3_stmt *st;
	char now[64];

	store_invitation_clear(&cur);
	st = res == STORE_OK ? store_sq_stmt(s, ST_INV_REVOKE) : NULL;
	if (st == NULL)
		return res == STORE_OK ? STORE_ERROR : res;
	store_time_rfc3339(0, now);
	sqlite3_bind_int64(st, 1, a->id);
	store_sq_bind(st, 2, now);
	res = store_sq_done(s, st);
	return res == STORE_OK && sqlite3_changes(s->db) != 1 ? STORE_CONFLICT : res;
}

enum store_status
store_sq_invite_revoke(struct store *base, int64_t id, int64_t inviter_id)
{
	struct invite_args a = {.id = id, .inviter_id = inviter_id};

	return store_sq_tx(store_sq_from(base), invite_revoke_body, &a);
}

struct accept_args {
	const char *token_hash;
	int64_t user_id;
	enum store_invite_why *why;
};

static enum store_status
accept_body(struct sqlite_store *s, void *arg)
{
	struct accept_args *a = arg;
	char *email_key = NULL;
	enum store_status res = email_key_of(s, a->user_id, &email_key);

	if (res == STORE_OK)
		res = store_sq_accept_locked(s, a->token_hash, a->user_id, email_key, a->why);
	free(email_key);
	return res;
}

enum store_status
store_sq_invite_accept(
    struct store *base, const char *token_hash, int64_t user_id, enum store_invite_why *why)
{
	struct accept_args a = {token_hash, user_id, why};

	return store_sq_tx(store_sq_from(base), accept_body, &a);
}
