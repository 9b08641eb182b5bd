/*
 * The one route table. Paths match with or without their trailing slash; a
 * "{id}" segment matches a positive decimal integer. Order matters where a
 * literal segment and {id} could both match ("accept" before "{id}").
 */
#include "http/http.h"
#include "api/api.h"

#include <string.h>

static const struct http_route routes[] = {
    /* path, methods, handler, Allow, methods that take a JSON body */
    {"/users/register/", HTTP_POST, api_register, "POST", HTTP_POST},
    {"/users/login/", HTTP_POST, api_login, "POST", HTTP_POST},
    {"/users/logout/", HTTP_POST, api_logout, "POST", 0},
    {"/users/me/", HTTP_GET | HTTP_HEAD | HTTP_PATCH, api_me, "GET, HEAD, PATCH", HTTP_PATCH},
    {"/users/invitations/", HTTP_GET | HTTP_HEAD | HTTP_POST, api_invitations, "GET, HEAD, POST",
        HTTP_POST},
    {"/users/invitations/accept/", HTTP_POST, api_invitation_accept, "POST", HTTP_POST},
    {"/users/invitations/{id}/resend/", HTTP_POST, api_invitation_resend, "POST", 0},
    {"/users/invitations/{id}/", HTTP_DELETE, api_invitation, "DELETE", 0},
    {"/healthz", HTTP_GET | HTTP_HEAD, api_healthz, "GET, HEAD", 0},
    {"/readyz", HTTP_GET | HTTP_HEAD, api_readyz, "GET, HEAD", 0},
    {"/metrics", HTTP_GET | HTTP_HEAD, api_metrics, "GET, HEAD", 0},
};

#define NROUTES (sizeof(routes) / sizeof(routes[0]))

size_t
http_routes(const char **names, size_t max)
{
	for (size_t i = 0; i < NROUTES && i < max; i++)
		names[i] = routes[i].path;
	return NROUTES;
}

size_t
http_route_index(const struct http_route *r)
{
	return r != NULL ? (size_t)(r - routes) : NROUTES;
}

/* Length of `s` without one trailing slash (the root "/" keeps it). */
static size_t
trimmed_len(const char *s, size_t n)
{
	return n > 1 && s[n - 1] == '/' ? n - 1 : n;
}

/* Matches `path[0..n)` against `pattern`; fills `*id` for a {id} segment. */
static bool
match(const char *pattern, const char *path, size_t n, int64_t *id)
{
	size_t pn = trimmed_len(pattern, strlen(pattern)), i = 0, j = 0;

	while (i < pn && j < n) {
		if (strncmp(pattern + i, "{id}", 4) == 0) {
			int64_t v = 0;
			size_t digits = 0;

			for (; j < n && path[j] >= '0' && path[j] <= '9' && digits < 18;
			     j++, digits++)
				v = v * 10 + (path[j] - '0');
			if (digits == 0 || v == 0 || (j < n && path[j] != '/'))
				return false;
			*id = v;
			i += 4;
		} else if (pattern[i++] != path[j++]) {
			return false;
		}
	}
	return i == pn && j == n;
}

const struct http_route *
http_route_find(const char *path, int64_t *id)
{
	size_t n = trimmed_len(path, strlen(path));

	*id = 0;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (match(routes[i].path, path, n, id))
			return &routes[i];
	return NULL;
}
