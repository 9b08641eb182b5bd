/*
 * The SQLite backend's internals, shared by sqlite.c (connection, statements,
 * transactions, migrations, users, tokens, rate limits) and sqlite_invites.c
 * (teacher invitations). Private to src/store/.
 */
#ifndef ROSTER_STORE_SQLITE_INT_H
#define ROSTER_STORE_SQLITE_INT_H

#include "store/backend.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_HAS_MIGRATIONS,
	ST_APPLIED_VERSION,
	ST_KEYS_TAKEN,
	ST_USER_INSERT,
	ST_PROFILE_INSERT,
	ST_USER_BY_ID,
	ST_USER_BY_USERNAME,
	ST_USER_BY_EMAIL,
	ST_USER_ALL,
	ST_SET_BIO,
	ST_SET_ROLE,
	ST_SET_CAN_INVITE,
	ST_SET_ACTIVE,
	ST_SET_ADMIN,
	ST_SET_PASSWORD,
	ST_REHASH,
	ST_USER_DELETE,
	ST_TOKEN_INSERT,
	ST_TOKENS_PURGE,
	ST_TOKENS_REVOKE_USER,
	ST_SET_LAST_LOGIN,
	ST_TOKEN_USER,
	ST_TOKEN_DELETE,
	ST_INV_EXPIRE_EMAIL,
	ST_EMAIL_HAS_ACCOUNT,
	ST_INV_INSERT,
	ST_INV_BY_ID,
	ST_INV_LIST,
	ST_INV_RESEND,
	ST_INV_REVOKE,
	ST_INV_BY_TOKEN,
	ST_INV_ACCEPT,
	ST_PROFILE_TEACHER,
	ST_INV_EMAIL_KEY,
	ST_USER_EMAIL_KEY,
	ST_RATE_HIT,
	ST_RATE_READ,
	ST_COUNT_
};

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_COUNT_];
};

static inline struct sqlite_store *
store_sq_from(struct store *s)
{
	return (struct sqlite_store *)s;
}

/* Binds text; NULL binds SQL NULL. */
static inline void
store_sq_bind(sqlite3_stmt *st, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

/* A column as a malloc'd string; NULL for SQL NULL (or out of memory). */
static inline char *
store_sq_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *v = sqlite3_column_text(st, i);

	return v != NULL ? strdup((const char *)v) : NULL;
}

/* Translates a driver result; logs what is not the caller's problem. */
enum store_status store_sq_map(struct sqlite_store *s, int rc);

/* The cached statement `id`, reset and unbound; NULL (logged) when it cannot compile. */
sqlite3_stmt *store_sq_stmt(struct sqlite_store *s, enum stmt id);

/* Runs `body` inside BEGIN IMMEDIATE ... COMMIT, retrying while the database stays locked. */
enum store_status store_sq_tx(
    struct sqlite_store *s, enum store_status (*body)(struct sqlite_store *, void *), void *arg);

/* Steps a write statement whose binds are set; STORE_OK when it ran to completion. */
enum store_status store_sq_done(struct sqlite_store *s, sqlite3_stmt *st);

/* A write keyed by one id and one optional text value; `changed` gets sqlite3_changes. */
enum store_status store_sq_exec_id(
    struct sqlite_store *s, enum stmt id, int64_t key, const char *text, int *changed);

/* Makes room for item `n` of an array of `*cap` items, doubling; false on OOM. */
bool store_sq_grow(void **items, size_t n, size_t *cap, size_t size);

/* One text column of the row `id`, by a one-parameter statement; NOT_FOUND when none. */
enum store_status store_sq_text_by_id(
    struct sqlite_store *s, enum stmt id, int64_t key, char **out);

/*
 * Inside a write transaction: the conditional update that makes an
 * invitation single-use, then the profile; STORE_CONFLICT with `*why` when
 * it cannot be used (sqlite_invites.c).
 */
enum store_status store_sq_accept_locked(struct sqlite_store *s, const char *token_hash,
    int64_t user_id, const char *email_key, enum store_invite_why *why);

/* The invitation operations of store_sqlite_ops (sqlite_invites.c). */
enum store_status store_sq_invite_create(struct store *base, int64_t inviter_id, const char *email,
    const char *email_key, const char *token_hash, long long ttl_s, struct store_invitation *out);
enum store_status store_sq_invite_list(
    struct store *base, int64_t inviter_id, struct store_invitations *out);
enum store_status store_sq_invite_resend(struct store *base, int64_t id, int64_t inviter_id,
    const char *token_hash, long long ttl_s, struct store_invitation *out);
enum store_status store_sq_invite_revoke(struct store *base, int64_t id, int64_t inviter_id);
enum store_status store_sq_invite_accept(
    struct store *base, const char *token_hash, int64_t user_id, enum store_invite_why *why);

#endif
