/*
 * Token authentication: `Authorization: Token <t>` (Django REST framework) or
 * `Bearer <t>`. Tokens are looked up by their SHA-256, never stored in clear.
 * Also the per-worker database connection: the only place that knows the
 * worker state http/ carries (req->thread_ctx) is a struct store.
 */
#include "api/api.h"
#include "config.h"
#include "crypto/rcrypto.h"
#include "http/req.h"
#include "store/store.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

#define TOKEN_HEX 64
#define DRF_HEX   40 /* a Django REST framework key, kept by `roster import django` */

/* True when `token` is exactly `n` lowercase hex characters. */
static bool
hex_of_length(const char *token, size_t n)
{
	if (token == NULL)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
			return false;
	return token[n] == '\0';
}

bool
api_auth_token(const char *header, char out[65])
{
	size_t scheme;

	if (header == NULL)
		return false;
	if (strncasecmp(header, "Token ", 6) == 0)
		scheme = 6;
	else if (strncasecmp(header, "Bearer ", 7) == 0)
		scheme = 7;
	else
		return false;
	header += scheme;
	while (*header == ' ')
		header++;
	size_t n = 0;

	for (; n < TOKEN_HEX; n++) {
		char c = header[n];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			break;
		out[n] = c;
	}
	if (n != TOKEN_HEX && n != DRF_HEX)
		return false;
	for (const char *p = header + n; *p != '\0'; p++)
		if (*p != ' ' && *p != '\t')
			return false; /* a longer token, or a second word */
	out[n] = '\0';
	return true;
}

struct store *
api_store(struct http_req *req)
{
	return req->thread_ctx;
}

void *
api_thread_open(const void *app)
{
	const struct config *cfg = app;
	struct store *s = NULL;

	if (store_open(cfg->db, STORE_OPEN_LAZY, &s) != STORE_OK)
		s = NULL;
	return s;
}

void
api_thread_close(void *ctx)
{
	store_close(ctx);
}

const struct config *
api_config(const struct http_req *req)
{
	return http_app(req);
}

void
api_defer(struct http_req *req, enum http_pool pool, http_handler fn)
{
	if (!http_defer(req, pool, fn))
		api_reply_error(req, API_ERR_UNAVAILABLE);
}

void
api_defer_authenticated(struct http_req *req, http_handler fn)
{
	char token[65];

	if (!api_auth_token(http_header(req, "Authorization"), token))
		api_reply_error(req, API_ERR_NOT_AUTHENTICATED); /* no database needed to say so */
	else
		api_defer(req, HTTP_POOL_DB, fn);
}

enum api_err
api_authenticate_token(
    struct http_req *req, const char *token, struct store_user *user, char *token_hash)
{
	char hash[65];
	struct store *s;
	enum store_status st;

	memset(user, 0, sizeof(*user));
	/* A roster token, or an imported DRF key (40 hex) from the Authorization header. */
	if (!api_token_well_formed(token) && !hex_of_length(token, DRF_HEX))
		return API_ERR_NOT_AUTHENTICATED;
	rcrypto_sha256_hex(token, strlen(token), hash);
	s = api_store(req);
	if (s == NULL)
		return API_ERR_UNAVAILABLE; /* not on a worker, or no database */
	st = store_token_user(s, hash, user);
	if (st != STORE_OK)
		return api_store_err(st, API_ERR_NOT_AUTHENTICATED, API_ERR_INTERNAL);
	if (token_hash != NULL)
		memcpy(token_hash, hash, sizeof(hash));
	return API_ERR_NONE;
}

bool
api_token_well_formed(const char *token)
{
	return hex_of_length(token, TOKEN_HEX);
}

enum api_err
api_authenticate(struct http_req *req, struct store_user *user, char *token_hash)
{
	char token[65];
	enum api_err err;

	memset(user, 0, sizeof(*user));
	if (!api_auth_token(http_header(req, "Authorization"), token))
		return API_ERR_NOT_AUTHENTICATED;
	err = api_authenticate_token(req, token, user, token_hash);
	sodium_memzero(token, sizeof(token));
	return err;
}
