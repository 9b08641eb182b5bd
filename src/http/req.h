/*
 * http/req.h: what a handler may use. A request as http/ parsed it, the reply
 * setters, the hand-off to a worker pool, headers and logging. Handlers never
 * touch MHD, and http/ knows nothing of the layers above it: their error
 * rendering and per-worker state (a database connection) are passed in
 * through server.h.
 */
#ifndef ROSTER_HTTP_REQ_H
#define ROSTER_HTTP_REQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

struct http_server;
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

/* The errors http/ itself raises; a route's error renderer turns them into replies. */
enum http_err {
	HTTP_ERR_NONE = 0,
	HTTP_ERR_BAD_REQUEST,            /* 400: e.g. two differing Content-Length headers */
	HTTP_ERR_NOT_FOUND,              /* 404: no route */
	HTTP_ERR_METHOD_NOT_ALLOWED,     /* 405: the route's Allow is set on the request */
	HTTP_ERR_LENGTH_REQUIRED,        /* 411 */
	HTTP_ERR_BODY_TOO_LARGE,         /* 413 */
	HTTP_ERR_UNSUPPORTED_MEDIA_TYPE, /* 415 */
	HTTP_ERR_NOT_IMPLEMENTED,        /* 501: a Transfer-Encoding other than chunked */
	HTTP_ERR_UNAVAILABLE,            /* 503: no worker state, or waited too long in a queue */
	HTTP_ERR_INTERNAL,               /* 500: a handler set no reply */
	HTTP_ERR_COUNT_
};

struct http_req;
typedef void (*http_handler)(struct http_req *req);

/* Sets the reply for an error http/ raised (it must set one, as a handler does). */
typedef void (*http_error_renderer)(struct http_req *req, enum http_err err);

struct http_route {
	const char *path; /* with the trailing slash the API documents */
	unsigned methods; /* enum http_method bits */
	http_handler handler;
	const char *allow;            /* the Allow header for 405 */
	unsigned body;                /* methods that must carry a JSON body */
	http_error_renderer on_error; /* NULL: http/'s plain JSON rendering */
	/* With a metrics listener (http_opts.metrics_host): served there only, and
	 * every other route is not served there (404 both ways). */
	bool metrics_only;
};

/*
 * Finds the route for a path (with or without its trailing slash) in
 * routes[0..n); NULL: 404. A route segment "{id}" matches a positive decimal
 * integer, stored in `*id`. Allocates nothing.
 */
const struct http_route *http_route_find(
    const struct http_route *routes, size_t n, const char *path, /* OUT: */ int64_t *id);

/* The worker pools a handler can defer to. */
enum http_pool {
	HTTP_POOL_DB,   /* database work: small jobs, its own workers and queue */
	HTTP_POOL_HASH, /* password hashing (its workers have a database connection too) */
	HTTP_POOL_COUNT_
};

/*
 * One request. Freed only in MHD's completion callback. Its life, as the
 * state diagram at the top of server.c draws it:
 * READING → (WAITING on a worker) → READY (reply set) → SENT (queued to MHD).
 */
enum http_req_state {
	HTTP_READING, /* receiving the body */
	HTTP_WAITING, /* suspended: a worker is computing the reply */
	HTTP_READY,   /* reply set, not yet queued */
	HTTP_SENT,    /* reply queued to MHD */
};

#define HTTP_EXTRA_HEADERS_MAX 12 /* pages: security headers, cookies, Location */

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn;
	const struct http_route *route;
	unsigned method;
	const char *method_name; /* MHD's, valid for the request */
	const char *path;        /* MHD's, valid for the request */
	char id[65];
	char remote[64];
	char remote_bucket[64]; /* remote as per-address limits count it: IPv6 by its /64 */
	uint64_t start_us;
	enum http_req_state state;

	char *body; /* owned; wiped on free: it may hold a password */
	size_t body_len;
	size_t body_cap;
	bool chunked;
	bool has_length;
	enum http_err early_err; /* the first error found while reading, else HTTP_ERR_NONE */
	size_t discarded;        /* body bytes dropped past the limit */

	int status;  /* of the reply */
	char *reply; /* owned JSON text */
	size_t reply_len;
	unsigned retry_after;      /* seconds; 0: no header */
	const char *allow;         /* Allow header, static */
	const char *challenge;     /* WWW-Authenticate header, static */
	const char *content_type;  /* NULL: application/json */
	const char *cache_control; /* static; NULL: no-store */
	int64_t path_id;           /* the {id} of the route, when it has one */
	/* Headers a handler added (http_reply_header): names static, values owned. */
	struct {
		const char *name;
		char *value;
	} extra[HTTP_EXTRA_HEADERS_MAX];
	size_t nextra;

	http_handler deferred; /* runs on a worker */
	bool handed_off;     /* http_defer queued it: the I/O thread lets go (written there only) */
	enum http_pool pool; /* the pool `deferred` was handed to */
	uint64_t queued_us;  /* when it was handed over */
	void *thread_ctx;    /* the worker's state (from thread_open) while `deferred` runs */
	void *ctx;           /* the handler's own state between halves */
	void (*ctx_free)(void *);
};

/* Sets the reply: takes `body`. Callable on I/O and worker threads. */
void http_reply_json_new(struct http_req *req, int status, json_t *body);

/* Sets a reply with no body (204). */
void http_reply_empty(struct http_req *req, int status);

/*
 * Adds a response header to the reply (`name` static, `value` copied). False,
 * and nothing added, past HTTP_EXTRA_HEADERS_MAX or for a value with a
 * control character (no header injection whatever the value).
 */
bool http_reply_header(struct http_req *req, const char *name, const char *value);

/* Sets a non-JSON reply: takes `text` (malloc'd); `content_type` is static. */
void http_reply_text_new(struct http_req *req, int status, char *text, const char *content_type);

/*
 * Sets an error reply {"error": message, "code": code, "request_id"}: the
 * HTTP-level error format. A 503 gets Retry-After (1 s unless
 * req->retry_after says otherwise); 5xx are logged. `code` and `message` are
 * borrowed.
 */
void http_reply_error(struct http_req *req, int status, const char *code, const char *message);

/*
 * The messages of the errors http/ raises (docs/api.md's exact strings). The
 * API's error table uses the same macros, so the one text cannot drift apart
 * between a route's renderer and http/'s own rendering.
 */
#define HTTP_MSG_BAD_REQUEST        "The request is malformed."
#define HTTP_MSG_NOT_FOUND          "Not found."
#define HTTP_MSG_METHOD_NOT_ALLOWED "Method not allowed."
#define HTTP_MSG_LENGTH_REQUIRED                                                                   \
	"A request body with Content-Length or chunked encoding is required."
#define HTTP_MSG_BODY_TOO_LARGE         "The request body is too large."
#define HTTP_MSG_UNSUPPORTED_MEDIA_TYPE "The request body must be application/json."
#define HTTP_MSG_NOT_IMPLEMENTED        "Transfer-Encoding other than chunked is not supported."
#define HTTP_MSG_UNAVAILABLE            "The service is temporarily unavailable; retry shortly."
#define HTTP_MSG_INTERNAL               "An unexpected error occurred."

/* The status, stable code and message of an error http/ raises, for renderers. */
struct http_err_info {
	int status;
	const char *code;
	const char *message;
};
const struct http_err_info *http_err_info(enum http_err err);

/*
 * Runs `fn` on a worker of `pool`, with `req->thread_ctx` set to the
 * worker's state. When the worker has no state (thread_open gave NULL and
 * still does), or the job waited in the queue longer than the pool's bound,
 * `fn` does not run and the route's renderer answers HTTP_ERR_UNAVAILABLE.
 * False when the pool's queue is full or the pool is stopping: the caller
 * answers 503.
 */
bool http_defer(struct http_req *req, enum http_pool pool, http_handler fn);

/* A request header, or NULL. */
const char *http_header(const struct http_req *req, const char *name);

/* A query-string argument (percent-decoded), or NULL; the first when repeated. */
const char *http_query(const struct http_req *req, const char *name);

/* The value of a cookie of the Cookie header, or NULL. */
const char *http_cookie(const struct http_req *req, const char *name);

/* The opaque application pointer of the server options (http_opts.app). */
const void *http_app(const struct http_req *req);

/* A pool's depth (queued + running) and capacity (queue + workers), for ops. */
size_t http_pool_depth(const struct http_req *req, enum http_pool pool);
size_t http_pool_capacity(const struct http_req *req, enum http_pool pool);

/* A log line within a request, carrying its id. */
void http_log(const struct http_req *req, enum log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
