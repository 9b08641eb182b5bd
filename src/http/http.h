/*
 * http: the libmicrohttpd glue. Owns the daemon, per-request state, the route
 * table, the body limit, request ids, the access log, and the hand-off of slow
 * work (password hashing) to the bounded worker pool with suspend/resume.
 * Handlers never touch MHD: they set a reply on the request, or defer.
 */
#ifndef ROSTER_HTTP_H
#define ROSTER_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"

struct http_server;
struct store;
struct MHD_Connection;

enum http_method {
	HTTP_GET = 1 << 0,
	HTTP_HEAD = 1 << 1,
	HTTP_POST = 1 << 2,
	HTTP_PATCH = 1 << 3,
	HTTP_DELETE = 1 << 4,
	HTTP_PUT = 1 << 5,
	HTTP_OPTIONS = 1 << 6,
	HTTP_OTHER = 1 << 7,
};

struct http_req;
typedef void (*http_handler)(struct http_req *req);

struct http_route {
	const char *path; /* with the trailing slash the API documents */
	unsigned methods; /* enum http_method bits */
	http_handler handler;
	const char *allow; /* the Allow header for 405 */
	unsigned body;     /* methods that must carry a JSON body */
};

/* The route paths, in table order, into names[0..max); returns how many routes exist. */
size_t http_routes(const char **names, size_t max);

/* A route's position in the table; the route count for NULL (no route). */
size_t http_route_index(const struct http_route *r);

/*
 * Finds the route for a path (with or without its trailing slash); NULL: 404.
 * A route segment "{id}" matches a positive decimal integer, stored in `*id`.
 */
const struct http_route *http_route_find(const char *path, /* OUT: */ int64_t *id);

enum http_req_state {
	HTTP_READING, /* receiving the body */
	HTTP_WAITING, /* suspended: a worker is computing the reply */
	HTTP_READY,   /* reply set, not yet queued */
	HTTP_SENT,    /* reply queued to MHD */
};

/* One request. Freed only in MHD's completion callback. */
struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const struct http_route *route;
	unsigned method;
	const char *method_name; /* MHD's, valid for the request */
	const char *path;        /* MHD's, valid for the request */
	char id[65];
	char remote[64];
	uint64_t start_us;
	enum http_req_state state;

	char *body; /* owned; wiped on free: it may hold a password */
	size_t body_len;
	size_t body_cap;
	bool chunked;
	bool has_length;
	int early_err;    /* an enum api_err found while reading, else 0 */
	size_t discarded; /* body bytes dropped past the limit */

	int status;  /* of the reply */
	char *reply; /* owned JSON text */
	size_t reply_len;
	unsigned retry_after;     /* seconds; 0: no header */
	const char *allow;        /* Allow header, static */
	const char *challenge;    /* WWW-Authenticate header, static */
	const char *content_type; /* NULL: application/json */
	int64_t path_id;          /* the {id} of the route, when it has one */

	http_handler deferred; /* runs on a worker */
	struct store *store;   /* the worker's connection while `deferred` runs */
	void *ctx;             /* the handler's own state between halves */
	void (*ctx_free)(void *);
};

/* Sets the reply: takes `body`. Callable on I/O and worker threads. */
void http_reply_json_new(struct http_req *req, int status, json_t *body);

/* Sets a reply with no body (204). */
void http_reply_empty(struct http_req *req, int status);

/* Sets a non-JSON reply: takes `text` (malloc'd); `content_type` is static. */
void http_reply_text_new(struct http_req *req, int status, char *text, const char *content_type);

/*
 * Runs `fn` on a worker of the bounded pool, with `req->store` set to the
 * worker's database connection; when the worker cannot connect, `fn` does not
 * run and the reply is 503 `unavailable`. False when the pool's queue is
 * full: the caller answers 503.
 */
bool http_defer(struct http_req *req, http_handler fn);

/* A request header, or NULL. */
const char *http_header(const struct http_req *req, const char *name);

/* The server's configuration. */
const struct config *http_config(const struct http_req *req);

/* Hash-pool depth (queued + running) and capacity, for ops. */
size_t http_hash_depth(const struct http_req *req);
size_t http_hash_capacity(const struct http_req *req);

/*
 * A database connection for the calling I/O thread (opened on first use,
 * closed when the thread ends), for cheap reads such as /readyz. NULL when the
 * database cannot be opened.
 */
struct store *http_io_store(const struct http_req *req);

/* A log line within a request, carrying its id. */
void http_log(const struct http_req *req, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts serving per `cfg`; NULL (logged) on failure. */
struct http_server *http_server_start(const struct config *cfg);

/* The port actually bound (useful with port 0). */
unsigned http_server_port(const struct http_server *srv);

/*
 * Graceful stop: stops accepting, lets in-flight requests finish within the
 * configured shutdown timeout, drains the worker pool, frees everything.
 */
void http_server_stop(struct http_server *srv);

#endif
