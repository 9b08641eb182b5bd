/*
 * The route matcher. The table itself comes from above (api/routes.c, passed
 * to http_server_start). Paths match with or without their trailing slash; a
 * "{id}" segment matches a positive decimal integer. The first match wins, so
 * the table orders a literal segment before {id} where both could match.
 */
#include "http/req.h"

#include <string.h>

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
http_route_find(const struct http_route *routes, size_t nroutes, const char *path, int64_t *id)
{
	size_t n = trimmed_len(path, strlen(path));

	*id = 0;
	for (size_t i = 0; i < nroutes; i++)
		if (match(routes[i].path, path, n, id))
			return &routes[i];
	return NULL;
}
