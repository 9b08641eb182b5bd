/*
 * The audit trail, written once for every backend (store.h, "the audit
 * trail"): the armed event of a connection, its insert inside store_tx just
 * before COMMIT (so it commits with the change it records, or not at all),
 * side effects recorded by the operations themselves, the count of committed
 * rows by event (metrics), the list for `roster audit` and the janitor's sweep.
 */
#include "metrics.h"
#include "store/driver.h"
#include "xmalloc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const event_names[STORE_AUDIT_COUNT_] = {
    [STORE_AUDIT_REGISTER] = "register",
    [STORE_AUDIT_LOGIN] = "login",
    [STORE_AUDIT_LOGIN_FAILED] = "login_failed",
    [STORE_AUDIT_LOGOUT] = "logout",
    [STORE_AUDIT_TOKENS_REVOKED] = "tokens_revoked",
    [STORE_AUDIT_PROFILE_UPDATED] = "profile_updated",
    [STORE_AUDIT_INVITATION_CREATED] = "invitation_created",
    [STORE_AUDIT_INVITATION_RESENT] = "invitation_resent",
    [STORE_AUDIT_INVITATION_REVOKED] = "invitation_revoked",
    [STORE_AUDIT_INVITATION_ACCEPTED] = "invitation_accepted",
    [STORE_AUDIT_USER_CREATED] = "user_created",
    [STORE_AUDIT_USER_UPDATED] = "user_updated",
    [STORE_AUDIT_USER_DELETED] = "user_deleted",
    [STORE_AUDIT_PASSWORD_SET] = "password_set",
    [STORE_AUDIT_EMAIL_VERIFIED] = "email_verified",
    [STORE_AUDIT_PASSWORD_RESET_REQUESTED] = "password_reset_requested",
    [STORE_AUDIT_PASSWORD_RESET] = "password_reset",
    [STORE_AUDIT_PASSWORD_CHANGED] = "password_changed",
    [STORE_AUDIT_EMAIL_CHANGE_REQUESTED] = "email_change_requested",
    [STORE_AUDIT_EMAIL_CHANGED] = "email_changed",
    [STORE_AUDIT_IMPORT] = "import",
};

static_assert(STORE_AUDIT_COUNT_ <= METRICS_AUDIT_EVENTS_MAX, "a metric slot per audit event");

const char *
store_audit_event_name(enum store_audit_event e)
{
	return (unsigned)e < STORE_AUDIT_COUNT_ ? event_names[e] : NULL;
}

bool
store_audit_event_parse(const char *name, enum store_audit_event *out)
{
	for (int i = 0; i < STORE_AUDIT_COUNT_; i++)
		if (strcmp(name, event_names[i]) == 0) {
			*out = (enum store_audit_event)i;
			return true;
		}
	return false;
}

/* Names the metric's slots once; every process that opens a store counts. */
static void
metrics_names(void)
{
	static bool done;

	if (!done) {
		metrics_set_audit_events(event_names, STORE_AUDIT_COUNT_);
		done = true; /* a race writes the same pointers twice: harmless */
	}
}

void
store_audit_disarm(struct store *s)
{
	struct store_audit_armed *a = &s->audit;

	free(a->actor);
	free(a->ip);
	free(a->request_id);
	free(a->detail);
	memset(a, 0, sizeof(*a));
}

void
store_audit_arm(struct store *s, const struct store_audit *a)
{
	assert((unsigned)a->event < STORE_AUDIT_COUNT_ && a->actor != NULL);
	store_audit_disarm(s);
	s->audit = (struct store_audit_armed){.armed = true,
	    .event = a->event,
	    .user_id = a->user_id,
	    .actor = xstrdup(a->actor),
	    .ip = xstrdup_or_null(a->ip),
	    .request_id = xstrdup_or_null(a->request_id),
	    .detail = xstrdup_or_null(a->detail)};
}

bool
store_audit_armed(const struct store *s)
{
	return s->audit.armed;
}

/* One row, counted for this attempt. */
static enum store_status
insert(struct store *s, enum store_audit_event event, int64_t user_id, const char *actor,
    const char *ip, const char *request_id, const char *detail)
{
	char now[64];
	struct store_arg args[] = {ARG_T(now), ARG_T(event_names[event]),
	    user_id > 0 ? ARG_I(user_id) : ARG_T(NULL), ARG_T(actor), ARG_T(ip), ARG_T(request_id),
	    ARG_T(detail != NULL ? detail : "{}")};
	enum store_status st;

	store_time_rfc3339(0, now);
	st = store_db_exec(s, STMT_AUDIT_INSERT, args, NARGS(args), NULL);
	if (st == STORE_OK)
		s->audit_rows[event]++;
	return st;
}

void
store_audit_tx_begin(struct store *s)
{
	metrics_names();
	memset(s->audit_rows, 0, sizeof(s->audit_rows));
	s->audit_new_user = 0;
}

enum store_status
store_audit_tx_precommit(struct store *s)
{
	const struct store_audit_armed *a = &s->audit;

	if (!a->armed)
		return STORE_OK;
	return insert(s, a->event, a->user_id > 0 ? a->user_id : s->audit_new_user, a->actor, a->ip,
	    a->request_id, a->detail);
}

void
store_audit_tx_committed(struct store *s)
{
	for (int i = 0; i < STORE_AUDIT_COUNT_; i++)
		if (s->audit_rows[i] > 0)
			metrics_audit_event((size_t)i, s->audit_rows[i]);
	memset(s->audit_rows, 0, sizeof(s->audit_rows));
}

enum store_status
store_audit_side(struct store *s, enum store_audit_event event, int64_t user_id, const char *detail)
{
	const struct store_audit_armed *a = &s->audit;

	if (a->armed && a->event == event)
		return STORE_OK;
	return insert(
	    s, event, user_id, a->armed ? a->actor : "system", a->ip, a->request_id, detail);
}

static enum store_status
nothing(struct store *s, void *arg)
{
	(void)s;
	(void)arg;
	return STORE_OK;
}

enum store_status
store_audit_flush(struct store *s)
{
	if (!s->audit.armed)
		return STORE_OK;
	return store_tx(s, nothing, NULL); /* the row is the armed event's */
}

enum store_status
store_audit_record(struct store *s, const struct store_audit *a)
{
	store_audit_arm(s, a);
	return store_audit_flush(s);
}

void
store_audit_rows_clear(struct store_audit_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		struct store_audit_row *r = &rows->items[i];

		free(r->ts);
		free(r->event);
		free(r->actor);
		free(r->ip);
		free(r->request_id);
		free(r->detail);
	}
	free(rows->items);
	memset(rows, 0, sizeof(*rows));
}

struct list_out {
	struct store_audit_rows *rows;
	size_t cap;
};

static enum store_status
list_row(const struct store_row *r, void *arg)
{
	struct list_out *l = arg;
	struct store_audit_rows *rows = l->rows;
	struct store_audit_row *row;

	rows->items = store_grow(rows->items, rows->n, &l->cap, sizeof(rows->items[0]));
	row = &rows->items[rows->n++];
	*row = (struct store_audit_row){.id = store_col_int(r, 0),
	    .ts = store_col_dup(r, 1),
	    .event = store_col_dup(r, 2),
	    .user_id = store_col_text(r, 3) != NULL ? store_col_int(r, 3) : 0,
	    .actor = store_col_dup(r, 4),
	    .ip = store_col_dup(r, 5),
	    .request_id = store_col_dup(r, 6),
	    .detail = store_col_dup(r, 7)};
	return row->ts == NULL || row->event == NULL || row->actor == NULL || row->detail == NULL
	           ? STORE_ERROR /* NOT NULL columns: a schema that is not ours */
	           : STORE_OK;
}

/* Seconds since the epoch as the stored RFC 3339 form. */
static void
time_of(long long t, char out[64])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.000000Z", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

enum store_status
store_audit_list(struct store *s, const struct store_audit_filter *f, struct store_audit_rows *out)
{
	char since[64];
	struct store_arg args[] = {ARG_I(f->user_id), ARG_T(f->event),
	    ARG_T(f->since > 0 ? since : NULL),
	    ARG_I(f->limit > 0 && f->limit <= STORE_AUDIT_LIST_MAX ? f->limit
	                                                           : STORE_AUDIT_LIST_MAX)};
	struct list_out l = {out, 0};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	if (f->since > 0)
		time_of(f->since, since);
	st = store_db_query(s, STMT_AUDIT_LIST, args, NARGS(args), list_row, &l);
	if (st != STORE_OK)
		store_audit_rows_clear(out);
	return st;
}

enum store_status
store_audit_sweep(struct store *s, long long age_s, int max, int64_t *deleted)
{
	char before[64];
	struct store_arg args[] = {ARG_T(before), ARG_I(max)};

	store_time_rfc3339(-age_s, before);
	return store_tx_exec(s, STMT_AUDIT_SWEEP, args, NARGS(args), deleted);
}
