/*
 * Token authentication: `Authorization: Token <t>` (Django REST framework) or
 * `Bearer <t>`. Tokens are looked up by their SHA-256, never stored in clear.
 */
#include "api/api.h"
#include "http/http.h"
#include "crypto/rcrypto.h"
#include "store/store.h"

#include <string.h>
#include <strings.h>

#define TOKEN_HEX 64

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
	for (size_t i = 0; i < TOKEN_HEX; i++) {
		char c = header[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
		out[i] = c;
	}
	for (const char *p = header + TOKEN_HEX; *p != '\0'; p++)
		if (*p != ' ' && *p != '\t')
			return false; /* a longer token, or a second word */
	out[TOKEN_HEX] = '\0';
	return true;
}

struct store *
api_store(struct http_req *req)
{
	return req->store != NULL ? req->store : http_io_store(req);
}

enum api_err
api_authenticate(struct http_req *req, struct store_user *user, char *token_hash)
{
	char token[65], hash[65];
	struct store *s;
	enum store_status st;

	memset(user, 0, sizeof(*user));
	if (!api_auth_token(http_header(req, "Authorization"), token))
		return API_ERR_NOT_AUTHENTICATED;
	rcrypto_sha256_hex(token, TOKEN_HEX, hash);
	s = api_store(req);
	if (s == NULL)
		return API_ERR_UNAVAILABLE;
	st = store_token_user(s, hash, user);
	if (st == STORE_NOT_FOUND)
		return API_ERR_NOT_AUTHENTICATED;
	if (st != STORE_OK)
		return st == STORE_ERROR ? API_ERR_INTERNAL : API_ERR_UNAVAILABLE;
	if (token_hash != NULL)
		memcpy(token_hash, hash, sizeof(hash));
	return API_ERR_NONE;
}
