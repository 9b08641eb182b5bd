/*
 * GET /healthz (the process serves), GET /readyz (database and schema
 * current), GET /metrics (Prometheus text). None touches the hashing pool.
 */
#include "api/api.h"
#include "http/http.h"
#include "metrics.h"
#include "store/store.h"

void
api_healthz(struct http_req *req)
{
	http_reply_json_new(req, 200, json_pack("{s:s}", "status", "ok"));
}

void
api_readyz(struct http_req *req)
{
	struct store *s = http_io_store(req);
	struct store_schema schema = {0, 0};

	if (s == NULL || store_schema(s, &schema) != STORE_OK) {
		http_log(req, RS_LOG_WARNING, "not ready: database unreachable");
		api_reply_error(req, API_ERR_UNAVAILABLE);
		return;
	}
	if (schema.applied != schema.latest) {
		http_log(req, RS_LOG_WARNING, "not ready: schema version %d, binary expects %d",
		    schema.applied, schema.latest);
		api_reply_error(req, API_ERR_UNAVAILABLE);
		return;
	}
	http_reply_json_new(
	    req, 200, json_pack("{s:s, s:i}", "status", "ready", "schema_version", schema.applied));
}

void
api_metrics(struct http_req *req)
{
	http_reply_text_new(req, 200, metrics_render(http_hash_depth(req), http_hash_capacity(req)),
	    "text/plain; version=0.0.4; charset=utf-8");
}
