/*
 * pages: the HTML pages under /account/ (register, login, logout, the
 * profile and its forms, the forgotten password, the pages of the mails'
 * links: reset, verify, email change, an invitation; the invitations of an
 * inviter), served by `roster serve` itself. They call the same flows as the JSON API (api/api.h)
 * and answer in HTML with the API's messages; http/'s errors on their routes are HTML pages too
 * (page_render_http_err). Templates and the stylesheet are embedded at build time
 * (scripts/embed-pages.py) and parsed once at start.
 */
#ifndef ROSTER_PAGES_H
#define ROSTER_PAGES_H

#include <stdbool.h>
#include <stddef.h>

#include "http/req.h"

struct config;

/*
 * Parses the embedded templates and reads cfg->site_css when set (at most
 * 256 KiB). False, logged, when a template is malformed or the file cannot
 * be read: serve refuses to start. `cfg` must outlive the pages.
 */
bool pages_init(const struct config *cfg);
void pages_fini(void);

/* The pages' routes, to be appended to the API's table; `*n` routes. */
const struct http_route *page_routes(/* OUT: */ size_t *n);

/* The error renderer of every page route: http/'s errors as HTML pages. */
void page_render_http_err(struct http_req *req, enum http_err err);

/* True for a path the pages own (/account and below): an unknown one gets an HTML 404. */
bool page_path(const char *path);

#endif
