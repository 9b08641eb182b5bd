/*
 * GET /healthz (the process serves: never waits on the database), GET /readyz
 * (on a database worker: the schema is one this binary serves, the database
 * is not damaged, and it takes writes, by a probe made at most once a second
 * per process), GET /metrics (Prometheus text, from counters in memory).
 */
#include "api/api.h"
#include "http/req.h"
#include "metrics.h"
#include "store/store.h"
#include "xmalloc.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define PROBE_EVERY_MS 1000

/* The last write probe of this process, shared by every database worker. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static long long probe_at_ms = -PROBE_EVERY_MS;
static enum store_status probe_st = STORE_UNAVAILABLE; /* until a probe says otherwise */

static long long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Whether the database takes writes: a fresh probe when the last one is a
 * second old, else its answer. A probe already running on another worker is
 * not waited for (its predecessor's answer stands), so /readyz under heavy
 * probing costs one write a second, never a queue of them.
 */
static enum store_status
writable(struct store *s)
{
	enum store_status st;

	if (pthread_mutex_trylock(&probe_lock) != 0)
		return __atomic_load_n(&probe_st, __ATOMIC_RELAXED);
	if (now_ms() - probe_at_ms >= PROBE_EVERY_MS) {
		__atomic_store_n(&probe_st, store_write_probe(s), __ATOMIC_RELAXED);
		probe_at_ms = now_ms();
	}
	st = __atomic_load_n(&probe_st, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&probe_lock);
	return st;
}

void
api_healthz(struct http_req *req)
{
	http_reply_json_new(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void
readyz_finish(struct http_req *req)
{
	struct store_schema schema = {0, 0, 0};
	enum store_status st;

	if (store_schema(api_store(req), &schema) != STORE_OK) {
		http_log(req, RS_LOG_WARNING, "not ready: database unreachable");
		api_reply_error(req, API_ERR_UNAVAILABLE);
		return;
	}
	/* A newer schema that a newer binary migrated compatibly is served: a rolling upgrade. */
	if (!store_schema_servable(&schema)) {
		http_log(req, RS_LOG_WARNING,
		    "not ready: schema version %d needs a binary at version %d or later; this one "
		    "is at %d",
		    schema.applied,
		    schema.required > schema.applied ? schema.required : schema.applied,
		    schema.latest);
		api_reply_error(req, API_ERR_UNAVAILABLE);
		return;
	}
	if (store_damaged()) {
		http_log(req, RS_LOG_DEBUG, "not ready: database damaged (logged when first seen)");
		api_reply_error(req, API_ERR_UNAVAILABLE);
		return;
	}
	st = writable(api_store(req));
	if (st != STORE_OK) {
		http_log(req, RS_LOG_WARNING, "not ready: the database refuses writes (%s)",
		    store_status_str(st));
		api_reply_error(req, API_ERR_UNAVAILABLE);
		return;
	}
	http_reply_json_new(
	    req, 200, json_pack("{s:s, s:i}", "status", "ready", "schema_version", schema.applied));
}

void
api_readyz(struct http_req *req)
{
	api_defer(req, HTTP_POOL_DB, readyz_finish);
}

void
api_metrics(struct http_req *req)
{
	http_reply_text_new(req, 200,
	    metrics_render(
	        http_pool_depth(req, HTTP_POOL_HASH), http_pool_capacity(req, HTTP_POOL_HASH)),
	    "text/plain; version=0.0.4; charset=utf-8");
}

/* docs/openapi.yaml as JSON, embedded at build time (scripts/embed-openapi.py). */
extern const size_t api_openapi_json_len;
extern const char api_openapi_json[];

void
api_openapi(struct http_req *req)
{
	char *copy = xmalloc(api_openapi_json_len + 1);

	memcpy(copy, api_openapi_json, api_openapi_json_len + 1);
	http_reply_text_new(req, 200, copy, "application/json");
}
