/* The one route table. Paths match with or without their trailing slash. */
#include "http.h"
#include "api.h"

#include <string.h>

static const struct http_route routes[] = {
	{ "/users/register/", HTTP_POST, api_register, "POST" },
	{ "/healthz", HTTP_GET | HTTP_HEAD, api_healthz, "GET, HEAD" },
	{ "/readyz", HTTP_GET | HTTP_HEAD, api_readyz, "GET, HEAD" },
};

/* Length of `s` without one trailing slash (the root "/" keeps it). */
static size_t
trimmed_len(const char *s)
{
	size_t n = strlen(s);

	return n > 1 && s[n - 1] == '/' ? n - 1 : n;
}

const struct http_route *
http_route_find(const char *path)
{
	size_t n = trimmed_len(path);

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (trimmed_len(routes[i].path) == n && strncmp(routes[i].path, path, n) == 0)
			return &routes[i];
	return NULL;
}
