/*
 * GET /healthz (the process serves: never waits on the database), GET /readyz
 * (database and schema current, read on a database worker), GET /metrics
 * (Prometheus text, from counters in memory).
 */
#include "api/api.h"
#include "http/req.h"
#include "metrics.h"
#include "store/store.h"

void
api_healthz(struct http_req *req)
{
	http_reply_json_new(req, 200, json_pack("{s:s}", "status", "ok"));
}

static void
readyz_finish(struct http_req *req)
{
	struct store_schema schema = {0, 0, 0};

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
