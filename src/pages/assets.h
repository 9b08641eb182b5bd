/*
 * pages/assets.h: the templates and the stylesheet, embedded at build time by
 * scripts/embed-pages.py (pages_assets.c), by file name.
 */
#ifndef ROSTER_PAGES_ASSETS_H
#define ROSTER_PAGES_ASSETS_H

#include <stddef.h>

struct pages_asset {
	const char *name; /* the file's base name, e.g. "login.html" */
	size_t len;
	const char *data; /* `len` bytes and a NUL */
};

extern const struct pages_asset pages_assets[];
extern const size_t pages_nassets;

#endif
