/*
 * http/server.h: starting and stopping the server; for main.c only. Everything
 * http/ needs from above (the route table, error rendering for requests no
 * route matches, per-worker state) comes in through struct http_opts.
 */
#ifndef ROSTER_HTTP_SERVER_H
#define ROSTER_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "http/req.h"

struct http_server;

/* What http/ needs to serve. Borrowed: everything must outlive the server. */
struct http_opts {
	const char *host;
	unsigned port; /* 0: a free one (see http_server_port) */
	/* When set, routes marked `metrics_only` are served here and only here. */
	const char *metrics_host;
	unsigned metrics_port; /* 0: a free one (see http_server_metrics_port) */
	unsigned threads;
	bool reuse_port;
	unsigned idle_timeout_s;
	unsigned head_timeout_s; /* a whole request head within this; 0: no bound */
	unsigned body_timeout_s; /* a whole body within this after its head; 0: no bound */
	unsigned max_connections;
	unsigned max_connections_per_ip; /* 0: no limit */
	unsigned body_limit;             /* bytes */
	const char *trusted_proxies;     /* already validated */
	long long shutdown_timeout_s;

	unsigned workers[HTTP_POOL_COUNT_]; /* threads per pool */
	unsigned queue[HTTP_POOL_COUNT_];   /* jobs waiting per pool before 503 */
	unsigned
	    queue_timeout_ms[HTTP_POOL_COUNT_]; /* a job that waited longer: 503; 0: no bound */

	const struct http_route *routes; /* the route table, in match order */
	size_t nroutes;
	http_error_renderer on_error; /* for requests that match no route; NULL: plain JSON */

	/*
	 * Per-worker state, on every worker of every pool: `thread_open(app)` runs
	 * on the worker thread when it starts (and again before a job while it
	 * returned NULL); `thread_close(ctx)` when it ends. Handlers see the
	 * state as req->thread_ctx. Either may be NULL.
	 */
	void *(*thread_open)(const void *app);
	void (*thread_close)(void *ctx);
	const void *app; /* handed to thread_open and to handlers (http_app) */
};

/* Starts serving; NULL (logged) on failure. */
struct http_server *http_server_start(const struct http_opts *opts);

/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *srv);

/* The metrics listener's port; 0 without one. */
unsigned http_server_metrics_port(const struct http_server *srv);

/*
 * Graceful stop, in this order: stop accepting; drain in-flight requests
 * within the shutdown timeout (replies then carry Connection: close); stop
 * the pools (new work is refused with 503, queued work runs, the workers are
 * joined); stop the daemon; free the pools and the server.
 */
void http_server_stop(struct http_server *srv);

#endif
