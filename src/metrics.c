/*
 * Metrics: fixed arrays of relaxed atomic counters, rendered on demand.
 * Memory is fixed at build time: labels come from closed sets (routes of the
 * table, a list of statuses, outcome enums), never from client input.
 */
#include "metrics.h"
#include "xmalloc.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const int statuses[] = {
    200, 201, 204, 400, 401, 403, 404, 405, 409, 411, 413, 415, 429, 431, 500, 501, 503};
#define NSTATUS (sizeof(statuses) / sizeof(statuses[0]) + 1) /* + "other" */
static const double buckets[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
#define NBUCKET (sizeof(buckets) / sizeof(buckets[0]))

static const char *const *route_names;
static size_t nroutes;
static atomic_uint_fast64_t requests[METRICS_ROUTES_MAX][NSTATUS];
static atomic_uint_fast64_t hist[METRICS_ROUTES_MAX][NBUCKET + 1]; /* + +Inf */
static atomic_uint_fast64_t hist_sum_us[METRICS_ROUTES_MAX];
static atomic_uint_fast64_t registrations[METRICS_REG_COUNT_];
static atomic_uint_fast64_t logins[METRICS_LOGIN_COUNT_];
static atomic_uint_fast64_t db_events[METRICS_DB_COUNT_];
static atomic_uint_fast64_t hash_rejected;
static atomic_uint_fast64_t conn_closed[METRICS_CONN_COUNT_];
static atomic_int_fast64_t conn_open;
static const char *const *janitor_tables;
static size_t njanitor_tables;
static atomic_uint_fast64_t janitor_deleted[METRICS_JANITOR_TABLES_MAX];
static atomic_uint_fast64_t janitor_runs[METRICS_JANITOR_COUNT_];
static const char *const *audit_events;
static size_t naudit_events;
static atomic_uint_fast64_t audit_rows[METRICS_AUDIT_EVENTS_MAX];
static const char *const *mail_kinds;
static size_t nmail_kinds;
static atomic_uint_fast64_t mail_outcomes[METRICS_MAIL_KINDS_MAX][METRICS_MAIL_COUNT_];
static atomic_int_fast64_t outbox[4]; /* queued, sending, sent, failed */
static atomic_int_fast64_t outbox_oldest;
static atomic_bool outbox_known;
static const char *const mail_outcome_names[METRICS_MAIL_COUNT_] = {
    [METRICS_MAIL_SENT] = "sent",
    [METRICS_MAIL_RETRIED] = "retried",
    [METRICS_MAIL_FAILED] = "failed",
    [METRICS_MAIL_SUPPRESSED] = "suppressed",
};
static time_t started;

static const char *const reg_names[METRICS_REG_COUNT_] = {"created", "username_taken",
    "email_taken", "invalid", "forbidden", "invitation_refused", "unavailable", "rate_limited",
    "error"};
static const char *const conn_names[METRICS_CONN_COUNT_] = {
    "head_deadline", "body_deadline", "evicted", "refused", "per_address"};
static const char *const janitor_run_names[METRICS_JANITOR_COUNT_] = {
    "ok", "busy", "unavailable", "error"};
static const char *const login_names[METRICS_LOGIN_COUNT_] = {
    "ok", "failed", "unavailable", "rate_limited"};

void
metrics_set_routes(const char *const *names, size_t n)
{
	route_names = names;
	nroutes = n < METRICS_ROUTES_MAX - 1 ? n : METRICS_ROUTES_MAX - 1;
	started = time(NULL);
}

static void
inc(atomic_uint_fast64_t *c, uint64_t by)
{
	atomic_fetch_add_explicit(c, by, memory_order_relaxed);
}

static uint64_t
get(atomic_uint_fast64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

void
metrics_request(size_t route, int status, uint64_t duration_us)
{
	size_t s = NSTATUS - 1, b = NBUCKET;

	if (route > nroutes)
		route = nroutes;
	for (size_t i = 0; i < NSTATUS - 1; i++)
		if (statuses[i] == status)
			s = i;
	for (size_t i = 0; i < NBUCKET; i++)
		if ((double)duration_us <= buckets[i] * 1e6) {
			b = i;
			break;
		}
	inc(&requests[route][s], 1);
	inc(&hist[route][b], 1);
	inc(&hist_sum_us[route], duration_us);
}

void
metrics_registration(enum metrics_registration outcome)
{
	inc(&registrations[outcome], 1);
}

void
metrics_login(enum metrics_login outcome)
{
	inc(&logins[outcome], 1);
}

void
metrics_db(enum metrics_db event)
{
	inc(&db_events[event], 1);
}

void
metrics_hash_rejected(void)
{
	inc(&hash_rejected, 1);
}

void
metrics_conn_closed(enum metrics_conn why)
{
	inc(&conn_closed[why], 1);
}

void
metrics_conn_open(int delta)
{
	atomic_fetch_add_explicit(&conn_open, delta, memory_order_relaxed);
}

void
metrics_set_janitor_tables(const char *const *names, size_t n)
{
	janitor_tables = names;
	njanitor_tables = n < METRICS_JANITOR_TABLES_MAX ? n : METRICS_JANITOR_TABLES_MAX;
}

void
metrics_janitor_deleted(size_t table, uint64_t rows)
{
	if (table < njanitor_tables)
		inc(&janitor_deleted[table], rows);
}

void
metrics_set_mail_kinds(const char *const *names, size_t n)
{
	mail_kinds = names;
	nmail_kinds = n < METRICS_MAIL_KINDS_MAX ? n : METRICS_MAIL_KINDS_MAX;
}

void
metrics_mail(size_t kind, enum metrics_mail outcome)
{
	if (kind < nmail_kinds && (unsigned)outcome < METRICS_MAIL_COUNT_)
		inc(&mail_outcomes[kind][outcome], 1);
}

void
metrics_mail_outbox(
    int64_t queued, int64_t sending, int64_t sent, int64_t failed, int64_t oldest_queued_s)
{
	const int64_t v[4] = {queued, sending, sent, failed};

	for (int i = 0; i < 4; i++)
		atomic_store_explicit(&outbox[i], v[i], memory_order_relaxed);
	atomic_store_explicit(&outbox_oldest, oldest_queued_s, memory_order_relaxed);
	atomic_store_explicit(&outbox_known, true, memory_order_relaxed);
}

void
metrics_janitor_run(enum metrics_janitor_run outcome)
{
	inc(&janitor_runs[outcome], 1);
}

void
metrics_set_audit_events(const char *const *names, size_t n)
{
	audit_events = names;
	naudit_events = n < METRICS_AUDIT_EVENTS_MAX ? n : METRICS_AUDIT_EVENTS_MAX;
}

void
metrics_audit_event(size_t event, uint64_t rows)
{
	if (event < naudit_events)
		inc(&audit_rows[event], rows);
}

/* A growing output buffer (xrealloc: out of memory aborts). */
struct out {
	char *buf;
	size_t len, cap;
};

static void __attribute__((format(printf, 2, 3))) put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return; /* an encoding error in our own format: nothing to add */
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = o->cap * 2 + (size_t)n + 1;
		o->buf = xrealloc(o->buf, o->cap);
	}
}

static const char *
route_label(size_t r)
{
	return r < nroutes ? route_names[r] : "other";
}

static void
render_requests(struct out *o)
{
	put(o, "# HELP roster_http_requests_total HTTP requests finished, by route and status"
	       " (status other: none, or one not listed).\n"
	       "# TYPE roster_http_requests_total counter\n");
	for (size_t r = 0; r <= nroutes; r++)
		for (size_t s = 0; s < NSTATUS; s++) {
			uint64_t v = get(&requests[r][s]);
			char code[8];

			if (v == 0)
				continue;
			snprintf(code, sizeof(code), "%d", s < NSTATUS - 1 ? statuses[s] : 0);
			put(o, "roster_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
			    route_label(r), s < NSTATUS - 1 ? code : "other",
			    (unsigned long long)v);
		}
	put(o, "# HELP roster_http_request_duration_seconds Time from request start to reply.\n"
	       "# TYPE roster_http_request_duration_seconds histogram\n");
	for (size_t r = 0; r <= nroutes; r++) {
		uint64_t cum = 0;

		for (size_t b = 0; b <= NBUCKET; b++) {
			cum += get(&hist[r][b]);
			if (b < NBUCKET)
				put(o,
				    "roster_http_request_duration_seconds_bucket{route=\"%s\",le="
				    "\"%g\"} %llu\n",
				    route_label(r), buckets[b], (unsigned long long)cum);
			else
				put(o,
				    "roster_http_request_duration_seconds_bucket{route=\"%s\",le="
				    "\"+Inf\"} %llu\n",
				    route_label(r), (unsigned long long)cum);
		}
		put(o, "roster_http_request_duration_seconds_sum{route=\"%s\"} %.6f\n",
		    route_label(r), (double)get(&hist_sum_us[r]) / 1e6);
		put(o, "roster_http_request_duration_seconds_count{route=\"%s\"} %llu\n",
		    route_label(r), (unsigned long long)cum);
	}
}

static void
render_outcomes(struct out *o, const char *name, const char *help, const char *const *labels,
    atomic_uint_fast64_t *values, size_t n)
{
	put(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (size_t i = 0; i < n; i++)
		put(o, "%s{outcome=\"%s\"} %llu\n", name, labels[i],
		    (unsigned long long)get(&values[i]));
}

static void
render_mail(struct out *o)
{
	static const char *const status[4] = {"queued", "sending", "sent", "failed"};
	int64_t oldest = atomic_load_explicit(&outbox_oldest, memory_order_relaxed);
	long long age = oldest > 0 ? (long long)time(NULL) - oldest : 0;

	put(o, "# HELP roster_mail_deliveries_total Mail delivery attempts settled by this "
	       "process, by kind and outcome.\n# TYPE roster_mail_deliveries_total counter\n");
	for (size_t k = 0; k < nmail_kinds; k++)
		for (size_t i = 0; i < METRICS_MAIL_COUNT_; i++)
			put(o, "roster_mail_deliveries_total{kind=\"%s\",outcome=\"%s\"} %llu\n",
			    mail_kinds[k], mail_outcome_names[i],
			    (unsigned long long)get(&mail_outcomes[k][i]));
	if (!atomic_load_explicit(&outbox_known, memory_order_relaxed))
		return; /* no delivery loop has read the outbox yet */
	put(o, "# HELP roster_mail_outbox Mails in the outbox by status (shared by every "
	       "instance).\n# TYPE roster_mail_outbox gauge\n");
	for (int i = 0; i < 4; i++)
		put(o, "roster_mail_outbox{status=\"%s\"} %lld\n", status[i],
		    (long long)atomic_load_explicit(&outbox[i], memory_order_relaxed));
	put(o,
	    "# HELP roster_mail_oldest_queued_age_seconds Age of the oldest mail not yet sent "
	    "(0: none).\n# TYPE roster_mail_oldest_queued_age_seconds gauge\n"
	    "roster_mail_oldest_queued_age_seconds %lld\n",
	    age > 0 ? age : 0);
}

char *
metrics_render(size_t hash_depth, size_t hash_capacity)
{
	struct out o = {xmalloc(8192), 0, 8192};

	render_requests(&o);
	render_outcomes(&o, "roster_registrations_total", "Registration attempts by outcome.",
	    reg_names, registrations, METRICS_REG_COUNT_);
	render_outcomes(&o, "roster_logins_total", "Login attempts by outcome.", login_names,
	    logins, METRICS_LOGIN_COUNT_);
	put(&o,
	    "# HELP roster_hash_queue_depth Hashing jobs queued or running.\n"
	    "# TYPE roster_hash_queue_depth gauge\nroster_hash_queue_depth %zu\n"
	    "# HELP roster_hash_queue_capacity Hashing jobs the pool accepts at once.\n"
	    "# TYPE roster_hash_queue_capacity gauge\nroster_hash_queue_capacity %zu\n"
	    "# HELP roster_hash_queue_rejections_total Requests answered 503 for a full queue.\n"
	    "# TYPE roster_hash_queue_rejections_total counter\n"
	    "roster_hash_queue_rejections_total %llu\n",
	    hash_depth, hash_capacity, (unsigned long long)get(&hash_rejected));
	put(&o,
	    "# HELP roster_db_errors_total Database failures by kind.\n"
	    "# TYPE roster_db_errors_total counter\n"
	    "roster_db_errors_total{kind=\"busy\"} %llu\n"
	    "roster_db_errors_total{kind=\"unavailable\"} %llu\n"
	    "roster_db_errors_total{kind=\"error\"} %llu\n"
	    "# HELP roster_db_reconnects_total Database connections re-established.\n"
	    "# TYPE roster_db_reconnects_total counter\nroster_db_reconnects_total %llu\n"
	    "# HELP roster_db_connect_attempts_total Database connection attempts, failed or not.\n"
	    "# TYPE roster_db_connect_attempts_total counter\n"
	    "roster_db_connect_attempts_total %llu\n",
	    (unsigned long long)get(&db_events[METRICS_DB_BUSY]),
	    (unsigned long long)get(&db_events[METRICS_DB_UNAVAILABLE]),
	    (unsigned long long)get(&db_events[METRICS_DB_ERROR]),
	    (unsigned long long)get(&db_events[METRICS_DB_RECONNECT]),
	    (unsigned long long)get(&db_events[METRICS_DB_CONNECT_ATTEMPT]));
	put(&o,
	    "# HELP roster_http_connections Client connections open.\n"
	    "# TYPE roster_http_connections gauge\nroster_http_connections %lld\n"
	    "# HELP roster_http_connections_closed_total Connections roster closed itself, by "
	    "reason.\n# TYPE roster_http_connections_closed_total counter\n",
	    (long long)atomic_load_explicit(&conn_open, memory_order_relaxed));
	for (size_t i = 0; i < METRICS_CONN_COUNT_; i++)
		put(&o, "roster_http_connections_closed_total{reason=\"%s\"} %llu\n", conn_names[i],
		    (unsigned long long)get(&conn_closed[i]));
	put(&o, "# HELP roster_janitor_rows_deleted_total Rows the janitor deleted, by table.\n"
	        "# TYPE roster_janitor_rows_deleted_total counter\n");
	for (size_t i = 0; i < njanitor_tables; i++)
		put(&o, "roster_janitor_rows_deleted_total{table=\"%s\"} %llu\n", janitor_tables[i],
		    (unsigned long long)get(&janitor_deleted[i]));
	render_outcomes(&o, "roster_janitor_runs_total",
	    "Janitor runs over every table, by outcome.", janitor_run_names, janitor_runs,
	    METRICS_JANITOR_COUNT_);
	put(&o, "# HELP roster_audit_events_total Audit trail rows committed, by event.\n"
	        "# TYPE roster_audit_events_total counter\n");
	for (size_t i = 0; i < naudit_events; i++)
		put(&o, "roster_audit_events_total{event=\"%s\"} %llu\n", audit_events[i],
		    (unsigned long long)get(&audit_rows[i]));
	render_mail(&o);
	put(&o,
	    "# HELP roster_build_info Build information.\n# TYPE roster_build_info gauge\n"
	    "roster_build_info{version=\"%s\"} 1\n"
	    "# HELP roster_process_start_time_seconds Start time since the Unix epoch.\n"
	    "# TYPE roster_process_start_time_seconds gauge\n"
	    "roster_process_start_time_seconds %lld\n",
	    RS_VERSION, (long long)started);
	return o.buf;
}
