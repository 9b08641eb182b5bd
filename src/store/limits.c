/*
 * The fixed-window rate-limit counter shared by every instance, written once:
 * a hit is one upsert in its own transaction; a read needs no transaction.
 * The purge of counters long past, the janitor's sweep of counters whose
 * window has ended, and the database's secrets (the key that rate-limit
 * subjects are hashed with).
 */
#include "store/driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct rate_args {
	const char *key;
	long long start;
	int add;
	long long *count;
};

static enum store_status
rate_row(const struct store_row *r, void *arg)
{
	*(long long *)arg = (long long)store_col_int(r, 0);
	return STORE_OK;
}

static enum store_status
hit_body(struct store *s, void *arg)
{
	struct rate_args *a = arg;
	struct store_arg args[] = {ARG_T(a->key), ARG_I(a->start), ARG_I(a->add)};

	return store_db_one(s, STMT_RATE_HIT, args, NARGS(args), rate_row, a->count);
}

enum store_status
store_rate_count(struct store *s, const char *key, long long window_s, int add, long long *count,
    long long *retry_after_s)
{
	long long now = (long long)time(NULL), start = now - now % window_s;
	struct rate_args a = {key, start, add, count};
	struct store_arg args[] = {ARG_T(key), ARG_I(start)};

	*count = 0;
	*retry_after_s = start + window_s - now;
	if (add > 0)
		return store_tx(s, hit_body, &a);
	return store_db_one(s, STMT_RATE_READ, args, NARGS(args), rate_row, count);
}

enum store_status
store_rate_purge(struct store *s, long long age_s, int max, int64_t *deleted)
{
	struct store_arg args[] = {ARG_I((long long)time(NULL) - age_s), ARG_I(max)};

	return store_tx_exec(s, STMT_RATE_PURGE, args, NARGS(args), deleted);
}

enum store_status
store_rate_sweep(struct store *s, const char *prefix, long long window_s, long long grace_s,
    int max, int64_t *deleted)
{
	/* A window that started at or before the first argument is over, by grace_s at least. */
	struct store_arg args[] = {ARG_I((long long)time(NULL) - window_s - grace_s), ARG_T(prefix),
	    ARG_I((long long)strlen(prefix)), ARG_I(max)};

	return store_tx_exec(s, STMT_RATE_SWEEP, args, NARGS(args), deleted);
}

struct secret_args {
	const char *name, *candidate;
	char *value; /* owned */
};

static enum store_status
secret_body(struct store *s, void *arg)
{
	struct secret_args *a = arg;
	char now[64];
	struct store_arg ins[] = {ARG_T(a->name), ARG_T(a->candidate), ARG_T(now)};
	struct store_arg key[] = {ARG_T(a->name)};
	enum store_status st;

	store_time_rfc3339(0, now);
	free(a->value); /* from an attempt that was retried */
	a->value = NULL;
	st = store_db_exec(s, STMT_SECRET_INSERT, ins, NARGS(ins), NULL);
	if (st == STORE_OK)
		st = store_db_one(s, STMT_SECRET_READ, key, NARGS(key), store_row_dup, &a->value);
	return st;
}

enum store_status
store_secret(struct store *s, const char *name, const char *candidate, char out[STORE_SECRET_MAX])
{
	struct secret_args a = {name, candidate, NULL};
	struct store_arg key[] = {ARG_T(name)};
	enum store_status st;

	out[0] = '\0';
	if (candidate != NULL)
		st = store_tx(s, secret_body, &a);
	else
		st = store_db_one(s, STMT_SECRET_READ, key, NARGS(key), store_row_dup, &a.value);
	if (st == STORE_OK && (a.value == NULL || strlen(a.value) >= STORE_SECRET_MAX))
		st = STORE_ERROR; /* NOT NULL, and we write short values: not our schema */
	if (st == STORE_OK)
		snprintf(out, STORE_SECRET_MAX, "%s", a.value);
	if (a.value != NULL)
		memset(a.value, 0, strlen(a.value));
	free(a.value);
	return st;
}
