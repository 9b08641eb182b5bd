/*
 * GET /auth/check: who a token belongs to, for nginx's auth_request in front of
 * the rest of a platform (deploy/nginx/auth-request.example.conf). 200 with
 * X-User-Id, X-User-Name, X-User-Email and X-User-Role for a token that
 * authenticates (the Authorization header's, else the pages' session cookie
 * roster_session: a service behind nginx sees the browser's page session),
 * 401 otherwise; no body either way, and no hashing: one token
 * lookup on a database worker, as for /users/me/.
 *
 * Names and emails go out percent-encoded (UTF-8; every byte but A-Z a-z 0-9
 * and - . _ ~ @ + as %XX), so a header value is always plain ASCII and decodes
 * back to exactly what roster stores.
 */
#include "api/api.h"
#include "http/req.h"
#include "store/store.h"
#include "xmalloc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `s` percent-encoded (see the top of this file); the caller frees it. */
static char *
pct_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = xmalloc(3 * n + 1), *o = out;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || strchr("-._~@+", *p) != NULL) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static void
unauthenticated(struct http_req *req)
{
	req->challenge = "Token";
	http_reply_empty(req, 401);
}

/* The Authorization header's token when there is one, else the page session's cookie. */
static enum api_err
check_authenticate(struct http_req *req, struct store_user *user)
{
	char token[65];

	if (api_auth_token(http_header(req, "Authorization"), token))
		return api_authenticate(req, user, NULL);
	return api_authenticate_token(req, http_cookie(req, API_SESSION_COOKIE), user, NULL);
}

static void
check_finish(struct http_req *req)
{
	struct store_user user;
	enum api_err err = check_authenticate(req, &user);
	char id[24], *name, *email;

	if (err == API_ERR_NOT_AUTHENTICATED) {
		unauthenticated(req);
		return;
	}
	if (err != API_ERR_NONE) {
		api_reply_error(req, err); /* 503: nginx turns any other status into its 500 */
		return;
	}
	snprintf(id, sizeof(id), "%" PRId64, user.id);
	name = pct_encode(user.username);
	email = pct_encode(user.email != NULL ? user.email : "");
	http_reply_empty(req, 200);
	/* Four of HTTP_EXTRA_HEADERS_MAX; percent-encoded values have no control character. */
	(void)http_reply_header(req, "X-User-Id", id);
	(void)http_reply_header(req, "X-User-Name", name);
	(void)http_reply_header(req, "X-User-Email", email);
	(void)http_reply_header(req, "X-User-Role", user.role);
	free(name);
	free(email);
	store_user_clear(&user);
}

void
api_auth_check(struct http_req *req)
{
	char token[65];

	if (!api_auth_token(http_header(req, "Authorization"), token) &&
	    !api_token_well_formed(http_cookie(req, API_SESSION_COOKIE)))
		unauthenticated(req); /* no database needed to say so */
	else
		api_defer(req, HTTP_POOL_DB, check_finish);
}
