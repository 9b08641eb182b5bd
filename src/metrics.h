/*
 * Process-wide counters for GET /metrics (Prometheus text format 0.0.4).
 * Lock-free: relaxed atomics, updated from any thread. A leaf module: it
 * includes nothing of roster, so every layer may count.
 */
#ifndef ROSTER_METRICS_H
#define ROSTER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_ROUTES_MAX 32 /* route slots; the last is "other" (no route) */

enum metrics_registration {
	METRICS_REG_CREATED,
	METRICS_REG_USERNAME_TAKEN,
	METRICS_REG_EMAIL_TAKEN,
	METRICS_REG_INVALID,
	METRICS_REG_FORBIDDEN,
	METRICS_REG_INVITATION_REFUSED,
	METRICS_REG_UNAVAILABLE,
	METRICS_REG_RATE_LIMITED,
	METRICS_REG_ERROR,
	METRICS_REG_COUNT_
};

enum metrics_login {
	METRICS_LOGIN_OK,
	METRICS_LOGIN_FAILED,
	METRICS_LOGIN_UNAVAILABLE,
	METRICS_LOGIN_RATE_LIMITED,
	METRICS_LOGIN_COUNT_
};

enum metrics_db {
	METRICS_DB_BUSY,
	METRICS_DB_UNAVAILABLE,
	METRICS_DB_ERROR,
	METRICS_DB_RECONNECT,
	METRICS_DB_CONNECT_ATTEMPT, /* every attempt to connect, failed or not (PostgreSQL) */
	METRICS_DB_COUNT_
};

/* Connections roster closed itself (http/conns.c), by why. */
enum metrics_conn {
	METRICS_CONN_HEAD_DEADLINE, /* no complete request head in time */
	METRICS_CONN_BODY_DEADLINE, /* no complete body in time */
	METRICS_CONN_EVICTED,       /* the oldest incomplete one, to make room for a new client */
	METRICS_CONN_REFUSED,       /* a new one, with every open connection busy */
	METRICS_CONN_PER_ADDRESS,   /* a new one, its address at --max-connections-per-ip */
	METRICS_CONN_COUNT_
};

#define METRICS_JANITOR_TABLES_MAX 8

/* The outcome of one janitor run over every table. */
enum metrics_janitor_run {
	METRICS_JANITOR_OK,
	METRICS_JANITOR_BUSY,        /* still locked after retries */
	METRICS_JANITOR_UNAVAILABLE, /* database unreachable */
	METRICS_JANITOR_ERROR,
	METRICS_JANITOR_COUNT_
};

/* Names the route slots (index → label); `names` must outlive the process. */
void metrics_set_routes(const char *const *names, size_t n);

/* One finished request: route slot (n for "other"), status, duration in µs. */
void metrics_request(size_t route, int status, uint64_t duration_us);

void metrics_registration(enum metrics_registration outcome);
void metrics_login(enum metrics_login outcome);
void metrics_db(enum metrics_db event);
void metrics_hash_rejected(void);
void metrics_conn_closed(enum metrics_conn why);
void metrics_conn_open(int delta);

/* Names the janitor's table slots (index -> label); `names` must outlive the process. */
void metrics_set_janitor_tables(const char *const *names, size_t n);
void metrics_janitor_deleted(size_t table, uint64_t rows);
void metrics_janitor_run(
    enum metrics_janitor_run outcome); /* the open-connections gauge: +1 opened, -1 closed */

/*
 * The whole exposition as a malloc'd string (NULL on OOM). `hash_depth` and
 * `hash_capacity` are the pool's current gauges.
 */
char *metrics_render(size_t hash_depth, size_t hash_capacity);

#endif
