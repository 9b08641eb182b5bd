/*
 * The MHD daemon and the life of a request: first call (allocate, check the
 * declared length), body calls (accumulate up to the limit), final call
 * (dispatch), and, for deferred work, a resumed call that queues the reply a
 * worker prepared. Replies are queued only after the first call, so MHD keeps
 * connections alive. Every request ends in MHD's completion callback, which
 * writes the access log line and frees the request.
 */
#include "http/http.h"
#include "api/api.h"
#include "metrics.h"
#include "pool.h"
#include "http/proxy.h"
#include "crypto/rcrypto.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct http_server {
	const struct config *cfg;
	struct MHD_Daemon *daemon;
	struct pool *pool;
	unsigned port;
	atomic_uint inflight;
	atomic_bool draining;    /* http_server_stop has begun: replies close their connection */
	pthread_mutex_t idle_mu; /* with `idle`: the stopper waits for inflight == 0 */
	pthread_cond_t idle;
	struct http_proxies proxies;
	pthread_key_t io_store_key;
};

/* A hashing worker's own state: its database connection, opened on demand. */
struct worker {
	const struct config *cfg;
	struct store *store;
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

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

const struct config *
http_config(const struct http_req *req)
{
	return req->srv->cfg;
}

size_t
http_hash_depth(const struct http_req *req)
{
	return pool_depth(req->srv->pool);
}

size_t
http_hash_capacity(const struct http_req *req)
{
	return req->srv->cfg->hash_queue + req->srv->cfg->hash_workers;
}

void
http_log(const struct http_req *req, enum log_level level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	log_json_new(level, req->id, buf, NULL);
}

void
http_reply_json_new(struct http_req *req, int status, json_t *body)
{
	free(req->reply);
	req->reply = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (req->reply == NULL) {
		/* Out of memory while formatting: a fixed body still says what happened. */
		req->reply =
		    strdup("{\"error\":\"An unexpected error occurred.\",\"code\":\"internal\"}");
		status = 500;
	}
	req->reply_len = req->reply != NULL ? strlen(req->reply) : 0;
	req->status = status;
	req->state = HTTP_READY;
}

void
http_reply_text_new(struct http_req *req, int status, char *text, const char *content_type)
{
	if (text == NULL) {
		api_reply_error(req, API_ERR_INTERNAL);
		return;
	}
	free(req->reply);
	req->reply = text;
	req->reply_len = strlen(text);
	req->content_type = content_type;
	req->status = status;
	req->state = HTTP_READY;
}

void
http_reply_empty(struct http_req *req, int status)
{
	free(req->reply);
	req->reply = NULL;
	req->reply_len = 0;
	req->status = status;
	req->state = HTTP_READY;
}

static void
remote_addr(struct http_req *req)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;

	http_client_addr(&req->srv->proxies, sa, http_header(req, "X-Forwarded-For"), req->remote);
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

static struct http_req *
req_new(struct http_server *srv, struct MHD_Connection *conn, const char *url, const char *method)
{
	struct http_req *req = calloc(1, sizeof(*req));
	const char *rid;

	if (req == NULL)
		return NULL;
	req->srv = srv;
	req->conn = conn;
	req->start_us = now_us();
	req->path = url;
	req->method_name = method;
	req->method = method_bit(method);
	req->route = http_route_find(url, &req->path_id);
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
	/* The stopper checks `inflight` under idle_mu, so this wake-up is never lost. */
	if (atomic_fetch_sub(&srv->inflight, 1) == 1 && atomic_load(&srv->draining)) {
		pthread_mutex_lock(&srv->idle_mu);
		pthread_cond_broadcast(&srv->idle);
		pthread_mutex_unlock(&srv->idle_mu);
	}
	free(req);
}

static enum MHD_Result
queue_reply(struct http_req *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char retry[16];

	resp = MHD_create_response_from_buffer(req->reply_len, req->reply, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		return MHD_NO;
	req->reply = NULL; /* MHD frees it now */
	if (req->reply_len > 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    req->content_type != NULL ? req->content_type : "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, "X-Request-ID", req->id);
	if (req->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%u", req->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (req->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
	if (req->challenge != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, req->challenge);
	if (atomic_load(&req->srv->draining)) /* MHD closes the connection after this reply */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
	MHD_destroy_response(resp);
	req->state = HTTP_SENT;
	return ret;
}

static enum MHD_Result
count_length_headers(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		(*(unsigned *)cls)++;
	return MHD_YES;
}

/* First call: decide early what the declared body size allows. */
static bool
check_declared_length(struct http_req *req)
{
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	unsigned lengths = 0;

	/* RFC 9112 6.3: differing lengths are an error (a request-smuggling vector
	 * behind a proxy that would read the other one); MHD uses the first. */
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_length_headers, &lengths);
	if (lengths > 1) {
		api_reply_error(req, API_ERR_BAD_REQUEST);
		return false;
	}

	req->chunked = te != NULL && strcasestr(te, "chunked") != NULL;
	req->has_length = cl != NULL;
	if (cl != NULL && strtoull(cl, NULL, 10) > req->srv->cfg->body_limit) {
		api_reply_error(req, API_ERR_BODY_TOO_LARGE);
		return false;
	}
	return true;
}

/*
 * Body calls: keep at most body_limit bytes. MHD 0.9.75 cannot queue a reply
 * while a body is arriving, so past the limit the rest is discarded as it
 * comes (never stored) and the 413 goes out when the request ends; a client
 * that keeps sending past DISCARD_MAX is disconnected. False: disconnect.
 */
#define DISCARD_MAX (1024 * 1024)

static bool
append_body(struct http_req *req, const char *data, size_t len)
{
	size_t limit = req->srv->cfg->body_limit;

	if (req->early_err != API_ERR_NONE || req->body_len + len > limit) {
		req->early_err = API_ERR_BODY_TOO_LARGE;
		req->discarded += len;
		return req->discarded <= DISCARD_MAX;
	}
	if (req->body == NULL) {
		req->body_cap = limit + 1; /* bounded by configuration, not by the client */
		req->body = malloc(req->body_cap);
		if (req->body == NULL) {
			req->early_err = API_ERR_INTERNAL;
			return true;
		}
	}
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
	return true;
}

static bool
is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Final call: route, method, media type, then the handler. */
static void
dispatch(struct http_req *req)
{
	if (req->early_err != API_ERR_NONE) {
		api_reply_error(req, req->early_err);
		return;
	}
	if (req->route == NULL) {
		api_reply_error(req, API_ERR_NOT_FOUND);
		return;
	}
	if ((req->route->methods & req->method) == 0) {
		req->allow = req->route->allow;
		api_reply_error(req, API_ERR_METHOD_NOT_ALLOWED);
		return;
	}
	if (req->method & req->route->body) {
		if (!req->has_length && !req->chunked) {
			api_reply_error(req, API_ERR_LENGTH_REQUIRED);
			return;
		}
		if (!is_json(http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE))) {
			api_reply_error(req, API_ERR_UNSUPPORTED_MEDIA_TYPE);
			return;
		}
	}
	req->route->handler(req);
	if (req->state == HTTP_READING) {
		http_log(req, RS_LOG_ERROR, "handler for %s set no reply", req->route->path);
		api_reply_error(req, API_ERR_INTERNAL);
	}
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http_server *srv = cls;
	struct http_req *req = *con_cls;

	(void)version;
	if (req == NULL) {
		req = req_new(srv, conn, url, method);
		if (req == NULL)
			return MHD_NO;
		*con_cls = req;
		if (!check_declared_length(req))
			return queue_reply(req); /* early: MHD closes, the body is never read */
		return MHD_YES;
	}
	if (*upload_size > 0) {
		bool keep = append_body(req, upload_data, *upload_size);

		*upload_size = 0;
		if (!keep)
			http_log(req, RS_LOG_INFO, "body far over the limit: disconnecting");
		return keep ? MHD_YES : MHD_NO;
	}
	switch (req->state) {
	case HTTP_READING:
		dispatch(req);
		break;
	case HTTP_WAITING: /* a spurious call while suspended cannot happen; be safe */
		return MHD_YES;
	case HTTP_READY: /* resumed after a worker set the reply */
	case HTTP_SENT:
		break;
	}
	if (req->state == HTTP_READY)
		return queue_reply(req);
	return MHD_YES;
}

static void
on_completed(
    void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	struct http_req *req = *con_cls;
	uint64_t took;

	(void)cls;
	(void)conn;
	if (req == NULL)
		return;
	took = now_us() - req->start_us;
	metrics_request(http_route_index(req->route), req->status, took);
	log_access(req->id, req->method_name, req->path, req->status, (unsigned long long)took,
	    req->remote, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
	*con_cls = NULL;
	req_free(req);
}

static void *
worker_init(void *arg)
{
	struct worker *w = calloc(1, sizeof(*w));

	if (w != NULL)
		w->cfg = arg;
	return w;
}

static void
worker_fini(void *ctx)
{
	struct worker *w = ctx;

	if (w != NULL)
		store_close(w->store);
	free(w);
}

static void
run_deferred(void *arg, void *ctx)
{
	struct http_req *req = arg;
	struct worker *w = ctx;

	if (w != NULL && w->store == NULL &&
	    store_open(w->cfg->db, STORE_OPEN_EXISTING, &w->store) != STORE_OK)
		w->store = NULL;
	req->store = w != NULL ? w->store : NULL;
	if (req->store == NULL)
		api_reply_error(req, API_ERR_UNAVAILABLE); /* no database: the handler never runs */
	else
		req->deferred(req);
	req->store = NULL;
	if (req->state != HTTP_READY) {
		http_log(req, RS_LOG_ERROR, "deferred handler set no reply");
		api_reply_error(req, API_ERR_INTERNAL);
	}
	/* The slot is free before the client can send its next request. */
	pool_release(req->srv->pool);
	MHD_resume_connection(req->conn);
}

bool
http_defer(struct http_req *req, http_handler fn)
{
	if (!pool_reserve(req->srv->pool)) {
		metrics_hash_rejected();
		return false;
	}
	req->deferred = fn;
	req->state = HTTP_WAITING;
	MHD_suspend_connection(req->conn);
	pool_submit_reserved(req->srv->pool, run_deferred, req);
	return true;
}

static void
io_store_close(void *s)
{
	store_close(s);
}

struct store *
http_io_store(const struct http_req *req)
{
	struct store *s = pthread_getspecific(req->srv->io_store_key);

	if (s == NULL && store_open(req->srv->cfg->db, STORE_OPEN_EXISTING, &s) == STORE_OK)
		pthread_setspecific(req->srv->io_store_key, s);
	return s;
}

static bool
resolve_bind(const struct config *cfg, struct sockaddr_storage *ss, bool *v6)
{
	struct addrinfo hints = {
	    .ai_flags = AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	bool ok;

	snprintf(port, sizeof(port), "%u", cfg->port);
	if (getaddrinfo(cfg->host, port, &hints, &res) != 0 || res == NULL) {
		log_msg(RS_LOG_ERROR, "cannot resolve bind address %s", cfg->host);
		return false;
	}
	ok = res->ai_addrlen <= sizeof(*ss);
	if (ok) {
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*v6 = res->ai_family == AF_INET6;
	}
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
static bool
idle_init(struct http_server *srv)
{
	pthread_condattr_t attr;
	bool ok;

	if (pthread_condattr_init(&attr) != 0)
		return false;
	ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
	     pthread_cond_init(&srv->idle, &attr) == 0;
	pthread_condattr_destroy(&attr);
	if (ok)
		pthread_mutex_init(&srv->idle_mu, NULL);
	return ok;
}

struct http_server *
http_server_start(const struct config *cfg)
{
	struct http_server *srv = calloc(1, sizeof(*srv));
	struct sockaddr_storage ss;
	const union MHD_DaemonInfo *info;
	unsigned flags =
	    MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	bool v6 = false;

	if (srv == NULL || !resolve_bind(cfg, &ss, &v6))
		goto fail;
	srv->cfg = cfg;
	if (!idle_init(srv))
		goto fail;
	if (http_proxies_parse(cfg->trusted_proxies, &srv->proxies) != 0)
		goto fail; /* validated with the configuration: cannot happen */
	metrics_set_routes(route_names, http_routes(route_names, METRICS_ROUTES_MAX - 1));
	if (pthread_key_create(&srv->io_store_key, io_store_close) != 0)
		goto fail;
	srv->pool =
	    pool_new(cfg->hash_workers, cfg->hash_queue, worker_init, worker_fini, (void *)cfg);
	if (srv->pool == NULL) {
		log_msg(RS_LOG_ERROR, "cannot start the hashing pool");
		goto fail;
	}
	if (v6)
		flags |= MHD_USE_IPv6;
	srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)cfg->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_connections_per_ip,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
	    /* 1 adds SO_REUSEPORT; 0 would also drop MHD's default SO_REUSEADDR. */
	    cfg->reuse_port ? MHD_OPTION_LISTENING_ADDRESS_REUSE : MHD_OPTION_END, 1u,
	    MHD_OPTION_END);
	if (srv->daemon == NULL) {
		log_msg(RS_LOG_ERROR, "cannot listen on %s:%u (address in use, or not permitted)",
		    cfg->host, cfg->port);
		goto fail;
	}
	info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
	srv->port = info != NULL ? info->port : cfg->port;
	return srv;
fail:
	if (srv != NULL) {
		pool_free(srv->pool);
		free(srv);
	}
	return NULL;
}

unsigned
http_server_port(const struct http_server *srv)
{
	return srv->port;
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
	uint64_t deadline = now_us() + (uint64_t)srv->cfg->shutdown_timeout_s * 1000000u;
	/* Stop accepting. The listening socket is shut down at once, so new
	 * connections are refused (nginx then tries the next instance) instead of
	 * queueing unanswered; it is closed only after the daemon is gone, since
	 * its threads still hold it in their epoll sets. */
	MHD_socket fd = MHD_quiesce_daemon(srv->daemon);

	if (fd != MHD_INVALID_SOCKET)
		shutdown(fd, SHUT_RDWR);
	/* Drain: every reply from now on carries Connection: close. */
	atomic_store(&srv->draining, true);
	wait_idle(srv, deadline);
	if (atomic_load(&srv->inflight) > 0)
		log_msg(RS_LOG_WARNING, "shutdown timeout: %u requests still in flight",
		    atomic_load(&srv->inflight));
	/* Refuse new reservations (503), run what is queued, join the workers. The
	 * I/O threads still run and may call pool_reserve or pool_depth: the pool
	 * is freed only after the daemon has stopped. */
	pool_stop(srv->pool);
	wait_idle(srv, deadline); /* replies resumed by the last jobs reach their sockets */
	MHD_stop_daemon(srv->daemon);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	pool_free(srv->pool);
	pthread_key_delete(srv->io_store_key);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->idle_mu);
	free(srv);
}
