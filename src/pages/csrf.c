/*
 * The page session's cookie and the CSRF defence (pages/internal.h).
 * A state-changing form carries csrf_token, a keyed BLAKE2b of a secret the
 * attacker cannot read: the session token for the forms of a logged-in user,
 * the roster_csrf cookie (random, HttpOnly) for the anonymous login and
 * register forms; nothing is kept on the server, so any instance checks a
 * form another made. And a POST whose Origin (or, without one, Referer) is
 * another origin is refused before anything is read. A page with a token in
 * its URL sends no Referer (and its POSTs carry Origin "null"): then the
 * token alone decides.
 */
#include "pages/internal.h"
#include "api/api.h"
#include "config.h"
#include "crypto/rcrypto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CSRF_CONTEXT "roster-csrf-v1"

bool
page_session_token(const struct http_req *req, char out[65])
{
	const char *v = http_cookie(req, PAGE_SESSION_COOKIE);

	if (!api_token_well_formed(v))
		return false;
	memcpy(out, v, 65);
	return true;
}

void
page_csrf_of(const char *secret, char out[65])
{
	unsigned char mac[32];

	crypto_generichash(mac, sizeof(mac), (const unsigned char *)CSRF_CONTEXT,
	    strlen(CSRF_CONTEXT), (const unsigned char *)secret, 64);
	sodium_bin2hex(out, 65, mac, sizeof(mac));
}

void
page_origin(const struct http_req *req, char *out, size_t size)
{
	const char *pub = api_config(req)->public_url;
	const char *host = http_header(req, "Host");
	const char *proto = http_header(req, "X-Forwarded-Proto");

	/* --public-url, when set, names the origin: its scheme and authority, not its path. */
	if (pub != NULL && strstr(pub, "://") != NULL) {
		const char *auth = strstr(pub, "://") + 3;
		size_t n = (size_t)(auth - pub) + strcspn(auth, "/?#");

		snprintf(out, size, "%.*s", (int)n, pub);
		return;
	}
	snprintf(out, size, "%s://%s",
	    proto != NULL && strcasecmp(proto, "https") == 0 ? "https" : "http",
	    host != NULL ? host : "");
}

static bool
secure(const struct http_req *req)
{
	char origin[300];

	page_origin(req, origin, sizeof(origin));
	return strncmp(origin, "https:", 6) == 0;
}

void
page_anon_secret(struct http_req *req, char out[65])
{
	const char *v = http_cookie(req, PAGE_CSRF_COOKIE);
	char cookie[200];

	if (api_token_well_formed(v)) {
		memcpy(out, v, 65);
		return;
	}
	rcrypto_random_hex(out, 32);
	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/account/; HttpOnly; SameSite=Lax%s",
	    PAGE_CSRF_COOKIE, out, secure(req) ? "; Secure" : "");
	(void)http_reply_header(req, "Set-Cookie", cookie);
}

/* True when `url` is `origin` or starts with it and a '/'. */
static bool
same_origin(const char *url, const char *origin)
{
	size_t n = strlen(origin);

	return strncmp(url, origin, n) == 0 && (url[n] == '\0' || url[n] == '/');
}

bool
page_csrf_ok(const struct http_req *req, const struct page_form *f, const char *secret)
{
	const char *origin = http_header(req, "Origin"), *referer = http_header(req, "Referer");
	const char *token;
	char mine[300], want[65];
	size_t len = 0;
	bool ok;

	page_origin(req, mine, sizeof(mine));
	if (origin != NULL && strcmp(origin, "null") != 0) {
		if (strcmp(origin, mine) != 0)
			return false;
	} else if (referer != NULL && !same_origin(referer, mine)) {
		return false;
	}
	token = page_form_get(f, "csrf_token", &len);
	if (token == NULL || len != 64 || secret == NULL)
		return false;
	page_csrf_of(secret, want);
	ok = rcrypto_equal(token, want, 64);
	sodium_memzero(want, sizeof(want));
	return ok;
}

void
page_set_session(struct http_req *req, const char *token, long long ttl_s)
{
	char cookie[220];

	snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Lax; Max-Age=%lld%s",
	    PAGE_SESSION_COOKIE, token, ttl_s, secure(req) ? "; Secure" : "");
	(void)http_reply_header(req, "Set-Cookie", cookie);
	sodium_memzero(cookie, sizeof(cookie));
}

void
page_end_session(struct http_req *req)
{
	char cookie[160];

	snprintf(cookie, sizeof(cookie), "%s=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0%s",
	    PAGE_SESSION_COOKIE, secure(req) ? "; Secure" : "");
	(void)http_reply_header(req, "Set-Cookie", cookie);
}
