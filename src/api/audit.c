/*
 * The audit trail from HTTP handlers: the event of a request armed on the
 * worker's connection right before the write operation it records (the
 * store inserts it in that operation's transaction, store.h). Actor: the
 * authenticated caller "user:<id>", or "anonymous"; ip: the client address
 * the rate limiter sees (X-Forwarded-For only from trusted proxies); request
 * id: the request's X-Request-ID.
 */
#include "api/api.h"
#include "http/req.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>

void
api_audit_arm_new(struct http_req *req, enum store_audit_event event, int64_t user_id,
    int64_t actor_id, json_t *detail)
{
	struct store *s = api_store(req);
	char actor[32];
	char *text = NULL;

	if (s == NULL) { /* no connection: the operation answers 503 and records nothing */
		json_decref(detail);
		return;
	}
	text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	if (actor_id > 0)
		snprintf(actor, sizeof(actor), "user:%lld", (long long)actor_id);
	else
		snprintf(actor, sizeof(actor), "anonymous");
	store_audit_arm(s, &(struct store_audit){.event = event,
	                       .user_id = user_id,
	                       .actor = actor,
	                       .ip = req->remote[0] != '\0' ? req->remote : NULL,
	                       .request_id = req->id[0] != '\0' ? req->id : NULL,
	                       .detail = text});
	free(text);
	json_decref(detail);
}
