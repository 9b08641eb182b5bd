/*
 * Rate limits: fixed-window counters in the database (store_rate_count), so
 * every instance enforces one limit. Subjects are client IPs (X-Forwarded-For
 * only from trusted proxies), account ids or normalised login names, and a
 * login name may be a password typed into the wrong field: the stored key is
 * "<limit>:<keyed hash of the subject>", under a random key the database
 * keeps (store_secret, read once per process), so every instance on it counts
 * the same subject under the same key and nothing typed is stored in clear
 * (I5). A hit adds at most one counter; every PURGE_EVERY-th hit of a process
 * deletes up to PURGE_MAX counters whose window ended long ago (no window,
 * configured ones included, is longer than an hour). A counter
 * that cannot be read or written fails closed (503), never open.
 */
#include "api/api.h"
#include "config.h"
#include "crypto/rcrypto.h"
#include "http/req.h"
#include "store/store.h"

#include <assert.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define SECRET_NAME "rate_limit_key"
#define PURGE_AGE_S 86400 /* longer than every window below */
#define PURGE_EVERY 64    /* hits of a process per purge */
#define PURGE_MAX   256   /* counters per purge: more than PURGE_EVERY hits can add */

static const struct {
	const char *name;
	long long window_s; /* 0: the configured limit_login_account_window_s */
	size_t max_offset;  /* the limit's field in struct config */
} limits[] = {
    [API_LIMIT_REGISTER_IP] = {"register_ip", 600, offsetof(struct config, limit_register_ip)},
    [API_LIMIT_ACCOUNTS_IP] = {"accounts_ip", 3600, offsetof(struct config, limit_accounts_ip)},
    [API_LIMIT_LOGIN_IP] = {"login_ip", 60, offsetof(struct config, limit_login_ip)},
    [API_LIMIT_LOGIN_FAILURES] = {"login_fail_ip", 300,
        offsetof(struct config, limit_login_failures)},
    [API_LIMIT_LOGIN_ACCOUNT] = {"login_fail_acct", 0,
        offsetof(struct config, limit_login_account_failures)},
    [API_LIMIT_INVITES] = {"invites", 3600, offsetof(struct config, limit_invites)},
    [API_LIMIT_RESET_EMAIL] = {"reset_email", 3600, offsetof(struct config, limit_reset_email)},
    [API_LIMIT_RESET_IP] = {"reset_ip", 3600, offsetof(struct config, limit_reset_ip)},
    [API_LIMIT_VERIFY_RESEND] = {"verify_resend", 3600,
        offsetof(struct config, limit_verify_resend)},
};

static pthread_mutex_t key_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char hash_key[RCRYPTO_KEY_BYTES]; /* valid once key_loaded */
static bool key_loaded;
static atomic_uint hits;

/*
 * The database's rate-limit key: read, or stored first by whichever process
 * gets there first, once per process (the database call outside the lock).
 */
static bool
limit_key(struct http_req *req, struct store *s, unsigned char out[RCRYPTO_KEY_BYTES])
{
	char candidate[2 * RCRYPTO_KEY_BYTES + 1], stored[STORE_SECRET_MAX];
	unsigned char key[RCRYPTO_KEY_BYTES];
	enum store_status st;
	bool ok;

	pthread_mutex_lock(&key_mu);
	ok = key_loaded;
	if (ok)
		memcpy(out, hash_key, sizeof(hash_key));
	pthread_mutex_unlock(&key_mu);
	if (ok)
		return true;
	rcrypto_random_hex(candidate, RCRYPTO_KEY_BYTES);
	st = store_secret(s, SECRET_NAME, candidate, stored);
	ok = st == STORE_OK && rcrypto_key_from_hex(stored, key);
	if (ok) {
		pthread_mutex_lock(&key_mu);
		memcpy(hash_key, key, sizeof(key));
		key_loaded = true;
		pthread_mutex_unlock(&key_mu);
		memcpy(out, key, sizeof(key));
	} else {
		http_log(req, RS_LOG_WARNING, "rate-limit key not read: %s",
		    st == STORE_OK ? "not 64 hex characters" : store_status_str(st));
	}
	sodium_memzero(candidate, sizeof(candidate));
	sodium_memzero(stored, sizeof(stored));
	sodium_memzero(key, sizeof(key));
	return ok;
}

/* Now and then, the counters no limit can still read. */
static void
purge(struct http_req *req, struct store *s)
{
	int64_t n = 0;
	enum store_status st;

	if (atomic_fetch_add(&hits, 1) % PURGE_EVERY != 0)
		return;
	st = store_rate_purge(s, PURGE_AGE_S, PURGE_MAX, &n);
	if (st != STORE_OK)
		http_log(req, RS_LOG_DEBUG, "rate-limit purge: %s", store_status_str(st));
	else if (n > 0)
		http_log(req, RS_LOG_DEBUG, "rate-limit purge: %lld old counters", (long long)n);
}

enum api_err
api_limit(struct http_req *req, enum api_limit limit, const char *subject, int add)
{
	const struct config *cfg = api_config(req);
	struct store *s = api_store(req);
	unsigned max = *(const unsigned *)((const char *)cfg + limits[limit].max_offset);
	long long window_s =
	    limits[limit].window_s > 0 ? limits[limit].window_s : cfg->limit_login_account_window_s;
	unsigned char k[RCRYPTO_KEY_BYTES];
	long long count = 0, retry = 0;
	enum store_status st;
	char key[96], digest[65];

	assert(window_s > 0 && window_s < PURGE_AGE_S); /* the purge never takes a live counter */
	if (!cfg->rate_limits || s == NULL)
		return API_ERR_NONE;
	if (!limit_key(req, s, k))
		return API_ERR_UNAVAILABLE; /* as a counter that cannot be read: fail closed */
	rcrypto_keyed_hash_hex(k, subject, strlen(subject), digest);
	sodium_memzero(k, sizeof(k));
	snprintf(key, sizeof(key), "%s:%s", limits[limit].name, digest);
	st = store_rate_count(s, key, window_s, add, &count, &retry);
	/* After the count, so that an audit event armed for it goes in its transaction. */
	if (add > 0 && st == STORE_OK)
		purge(req, s);
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

bool
api_limit_window(const struct config *cfg, size_t i, const char **name, long long *window_s)
{
	if (i >= sizeof(limits) / sizeof(limits[0]))
		return false;
	*name = limits[i].name;
	*window_s = limits[i].window_s > 0 ? limits[i].window_s : cfg->limit_login_account_window_s;
	return true;
}
