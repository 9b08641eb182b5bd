/*
 * http/internal.h: what the files of src/http/ share and nothing else sees:
 * the server object and the steps of a request that live in body.c and
 * reply.c. Included only from src/http/ (scripts/check-layers).
 */
#ifndef ROSTER_HTTP_INTERNAL_H
#define ROSTER_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/proxy.h"
#include "http/req.h"
#include "http/server.h"

struct pool;
struct conns;

struct http_server {
	struct http_opts opts; /* a copy; what it points to is borrowed */
	struct MHD_Daemon *daemon;
	struct conns *conns; /* the listening socket and the open connections (conns.h) */
	struct pool *pools[HTTP_POOL_COUNT_];
	unsigned port;
	unsigned metrics_port;   /* 0: no metrics listener */
	atomic_uint inflight;    /* requests between req_new and req_free */
	atomic_bool draining;    /* http_server_stop has begun: replies close their connection */
	pthread_mutex_t idle_mu; /* with `idle`: the stopper waits for inflight == 0 */
	pthread_cond_t idle;
	struct http_proxies proxies;
};

/* Sets the reply for `err` with the route's renderer (the server's without a route). */
void http_raise(struct http_req *req, enum http_err err);

/*
 * First call (body.c): checks the declared length. False with
 * req->early_err set when the request must be answered at once (differing
 * lengths; a declared body past 1 MiB). A declared body over `limit` but
 * within 1 MiB sets req->early_err and returns true: it is read, dropped,
 * and answered 413 when it ends, on a connection kept alive.
 */
bool http_body_check_declared(struct http_req *req, size_t limit);

/*
 * First call (body.c), before the length: the header block itself. False with
 * req->early_err = HTTP_ERR_BAD_REQUEST for a missing or repeated Host in
 * HTTP/1.1 (RFC 9112 3.2), answered at once with the connection closed.
 */
bool http_head_check(struct http_req *req, const char *version);

/*
 * Body calls (body.c): keeps at most `limit` bytes. The first error found
 * while reading stays (a later chunk never replaces it); past the limit the
 * rest is discarded as it comes. False: disconnect (far over the limit).
 */
bool http_body_append(struct http_req *req, size_t limit, const char *data, size_t len);

/* True for application/json, with or without parameters (body.c). */
bool http_body_is_json(const char *content_type);

/* Queues the reply set on `req` to MHD: READY → SENT (reply.c). */
enum MHD_Result http_queue_reply(struct http_req *req);

#endif
