/*
 * The MHD daemon and the life of a request. MHD calls on_request several
 * times per request: a first call (allocate, check the declared length),
 * body calls (accumulate up to the limit), a final call (dispatch) and, for
 * deferred work, a call after the worker resumed the connection.
 *
 *   READING --dispatch: handler sets a reply--------------------> READY
 *      |                                                          ^   |
 *      +--http_defer: suspended, queued--> WAITING --run_deferred-+   |
 *                                          (on a worker: reply set;   |
 *                                           or expire_deferred: 503;  |
 *                                           then finish_deferred:     |
 *                                           slot released, resumed)   |
 *   READY --http_queue_reply (on_request, on an I/O thread)--> SENT <-+
 *   any state --on_completed (MHD's completion callback)--> freed by req_free
 *
 * Invariants:
 * 1. A request is only ever touched by one thread at a time: its I/O thread,
 *    or, from http_defer's hand-off to the resume, the one worker (or reaper)
 *    finishing its job. MHD does not call on_request for a suspended
 *    connection, and on_request does not look at the request again once
 *    dispatch has handed it off (the worker may already have set the reply).
 * 2. A reply is queued to MHD only on the final call or later, never while
 *    the body is arriving, so MHD keeps the connection alive. The one
 *    exception is an error found on the first call (check_declared: two
 *    lengths, or a declared body past 1 MiB): MHD then closes the connection
 *    without reading the body. A smaller oversized body is read and dropped.
 * 3. Every path out of READING and WAITING sets a reply: a handler or worker
 *    job that sets none is answered HTTP_ERR_INTERNAL.
 * 4. A pool slot is reserved before the connection is suspended (http_defer),
 *    so a full queue is answered at once and nothing is left suspended
 *    without a slot; the job releases it before resuming the connection
 *    (finish_deferred). A job that waits in the queue past the pool's bound
 *    is answered 503 by the pool's reaper (expire_deferred) without running,
 *    even while every worker is blocked.
 * 5. No database work runs on an I/O thread: handlers that need one defer to
 *    a pool, whose workers hold the state thread_open made.
 * 6. `inflight` counts requests between req_new and req_free; the stopper
 *    waits on it, and frees the pools only after the daemon (and so every I/O
 *    thread that could call pool_reserve or pool_depth) has stopped.
 */
#include "http/internal.h"
#include "http/conns.h"
#include "http/proxy.h"
#include "crypto/rcrypto.h"
#include "metrics.h"
#include "pool.h"
#include "xmalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A worker's own state, for its whole life: what thread_open made. */
struct worker {
	const struct http_server *srv;
	void *ctx;
};

static const char *const pool_names[HTTP_POOL_COUNT_] = {"database", "hashing"};

static unsigned
method_bit(const char *m)
{
	static const struct {
		const char *name;
		unsigned bit;
	} tab[] = {
	    {"GET", HTTP_GET},
	    {"HEAD", HTTP_HEAD},
	    {"POST", HTTP_POST},
	    {"PATCH", HTTP_PATCH},
	    {"DELETE", HTTP_DELETE},
	    {"PUT", HTTP_PUT},
	    {"OPTIONS", HTTP_OPTIONS},
	};

	for (size_t i = 0; i < sizeof(tab) / sizeof(tab[0]); i++)
		if (strcmp(m, tab[i].name) == 0)
			return tab[i].bit;
	return HTTP_OTHER;
}

/* A client's X-Request-ID is kept when it is short and plain. */
static bool
request_id_sane(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (n >= 64 ||
		    strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-",
		        s[n]) == NULL)
			return false;
	return n > 0;
}

const char *
http_header(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *
http_cookie(const struct http_req *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, name);
}

const void *
http_app(const struct http_req *req)
{
	return req->srv->opts.app;
}

size_t
http_pool_depth(const struct http_req *req, enum http_pool pool)
{
	return pool_depth(req->srv->pools[pool]);
}

size_t
http_pool_capacity(const struct http_req *req, enum http_pool pool)
{
	return (size_t)req->srv->opts.queue[pool] + req->srv->opts.workers[pool];
}

void
http_log(const struct http_req *req, enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, req->id, fmt, ap);
	va_end(ap);
}

static void
remote_addr(struct http_req *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	http_client_addr(&req->srv->proxies, sa, http_header(req, "X-Forwarded-For"), req->remote,
	    req->remote_bucket);
}

/*
 * A request id: a random prefix per I/O thread and a counter, so ids are
 * unique without a system call per request. Ids are labels, not secrets.
 */
static void
new_request_id(char out[65])
{
	static _Thread_local char prefix[9];
	static _Thread_local uint32_t next;

	if (prefix[0] == '\0')
		rcrypto_random_hex(prefix, 4);
	snprintf(out, 65, "%s%08x", prefix, next++);
}

/* First call: → READING. */
/*
 * MHD's own percent-decoding, refusing a decoded NUL: `/metrics%00` would
 * otherwise reach the handlers as `/metrics`, past a proxy rule that blocks the
 * exact path. Such a URL becomes "" (no request-target is empty), which req_new
 * answers 400. Query arguments go through here too; they are not used.
 */
static size_t
unescape(void *cls, struct MHD_Connection *conn, char *uri)
{
	size_t decoded = MHD_http_unescape(uri);

	(void)cls;
	(void)conn;
	if (decoded != strlen(uri)) { /* a NUL was decoded */
		uri[0] = '\0';
		return 0;
	}
	return decoded;
}

static struct http_req *
req_new(struct http_server *srv, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct http_req *req = xcalloc(1, sizeof(*req));
	const char *rid;

	req->srv = srv;
	req->conn = conn;
	req->start_us = pool_now_us();
	req->path = url;
	req->method_name = method;
	req->method = method_bit(method);
	req->route = http_route_find(srv->opts.routes, srv->opts.nroutes, url, &req->path_id);
	/* With a metrics listener, its routes are served there and nothing else is. */
	if (req->route != NULL && srv->opts.metrics_host != NULL &&
	    req->route->metrics_only != conns_is_metrics(conn))
		req->route = NULL;
	if (url[0] == '\0')
		req->early_err = HTTP_ERR_BAD_REQUEST; /* a %00 in the path (unescape) */
	rid = http_header(req, "X-Request-ID");
	if (rid != NULL && request_id_sane(rid))
		snprintf(req->id, sizeof(req->id), "%s", rid);
	else
		new_request_id(req->id);
	remote_addr(req);
	atomic_fetch_add(&srv->inflight, 1);
	return req;
}

static void
req_free(struct http_req *req)
{
	struct http_server *srv = req->srv;

	if (req->ctx_free != NULL)
		req->ctx_free(req->ctx);
	if (req->body != NULL)
		sodium_memzero(req->body, req->body_cap);
	free(req->body);
	free(req->reply);
	for (size_t i = 0; i < req->nextra; i++)
		free(req->extra[i].value);
	free(req);
	/* The stopper checks `inflight` under idle_mu, so this wake-up is never lost. */
	if (atomic_fetch_sub(&srv->inflight, 1) == 1 && atomic_load(&srv->draining)) {
		pthread_mutex_lock(&srv->idle_mu);
		pthread_cond_broadcast(&srv->idle);
		pthread_mutex_unlock(&srv->idle_mu);
	}
}

/* Final call: route, method, media type, then the handler (READING → READY or WAITING). */
static void
dispatch(struct http_req *req)
{
	if (req->early_err != HTTP_ERR_NONE) {
		http_raise(req, req->early_err);
		return;
	}
	if (req->route == NULL) {
		http_raise(req, HTTP_ERR_NOT_FOUND);
		return;
	}
	if ((req->route->methods & req->method) == 0) {
		req->allow = req->route->allow;
		http_raise(req, HTTP_ERR_METHOD_NOT_ALLOWED);
		return;
	}
	if (req->method & req->route->body) {
		if (!req->has_length && !req->chunked) {
			http_raise(req, HTTP_ERR_LENGTH_REQUIRED);
			return;
		}
		if (!http_body_is_json(http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
			http_raise(req, HTTP_ERR_UNSUPPORTED_MEDIA_TYPE);
			return;
		}
	}
	req->route->handler(req);
	if (!req->handed_off && req->state == HTTP_READING) {
		http_log(req, RS_LOG_ERROR, "handler for %s set no reply", req->route->path);
		http_raise(req, HTTP_ERR_INTERNAL);
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;

	if (req == NULL) {
		req = req_new(srv, conn, url, method);
		*con_cls = req;
		conns_head_done(conn);
		if (!http_head_check(req, version) ||
		    !http_body_check_declared(req, srv->opts.body_limit)) {
			http_raise(req, req->early_err);
			return http_queue_reply(
			    req); /* early: MHD closes, the body is never read */
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		bool keep = http_body_append(req, srv->opts.body_limit, upload_data, *upload_size);

		*upload_size = 0;
		if (!keep)
			http_log(req, RS_LOG_INFO, "body far over the limit: disconnecting");
		return keep ? MHD_YES : MHD_NO;
	}
	switch (req->state) {
	case HTTP_READING:
		conns_body_done(conn);
		dispatch(req);
		if (req->handed_off)
			return MHD_YES; /* a worker owns it now, and may be done already (invariant
			                   1) */
		break;
	case HTTP_WAITING: /* a spurious call while suspended cannot happen; be safe */
		return MHD_YES;
	case HTTP_READY: /* resumed after a worker set the reply */
	case HTTP_SENT:
		break;
	}
	if (req->state == HTTP_READY)
		return http_queue_reply(req);
	return MHD_YES;
}

static void
on_completed(
    void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;
	size_t route;
	uint64_t took;

	conns_reply_done(conn);
	if (req == NULL)
		return;
	took = pool_now_us() - req->start_us;
	route = req->route != NULL ? (size_t)(req->route - srv->opts.routes) : srv->opts.nroutes;
	metrics_request(route, req->status, took);
	log_access(req->id, req->method_name, req->path, req->status, (unsigned long long)took,
	    req->remote, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	*con_cls = NULL;
	req_free(req);
}

static void *
worker_init(void *arg)
{
	struct worker *w = xcalloc(1, sizeof(*w));

	w->srv = arg;
	if (w->srv->opts.thread_open != NULL)
		w->ctx = w->srv->opts.thread_open(w->srv->opts.app);
	return w;
}

static void
worker_fini(void *ctx)
{
	struct worker *w = ctx;

	if (w->ctx != NULL && w->srv->opts.thread_close != NULL)
		w->srv->opts.thread_close(w->ctx);
	free(w);
}

/* The job's work, unless it waited too long or the worker has no state. */
static void
run_job(struct http_req *req, struct worker *w)
{
	const struct http_opts *o = &w->srv->opts;
	uint64_t waited_us = pool_now_us() - req->queued_us;

	if (o->queue_timeout_ms[req->pool] > 0 &&
	    waited_us > (uint64_t)o->queue_timeout_ms[req->pool] * 1000u) {
		http_log(req, RS_LOG_WARNING, "waited %llu ms in the %s queue: not run",
		    (unsigned long long)(waited_us / 1000u), pool_names[req->pool]);
		http_raise(req, HTTP_ERR_UNAVAILABLE);
		return;
	}
	if (w->ctx == NULL && o->thread_open != NULL)
		w->ctx = o->thread_open(o->app); /* it failed at start: try again */
	if (w->ctx == NULL && o->thread_open != NULL) {
		http_raise(req, HTTP_ERR_UNAVAILABLE); /* no database: the handler never runs */
		return;
	}
	req->thread_ctx = w->ctx;
	req->deferred(req);
	req->thread_ctx = NULL;
}

/* WAITING → READY: the slot is released and the connection goes back to its I/O thread. */
static void
finish_deferred(struct http_req *req)
{
	if (req->state != HTTP_READY) {
		http_log(req, RS_LOG_ERROR, "deferred handler set no reply");
		http_raise(req, HTTP_ERR_INTERNAL);
	}
	/* The slot is free before the client can send its next request. */
	pool_release(req->srv->pools[req->pool]);
	MHD_resume_connection(req->conn);
}

/* On a worker. */
static void
run_deferred(void *arg, void *ctx)
{
	struct http_req *req = arg;

	run_job(req, ctx);
	finish_deferred(req);
}

/* On the pool's reaper: the job waited too long, with every worker busy. */
static void
expire_deferred(void *arg, void *ctx)
{
	struct http_req *req = arg;

	(void)ctx;
	http_log(req, RS_LOG_WARNING, "waited more than %u ms in the %s queue: not run",
	    req->srv->opts.queue_timeout_ms[req->pool], pool_names[req->pool]);
	http_raise(req, HTTP_ERR_UNAVAILABLE);
	finish_deferred(req);
}

bool
http_defer(struct http_req *req, enum http_pool pool, http_handler fn)
{
	struct pool *p = req->srv->pools[pool];

	if (!pool_reserve(p)) {
		if (pool == HTTP_POOL_HASH)
			metrics_hash_rejected();
		return false;
	}
	req->deferred = fn;
	req->handed_off = true;
	req->pool = pool;
	req->queued_us = pool_now_us();
	req->state = HTTP_WAITING;
	MHD_suspend_connection(req->conn);
	pool_submit_reserved(p, run_deferred, req);
	return true;
}

static bool
resolve_bind(const char *host, unsigned portnum, struct sockaddr_storage *ss)
{
	struct addrinfo hints = {
	    .ai_flags = AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	bool ok;

	snprintf(port, sizeof(port), "%u", portnum);
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
		log_msg(RS_LOG_ERROR, "cannot resolve bind address %s", host);
		return false;
	}
	ok = res->ai_addrlen <= sizeof(*ss);
	if (ok)
		memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return ok;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	log_json_new(RS_LOG_DEBUG, NULL, buf, json_pack("{s:s}", "source", "libmicrohttpd"));
}

static const char *route_names[METRICS_ROUTES_MAX];

/* The condition variable on which the stopper waits, timed on CLOCK_MONOTONIC like now_us. */
static void
idle_init(struct http_server *srv)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&srv->idle, &attr);
	pthread_condattr_destroy(&attr);
	pthread_mutex_init(&srv->idle_mu, NULL);
}

/* Connections shut down by conns.c but not yet closed by MHD: room above max_connections. */
static unsigned
connection_margin(unsigned max)
{
	return max / 4 + 16;
}

static struct MHD_Daemon *
start_daemon(struct http_server *srv)
{
	const struct http_opts *o = &srv->opts;
	/* No listening socket: conns.c accepts and hands connections over (see conns.h). */
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	                 MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;

	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER,
	    mhd_log, NULL, MHD_OPTION_THREAD_POOL_SIZE, o->threads, MHD_OPTION_CONNECTION_TIMEOUT,
	    o->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
	    o->max_connections + connection_margin(o->max_connections), MHD_OPTION_NOTIFY_COMPLETED,
	    on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, conns_notify, srv->conns,
	    MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
}

static unsigned
bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                      : ((struct sockaddr_in *)&ss)->sin_port);
}

struct http_server *
http_server_start(const struct http_opts *opts)
{
	struct http_server *srv = xcalloc(1, sizeof(*srv));
	size_t nroutes =
	    opts->nroutes < METRICS_ROUTES_MAX - 1 ? opts->nroutes : METRICS_ROUTES_MAX - 1;
	struct sockaddr_storage ss, mss;
	int fd, mfd = -1;

	srv->opts = *opts;
	idle_init(srv);
	if (!resolve_bind(opts->host, opts->port, &ss) ||
	    (opts->metrics_host != NULL &&
	        !resolve_bind(opts->metrics_host, opts->metrics_port, &mss)))
		goto fail;
	if (http_proxies_parse(opts->trusted_proxies, &srv->proxies) != 0)
		goto fail; /* validated with the configuration: cannot happen */
	for (size_t i = 0; i < nroutes; i++)
		route_names[i] = opts->routes[i].path;
	metrics_set_routes(route_names, nroutes);
	for (int p = 0; p < HTTP_POOL_COUNT_; p++) {
		srv->pools[p] =
		    pool_new(opts->workers[p], opts->queue[p], worker_init, worker_fini, srv);
		if (srv->pools[p] == NULL ||
		    !pool_set_max_wait(srv->pools[p], (uint64_t)opts->queue_timeout_ms[p] * 1000u,
		        expire_deferred)) {
			log_msg(RS_LOG_ERROR, "cannot start the %s pool", pool_names[p]);
			goto fail;
		}
	}
	srv->conns = conns_new(&(struct conns_opts){.max_connections = opts->max_connections,
	    .head_timeout_s = opts->head_timeout_s,
	    .body_timeout_s = opts->body_timeout_s,
	    .idle_timeout_s = opts->idle_timeout_s,
	    .max_per_addr = opts->max_connections_per_ip,
	    .proxies = &srv->proxies});
	fd = conns_listen(&ss, opts->reuse_port);
	if (fd < 0) {
		log_msg(RS_LOG_ERROR, "cannot listen on %s:%u: %s", opts->host, opts->port,
		    strerror(errno));
		goto fail;
	}
	srv->port = bound_port(fd);
	if (opts->metrics_host != NULL) {
		mfd = conns_listen(&mss, false);
		if (mfd < 0) {
			log_msg(RS_LOG_ERROR, "cannot listen on %s:%u (--metrics-bind): %s",
			    opts->metrics_host, opts->metrics_port, strerror(errno));
			close(fd);
			goto fail;
		}
		srv->metrics_port = bound_port(mfd);
	}
	srv->daemon = start_daemon(srv);
	if (srv->daemon == NULL || !conns_start(srv->conns, srv->daemon, fd, mfd)) {
		log_msg(RS_LOG_ERROR, "cannot start the HTTP daemon or its accept thread");
		conns_stop(srv->conns); /* closes what conns_start took over */
		if (srv->daemon != NULL)
			MHD_stop_daemon(srv->daemon);
		else {
			close(fd);
			if (mfd >= 0)
				close(mfd);
		}
		goto fail;
	}
	return srv;
fail:
	conns_free(srv->conns);
	for (int p = 0; p < HTTP_POOL_COUNT_; p++)
		pool_free(srv->pools[p]);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->idle_mu);
	free(srv);
	return NULL;
}

unsigned
http_server_port(const struct http_server *srv)
{
	return srv->port;
}

unsigned
http_server_metrics_port(const struct http_server *srv)
{
	return srv->metrics_port;
}

/* Waits until no request is in flight, or until `deadline_us` (CLOCK_MONOTONIC) has passed. */
static void
wait_idle(struct http_server *srv, uint64_t deadline_us)
{
	struct timespec ts = {.tv_sec = (time_t)(deadline_us / 1000000u),
	    .tv_nsec = (long)(deadline_us % 1000000u) * 1000};

	pthread_mutex_lock(&srv->idle_mu);
	while (atomic_load(&srv->inflight) > 0 &&
	       pthread_cond_timedwait(&srv->idle, &srv->idle_mu, &ts) == 0) {
	}
	pthread_mutex_unlock(&srv->idle_mu);
}

void
http_server_stop(struct http_server *srv)
{
	uint64_t deadline = pool_now_us() + (uint64_t)srv->opts.shutdown_timeout_s * 1000000u;
	/* Stop accepting: the listening socket is closed, so new connections are
	 * refused at once (nginx then tries the next instance) instead of
	 * queueing unanswered. */
	conns_stop(srv->conns);
	/* Drain: every reply from now on carries Connection: close. */
	atomic_store(&srv->draining, true);
	wait_idle(srv, deadline);
	if (atomic_load(&srv->inflight) > 0)
		log_msg(RS_LOG_WARNING, "shutdown timeout: %u requests still in flight",
		    atomic_load(&srv->inflight));
	/* Refuse new reservations (503), run what is queued, join the workers. The
	 * I/O threads still run and may call pool_reserve or pool_depth: the pools
	 * are freed only after the daemon has stopped (invariant 6). */
	for (int p = 0; p < HTTP_POOL_COUNT_; p++)
		pool_stop(srv->pools[p]);
	wait_idle(srv, deadline); /* replies resumed by the last jobs reach their sockets */
	MHD_stop_daemon(srv->daemon);
	conns_free(srv->conns); /* MHD's threads reported every connection closed */
	for (int p = 0; p < HTTP_POOL_COUNT_; p++)
		pool_free(srv->pools[p]);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->idle_mu);
	free(srv);
}
