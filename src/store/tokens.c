/*
 * Session tokens, written once for every backend: a login stores the token's
 * SHA-256 hex and sets last_login in one transaction (purging the account's
 * expired tokens on the way); a request finds its account in one query; the
 * janitor sweeps expired tokens of every account, a batch at a time.
 */
#include "store/driver.h"

#include <string.h>

struct token_args {
	int64_t user_id;
	const char *token_hash;
	char now[64];
	const char *expires;
};

static enum store_status
token_body(struct store *s, void *arg)
{
	struct token_args *a = arg;
	struct store_arg purge[] = {ARG_I(a->user_id), ARG_T(a->now)};
	struct store_arg insert[] = {
	    ARG_I(a->user_id), ARG_T(a->token_hash), ARG_T(a->now), ARG_T(a->expires)};
	enum store_status st = store_db_exec(s, STMT_TOKENS_PURGE, purge, NARGS(purge), NULL);

	if (st == STORE_OK)
		st = store_db_exec(s, STMT_TOKEN_INSERT, insert, NARGS(insert), NULL);
	if (st == STORE_OK) /* same arguments: $1 id, $2 now */
		st = store_db_exec(s, STMT_SET_LAST_LOGIN, purge, NARGS(purge), NULL);
	return st;
}

enum store_status
store_token_create(
    struct store *s, int64_t user_id, const char *token_hash, long long ttl_s, char expires_at[64])
{
	struct token_args a = {.user_id = user_id, .token_hash = token_hash, .expires = expires_at};

	store_time_rfc3339(0, a.now);
	store_time_rfc3339(ttl_s, expires_at);
	return store_tx(s, token_body, &a);
}

enum store_status
store_token_user(struct store *s, const char *token_hash, struct store_user *out)
{
	char now[64];
	struct store_arg args[] = {ARG_T(token_hash), ARG_T(now)};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	store_time_rfc3339(0, now);
	st = store_db_one(s, STMT_TOKEN_USER, args, NARGS(args), store_row_user, out);
	if (st != STORE_OK)
		store_user_clear(out);
	return st;
}

enum store_status
store_token_revoke(struct store *s, const char *token_hash)
{
	struct store_arg args[] = {ARG_T(token_hash)};

	return store_tx_exec(s, STMT_TOKEN_DELETE, args, NARGS(args), NULL);
}

enum store_status
store_tokens_revoke_user(struct store *s, int64_t user_id)
{
	struct store_arg args[] = {ARG_I(user_id)};

	return store_tx_exec(s, STMT_TOKENS_REVOKE_USER, args, NARGS(args), NULL);
}

enum store_status
store_tokens_sweep(struct store *s, int max, int64_t *deleted)
{
	char now[64];
	struct store_arg args[] = {ARG_T(now), ARG_I(max)};

	store_time_rfc3339(0, now);
	return store_tx_exec(s, STMT_TOKENS_SWEEP, args, NARGS(args), deleted);
}
