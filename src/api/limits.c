/*
 * Rate limits: fixed-window counters in the database (store_rate_count), so
 * every instance enforces one limit. Keys are "<limit>:<subject>"; subjects
 * are client IPs (X-Forwarded-For only from trusted proxies) or normalised
 * login names, never secrets. A counter that cannot be written fails closed
 * (503), never open.
 */
#include "api/api.h"
#include "config.h"
#include "http/req.h"
#include "store/store.h"

#include <stddef.h>
#include <stdio.h>

static const struct {
	const char *name;
	long long window_s;
	size_t max_offset; /* the limit's field in struct config */
} limits[] = {
    [API_LIMIT_REGISTER_IP] = {"register_ip", 60, offsetof(struct config, limit_register_ip)},
    [API_LIMIT_ACCOUNTS_IP] = {"accounts_ip", 3600, offsetof(struct config, limit_accounts_ip)},
    [API_LIMIT_LOGIN_IP] = {"login_ip", 60, offsetof(struct config, limit_login_ip)},
    [API_LIMIT_LOGIN_FAILURES] = {"login_failures", 300,
        offsetof(struct config, limit_login_failures)},
    [API_LIMIT_INVITES] = {"invites", 3600, offsetof(struct config, limit_invites)},
};

enum api_err
api_limit(struct http_req *req, enum api_limit limit, const char *subject, int add)
{
	const struct config *cfg = api_config(req);
	struct store *s = api_store(req);
	unsigned max = *(const unsigned *)((const char *)cfg + limits[limit].max_offset);
	long long count = 0, retry = 0;
	enum store_status st;
	char key[320];

	if (!cfg->rate_limits || s == NULL)
		return API_ERR_NONE;
	snprintf(key, sizeof(key), "%s:%s", limits[limit].name, subject);
	st = store_rate_count(s, key, limits[limit].window_s, add, &count, &retry);
	if (st != STORE_OK) {
		/* Fail closed: the request this limit protects is not served uncounted. */
		http_log(req, RS_LOG_WARNING, "rate limit %s not counted (%s): refusing with 503",
		    limits[limit].name, store_status_str(st));
		return API_ERR_UNAVAILABLE;
	}
	/* A hit counts itself: over the limit past `max`; a look: at it. */
	if (add > 0 ? count <= max : count < max)
		return API_ERR_NONE;
	req->retry_after = retry > 0 ? (unsigned)retry : 1;
	http_log(req, RS_LOG_INFO, "rate limited: %s", limits[limit].name);
	return API_ERR_RATE_LIMITED;
}
