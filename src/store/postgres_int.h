/*
 * The PostgreSQL backend's internals, shared by postgres.c (connection,
 * statements, transactions, migrations, users, tokens, rate limits) and
 * postgres_invites.c (teacher invitations). Private to src/store/.
 */
#ifndef ROSTER_STORE_POSTGRES_INT_H
#define ROSTER_STORE_POSTGRES_INT_H

#include "store/backend.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
	ST_MIGRATION_LOCK,
	ST_MIGRATION_APPLIED,
	ST_MIGRATION_RECORD,
	ST_COUNT_
};

struct pg_store {
	struct store base;
	PGconn *conn;
	char *url;
	bool prepared[ST_COUNT_];
	struct timespec retry_at; /* no reconnect attempt before this */
	bool ever_connected;
	unsigned backoff_ms;
};

static inline struct pg_store *
store_pg_from(struct store *s)
{
	return (struct pg_store *)s;
}

static inline void
store_pg_fmt_id(char out[24], int64_t v)
{
	snprintf(out, 24, "%lld", (long long)v);
}

/* A value as a malloc'd string; NULL for SQL NULL (or out of memory). */
static inline char *
store_pg_dup(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : strdup(PQgetvalue(r, row, col));
}

/* Runs statement `id` with text parameters; `*out` gets the result (PQclear it) on STORE_OK. */
enum store_status store_pg_run(
    struct pg_store *s, enum stmt id, int n, const char *const *params, PGresult **out);

/* Runs a statement whose result is not needed; `*changed` (may be NULL) gets the row count. */
enum store_status store_pg_exec(
    struct pg_store *s, enum stmt id, int n, const char *const *params, int *changed);

/* A one-row, one-integer query; STORE_NOT_FOUND without a row. */
enum store_status store_pg_query_int(
    struct pg_store *s, enum stmt id, int n, const char *const *params, int *out);

/* Runs `body` in a transaction, retrying serialization failures and deadlocks. */
enum store_status store_pg_tx(
    struct pg_store *s, enum store_status (*body)(struct pg_store *, void *), void *arg);

/*
 * Inside a transaction: the conditional update that makes an invitation
 * single-use, then the profile; STORE_CONFLICT with `*why` when it cannot be
 * used (postgres_invites.c).
 */
enum store_status store_pg_accept_locked(struct pg_store *s, const char *token_hash,
    int64_t user_id, const char *email_key, enum store_invite_why *why);

/* The invitation operations of store_postgres_ops (postgres_invites.c). */
enum store_status store_pg_invite_create(struct store *base, int64_t inviter_id, const char *email,
    const char *email_key, const char *token_hash, long long ttl_s, struct store_invitation *out);
enum store_status store_pg_invite_list(
    struct store *base, int64_t inviter_id, struct store_invitations *out);
enum store_status store_pg_invite_resend(struct store *base, int64_t id, int64_t inviter_id,
    const char *token_hash, long long ttl_s, struct store_invitation *out);
enum store_status store_pg_invite_revoke(struct store *base, int64_t id, int64_t inviter_id);
enum store_status store_pg_invite_accept(
    struct store *base, const char *token_hash, int64_t user_id, enum store_invite_why *why);

#endif
