/*
 * The janitor: a thread of `roster serve` that, every --janitor-interval,
 * deletes the rows no request can read any more (and audit trail rows past
 * --audit-retention), a batch (--janitor-batch
 * rows, one short transaction) at a time with a pause between batches, so
 * it never holds a write lock for long. Every instance may run it on one
 * database: a batch another one already took deletes fewer rows or none.
 * A table is one entry of sweeps[] (its label and its batch function over
 * store.h). Owns its thread and its own database connection.
 */
#include "api/api.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "store/store.h"
#include "xmalloc.h"

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PAUSE_MS 20          /* between batches: other writers get the lock */
#define SKEW_S   60          /* a window ends this much later for the janitor (clocks differ) */
#define STALE_S  (2 * 86400) /* any counter this old: a prefix no limit of this binary has */

struct api_janitor {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;        /* CLOCK_MONOTONIC */
	bool stopping;            /* under mu */
	const struct config *cfg; /* the limits' configured windows */
	const char *db;
	long long interval_s;
	int batch;
	struct store *s; /* the thread's own; NULL until opened */
};

/* Rate-limit counters: each limit's windows that have ended, then stale leftovers. */
static enum store_status
rate_batch(const struct config *cfg, struct store *s, int max, int64_t *deleted)
{
	enum store_status st = STORE_OK;
	const char *name;
	long long window;
	char prefix[64];
	int64_t n = 0;

	*deleted = 0;
	for (size_t i = 0;
	     st == STORE_OK && *deleted < max && api_limit_window(cfg, i, &name, &window); i++) {
		snprintf(prefix, sizeof(prefix), "%s:", name);
		st = store_rate_sweep(s, prefix, window, SKEW_S, max - (int)*deleted, &n);
		*deleted += n;
	}
	if (st == STORE_OK && *deleted < max) {
		st = store_rate_purge(s, STALE_S, max - (int)*deleted, &n);
		*deleted += n;
	}
	return st;
}

/* Login tokens past their expiry. */
static enum store_status
tokens_batch(const struct config *cfg, struct store *s, int max, int64_t *deleted)
{
	(void)cfg;
	return store_tokens_sweep(s, max, deleted);
}

/* Audit trail rows older than --audit-retention (0: kept for ever). */
static enum store_status
audit_batch(const struct config *cfg, struct store *s, int max, int64_t *deleted)
{
	*deleted = 0;
	if (cfg->audit_retention_s <= 0)
		return STORE_OK;
	return store_audit_sweep(s, cfg->audit_retention_s, max, deleted);
}

/* Sent (and failed) mails past --mail-retention. */
static enum store_status
mail_batch(const struct config *cfg, struct store *s, int max, int64_t *deleted)
{
	return store_mail_sweep(s, cfg->mail_retention_s, max, deleted);
}

/* One-time tokens past their expiry, and used ones a day after their use. */
static enum store_status
otk_batch(const struct config *cfg, struct store *s, int max, int64_t *deleted)
{
	(void)cfg;
	return store_otk_sweep(s, max, deleted);
}

/* The tables the janitor keeps small; a new one is one entry here. */
static const struct sweep {
	const char *table; /* the metric's label */
	enum store_status (*batch)(
	    const struct config *cfg, struct store *s, int max, int64_t *deleted);
} sweeps[] = {
    {"rate_limits", rate_batch},
    {"auth_tokens", tokens_batch},
    {"audit_events", audit_batch},
    {"mail_outbox", mail_batch},
    {"one_time_tokens", otk_batch},
};
#define NSWEEPS (sizeof(sweeps) / sizeof(sweeps[0]))

/* Waits `ms` or until stopped; true when stopping. */
static bool
pause_ms(struct api_janitor *j, long long ms)
{
	struct timespec at;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += (time_t)(ms / 1000);
	at.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->mu);
	while (!j->stopping && pthread_cond_timedwait(&j->cv, &j->mu, &at) == 0)
		;
	stop = j->stopping;
	pthread_mutex_unlock(&j->mu);
	return stop;
}

/* One run over every table, until each is drained or we stop. */
static enum store_status
run(struct api_janitor *j, int64_t *total)
{
	enum store_status st = STORE_OK;
	int64_t n = 0;

	*total = 0;
	for (size_t i = 0; i < NSWEEPS && st == STORE_OK; i++)
		do {
			st = sweeps[i].batch(j->cfg, j->s, j->batch, &n);
			if (st != STORE_OK)
				break;
			metrics_janitor_deleted(i, (uint64_t)n);
			*total += n;
		} while (n >= j->batch && !pause_ms(j, PAUSE_MS));
	return st;
}

static enum metrics_janitor_run
outcome_of(enum store_status st)
{
	switch (st) {
	case STORE_OK:
		return METRICS_JANITOR_OK;
	case STORE_BUSY:
		return METRICS_JANITOR_BUSY;
	case STORE_UNAVAILABLE:
		return METRICS_JANITOR_UNAVAILABLE;
	default:
		return METRICS_JANITOR_ERROR;
	}
}

static void *
janitor_main(void *arg)
{
	struct api_janitor *j = arg;
	bool failing = false; /* logged once per outage */
	unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	/* The first run at a random point of the second half of the first interval:
	 * instances started together do not sweep in step. */
	long long wait_ms = 500 * j->interval_s + rand_r(&seed) % (500 * j->interval_s + 1);

	while (!pause_ms(j, wait_ms)) {
		enum store_status st = STORE_OK;
		int64_t total = 0;

		if (j->s == NULL)
			st = store_open(j->db, STORE_OPEN_LAZY, &j->s);
		if (st == STORE_OK)
			st = run(j, &total);
		metrics_janitor_run(outcome_of(st));
		if (st != STORE_OK && !failing)
			log_msg(RS_LOG_WARNING,
			    "janitor: %s; trying again every %llds (logged once)",
			    store_status_str(st), j->interval_s);
		else if (st == STORE_OK && failing)
			log_msg(RS_LOG_INFO, "janitor: the database answers again");
		failing = st != STORE_OK;
		if (total > 0)
			log_msg(RS_LOG_DEBUG, "janitor: %lld row(s) deleted", (long long)total);
		wait_ms = 1000 * j->interval_s;
	}
	return NULL;
}

struct api_janitor *
api_janitor_start(const struct config *cfg)
{
	static const char *names[NSWEEPS];
	struct api_janitor *j;
	pthread_condattr_t ca;

	static_assert(NSWEEPS <= METRICS_JANITOR_TABLES_MAX, "a metric slot per table");
	for (size_t i = 0; i < NSWEEPS; i++)
		names[i] = sweeps[i].table;
	metrics_set_janitor_tables(names, NSWEEPS);
	if (cfg->janitor_interval_s <= 0)
		return NULL;
	j = xmalloc(sizeof(*j));
	*j = (struct api_janitor){.cfg = cfg,
	    .db = cfg->db,
	    .interval_s = cfg->janitor_interval_s,
	    .batch = (int)cfg->janitor_batch};
	pthread_mutex_init(&j->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&j->thread, NULL, janitor_main, j) != 0) {
		log_msg(RS_LOG_ERROR, "janitor: cannot start its thread; tables are not swept");
		pthread_cond_destroy(&j->cv);
		pthread_mutex_destroy(&j->mu);
		free(j);
		return NULL;
	}
	return j;
}

void
api_janitor_stop(struct api_janitor *j)
{
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->mu);
	j->stopping = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	pthread_join(j->thread, NULL);
	store_close(j->s);
	pthread_cond_destroy(&j->cv);
	pthread_mutex_destroy(&j->mu);
	free(j);
}
