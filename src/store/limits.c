/*
 * The fixed-window rate-limit counter shared by every instance, written once:
 * a hit is one upsert in its own transaction; a read needs no transaction.
 */
#include "store/driver.h"

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
