/*
 * The transactional outbox (DESIGN.md I7), written once for every backend.
 * A mail row is written inside the transaction of the change that promises
 * it (store_mail_enqueue_locked) and never holds a token. States:
 *
 *   queued --claim--> sending --settle SENT--> sent
 *      ^                 |  \--settle FAILED--> failed --requeue--> queued
 *      +--settle RETRY---+
 *      +--lease ends (next_attempt_at passes) while sending: due again
 *
 * 1. Only the holder of a row's `claim` settles it (conditional update).
 * 2. A claimed row's next_attempt_at is its lease's end, so a claimer that
 *    died leaves the mail due again, never lost.
 */
#include "store/driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
store_mail_clear(struct store_mail *m)
{
	free(m->to);
	free(m->next_attempt_at);
	free(m->last_error);
	free(m->created_at);
	free(m->sent_at);
	free(m->payload);
	memset(m, 0, sizeof(*m));
}

void
store_mails_clear(struct store_mails *list)
{
	for (size_t i = 0; i < list->n; i++)
		store_mail_clear(&list->items[i]);
	free(list->items);
	memset(list, 0, sizeof(*list));
}

static struct store_arg
id_or_null(int64_t id)
{
	return id > 0 ? ARG_I(id) : (struct store_arg){.type = ARG_NULL};
}

enum store_status
store_mail_enqueue_locked(struct store *s, const struct store_mail_new *m, int64_t *id)
{
	char now[64];
	struct store_arg args[] = {ARG_T(m->kind), ARG_T(m->to), id_or_null(m->user_id),
	    id_or_null(m->invitation_id), ARG_T(m->payload != NULL ? m->payload : "{}"),
	    ARG_T(now)};
	int64_t got = 0;
	enum store_status st;

	store_time_rfc3339(0, now);
	st = store_db_one(s, STMT_MAIL_INSERT, args, NARGS(args), store_row_int, &got);
	if (st == STORE_NOT_FOUND)
		st = STORE_ERROR; /* RETURNING always answers a row */
	if (id != NULL)
		*id = got;
	return st;
}

struct enqueue_args {
	const struct store_mail_new *m;
	int64_t id;
};

static enum store_status
enqueue_body(struct store *s, void *arg)
{
	struct enqueue_args *a = arg;

	return store_mail_enqueue_locked(s, a->m, &a->id);
}

enum store_status
store_mail_enqueue(struct store *s, const struct store_mail_new *m, int64_t *id)
{
	struct enqueue_args a = {m, 0};
	enum store_status st = store_tx(s, enqueue_body, &a);

	if (id != NULL)
		*id = st == STORE_OK ? a.id : 0;
	return st;
}

/* A MAIL_COLS row into a `struct store_mail *`. */
static enum store_status
read_mail(const struct store_row *r, struct store_mail *m)
{
	const char *kind = store_col_text(r, 1), *status = store_col_text(r, 5);

	store_mail_clear(m);
	m->id = store_col_int(r, 0);
	snprintf(m->kind, sizeof(m->kind), "%s", kind != NULL ? kind : "");
	m->to = store_col_dup(r, 2);
	m->user_id = store_col_int(r, 3);
	m->invitation_id = store_col_int(r, 4);
	snprintf(m->status, sizeof(m->status), "%s", status != NULL ? status : "");
	m->attempts = (int)store_col_int(r, 6);
	m->next_attempt_at = store_col_dup(r, 7);
	m->last_error = store_col_dup(r, 8);
	m->created_at = store_col_dup(r, 9);
	m->sent_at = store_col_dup(r, 10);
	m->payload = store_col_dup(r, 11);
	return m->to == NULL || m->created_at == NULL || m->payload == NULL ? STORE_ERROR
	                                                                    : STORE_OK;
}

static enum store_status
one_mail(const struct store_row *r, void *arg)
{
	return read_mail(r, arg);
}

struct mails_out {
	struct store_mails *list;
	size_t cap;
};

static enum store_status
mail_row(const struct store_row *r, void *arg)
{
	struct mails_out *o = arg;
	struct store_mails *l = o->list;

	l->items = store_grow(l->items, l->n, &o->cap, sizeof(l->items[0]));
	memset(&l->items[l->n], 0, sizeof(l->items[0]));
	return read_mail(r, &l->items[l->n++]);
}

struct claim_args {
	int max;
	long long lease_s;
	const char *claim;
	struct store_mails *out;
};

static enum store_status
claim_body(struct store *s, void *arg)
{
	struct claim_args *a = arg;
	char now[64], until[64];
	struct store_arg args[] = {ARG_T(now), ARG_T(until), ARG_T(a->claim), ARG_I(a->max)};
	struct mails_out o = {a->out, 0};

	store_mails_clear(a->out); /* an attempt that was rolled back claimed nothing */
	store_time_rfc3339(0, now);
	store_time_rfc3339(a->lease_s, until);
	return store_db_query(s, STMT_MAIL_CLAIM, args, NARGS(args), mail_row, &o);
}

enum store_status
store_mail_claim(
    struct store *s, int max, long long lease_s, const char *claim, struct store_mails *out)
{
	struct claim_args a = {max, lease_s, claim, out};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_tx(s, claim_body, &a);
	if (st != STORE_OK)
		store_mails_clear(out);
	return st;
}

enum store_status
store_mail_settle(struct store *s, int64_t id, const char *claim, enum store_mail_outcome outcome,
    long long delay_s, const char *error)
{
	char at[64];
	struct store_arg args[] = {ARG_I(id), ARG_T(claim), ARG_T(at), ARG_T(error)};
	enum store_stmt stmt = STMT_MAIL_SENT;
	int64_t changed = 0;
	enum store_status st;

	store_time_rfc3339(outcome == STORE_MAIL_RETRY ? delay_s : 0, at);
	if (outcome == STORE_MAIL_RETRY)
		stmt = STMT_MAIL_RETRY;
	else if (outcome == STORE_MAIL_FAILED) {
		stmt = STMT_MAIL_FAIL;
		args[2] = ARG_T(error); /* $3 is the error here */
	}
	st = store_tx_exec(s, stmt, args, outcome == STORE_MAIL_FAILED ? 3 : 4, &changed);
	return st == STORE_OK && changed != 1 ? STORE_CONFLICT : st;
}

enum store_status
store_mail_list(struct store *s, const char *status, int max, struct store_mails *out)
{
	struct store_arg args[] = {ARG_T(status != NULL ? status : ""), ARG_I(max)};
	struct mails_out o = {out, 0};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_db_query(s, STMT_MAIL_LIST, args, NARGS(args), mail_row, &o);
	if (st != STORE_OK)
		store_mails_clear(out);
	return st;
}

enum store_status
store_mail_get(struct store *s, int64_t id, struct store_mail *out)
{
	struct store_arg args[] = {ARG_I(id)};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_db_one(s, STMT_MAIL_BY_ID, args, NARGS(args), one_mail, out);
	if (st != STORE_OK)
		store_mail_clear(out);
	return st;
}

static enum store_status
requeue_body(struct store *s, void *arg)
{
	int64_t id = *(int64_t *)arg, changed = 0;
	char now[64];
	struct store_arg args[] = {ARG_I(id), ARG_T(now)};
	struct store_mail m = {0};
	enum store_status st;

	store_time_rfc3339(0, now);
	st = store_db_exec(s, STMT_MAIL_REQUEUE, args, NARGS(args), &changed);
	if (st != STORE_OK || changed == 1)
		return st;
	st = store_db_one(s, STMT_MAIL_BY_ID, args, 1, one_mail, &m);
	store_mail_clear(&m);
	return st == STORE_OK ? STORE_CONFLICT : st;
}

enum store_status
store_mail_requeue(struct store *s, int64_t id)
{
	return store_tx(s, requeue_body, &id);
}

static enum store_status
stats_row(const struct store_row *r, void *arg)
{
	struct store_mail_stats *o = arg;
	const char *status = store_col_text(r, 0), *oldest = store_col_text(r, 2);
	int64_t n = store_col_int(r, 1);

	if (status == NULL)
		return STORE_OK;
	if (strcmp(status, "queued") == 0)
		o->queued = n;
	else if (strcmp(status, "sending") == 0)
		o->sending = n;
	else if (strcmp(status, "sent") == 0)
		o->sent = n;
	else if (strcmp(status, "failed") == 0)
		o->failed = n;
	if ((strcmp(status, "queued") == 0 || strcmp(status, "sending") == 0) && oldest != NULL &&
	    (o->oldest_queued[0] == '\0' || strcmp(oldest, o->oldest_queued) < 0))
		snprintf(o->oldest_queued, sizeof(o->oldest_queued), "%s", oldest);
	return STORE_OK;
}

enum store_status
store_mail_stats(struct store *s, struct store_mail_stats *out)
{
	memset(out, 0, sizeof(*out));
	return store_db_query(s, STMT_MAIL_STATS, NULL, 0, stats_row, out);
}

enum store_status
store_mail_sweep(struct store *s, long long retention_s, int max, int64_t *deleted)
{
	char before[64];
	struct store_arg args[] = {ARG_T(before), ARG_I(max)};

	store_time_rfc3339(-retention_s, before);
	return store_tx_exec(s, STMT_MAIL_SWEEP, args, NARGS(args), deleted);
}

enum store_status
store_otk_sweep(struct store *s, int max, int64_t *deleted)
{
	char now[64], day_ago[64];
	struct store_arg args[] = {ARG_T(now), ARG_T(day_ago), ARG_I(max)};

	store_time_rfc3339(0, now);
	store_time_rfc3339(-86400, day_ago);
	return store_tx_exec(s, STMT_OTK_SWEEP, args, NARGS(args), deleted);
}
