/*
 * Rendering: the embedded templates, each parsed once at start inside the
 * layout (the page's text replaces the layout's "<!-- content -->"), the
 * stylesheet (built in, or --site-css), the pages' security headers, and the
 * HTML error pages of http/'s errors and the API's. The parsed templates are
 * immutable after pages_init, so any I/O thread or worker renders them.
 */
#include "pages/pages.h"
#include "pages/assets.h"
#include "pages/internal.h"
#include "config.h"
#include "crypto/rcrypto.h"
#include "log.h"
#include "tmpl/tmpl.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_MAX       (2u << 20)   /* bytes of one rendered page */
#define SITE_CSS_MAX   (256u << 10) /* bytes of a --site-css file */
#define CONTENT_MARKER "<!-- content -->"

static const char *const page_names[] = {"error.html", "login.html", "register.html",
    "profile.html", "invitation.html", "invitations.html", "forgot.html", "link.html"};
#define NPAGES (sizeof(page_names) / sizeof(page_names[0]))

static struct tmpl *pages[NPAGES];
static const struct config *config;
static char *css; /* owned: the stylesheet served */
static size_t css_len;
static char css_etag[24]; /* "\"" + 16 hex + "\"" */

static const struct pages_asset *
asset(const char *name)
{
	for (size_t i = 0; i < pages_nassets; i++)
		if (strcmp(pages_assets[i].name, name) == 0)
			return &pages_assets[i];
	return NULL;
}

/* The page `body` inside the layout, parsed. NULL (logged) when malformed. */
static struct tmpl *
parse_page(const struct pages_asset *layout, const struct pages_asset *body)
{
	const char *mark = strstr(layout->data, CONTENT_MARKER);
	size_t head = mark != NULL ? (size_t)(mark - layout->data) : 0;
	size_t tail_off = head + strlen(CONTENT_MARKER), len;
	char *src, err[160];
	struct tmpl *t;

	if (mark == NULL) {
		log_msg(RS_LOG_ERROR, "pages: layout.html has no %s", CONTENT_MARKER);
		return NULL;
	}
	len = head + body->len + (layout->len - tail_off);
	src = xmalloc(len + 1);
	memcpy(src, layout->data, head);
	memcpy(src + head, body->data, body->len);
	memcpy(src + head + body->len, layout->data + tail_off, layout->len - tail_off);
	src[len] = '\0';
	t = tmpl_parse(src, len, TMPL_HTML, err, sizeof(err));
	if (t == NULL)
		log_msg(RS_LOG_ERROR, "pages: %s (inside layout.html): %s", body->name, err);
	free(src);
	return t;
}

/* The --site-css file into `css`; false (logged) when it cannot be read or is too large. */
static bool
load_css_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL) {
		log_msg(RS_LOG_ERROR, "--site-css %s: %s", path, strerror(errno));
		return false;
	}
	css = xmalloc(SITE_CSS_MAX + 1);
	n = fread(css, 1, SITE_CSS_MAX + 1, f);
	fclose(f);
	if (n > SITE_CSS_MAX) {
		log_msg(RS_LOG_ERROR, "--site-css %s: larger than %u bytes", path, SITE_CSS_MAX);
		return false;
	}
	css[n] = '\0';
	css_len = n;
	return true;
}

bool
pages_init(const struct config *cfg)
{
	const struct pages_asset *layout = asset("layout.html"), *builtin = asset("site.css");
	char hash[65];

	config = cfg;
	if (layout == NULL || builtin == NULL)
		return false;
	for (size_t i = 0; i < NPAGES; i++) {
		const struct pages_asset *body = asset(page_names[i]);

		pages[i] = body != NULL ? parse_page(layout, body) : NULL;
		if (pages[i] == NULL)
			return false;
	}
	if (cfg->site_css != NULL && cfg->site_css[0] != '\0') {
		if (!load_css_file(cfg->site_css))
			return false;
	} else {
		css = xmalloc(builtin->len + 1);
		memcpy(css, builtin->data, builtin->len + 1);
		css_len = builtin->len;
	}
	rcrypto_sha256_hex(css, css_len, hash);
	snprintf(css_etag, sizeof(css_etag), "\"%.16s\"", hash);
	return true;
}

void
pages_fini(void)
{
	for (size_t i = 0; i < NPAGES; i++) {
		tmpl_free(pages[i]);
		pages[i] = NULL;
	}
	free(css);
	css = NULL;
}

bool
page_path(const char *path)
{
	return strcmp(path, "/account") == 0 || strncmp(path, "/account/", 9) == 0;
}

void
page_security_headers(struct http_req *req, unsigned flags)
{
	/* Whatever the answer (an error page too), a token in the URL never leaves in a Referer. */
	if (http_query(req, "token") != NULL || http_query(req, "invitation") != NULL)
		flags |= PAGE_TOKEN_URL;
	(void)http_reply_header(req, "Content-Security-Policy",
	    "default-src 'self'; frame-ancestors 'none'; form-action 'self'");
	(void)http_reply_header(req, "X-Content-Type-Options", "nosniff");
	(void)http_reply_header(req, "X-Frame-Options", "DENY");
	/* Same-origin elsewhere: a form's POST then carries a Referer and an Origin to check. */
	(void)http_reply_header(
	    req, "Referrer-Policy", (flags & PAGE_TOKEN_URL) != 0 ? "no-referrer" : "same-origin");
}

static const struct tmpl *
find_page(const char *name)
{
	for (size_t i = 0; i < NPAGES; i++)
		if (strcmp(page_names[i], name) == 0)
			return pages[i];
	return NULL;
}

void
page_reply(struct http_req *req, int status, const char *name, json_t *vars, unsigned flags)
{
	const struct tmpl *t = find_page(name);
	char *html = NULL;

	if (vars == NULL)
		vars = json_object();
	json_object_set_new(
	    vars, "site_name", json_string(config != NULL ? config->site_name : "roster"));
	if (t != NULL)
		html = tmpl_render(t, vars, PAGE_MAX, NULL);
	json_decref(vars);
	if (html == NULL) {
		http_log(req, RS_LOG_ERROR, "page %s could not be rendered", name);
		status = 500;
		html = xstrdup("<!DOCTYPE html><html lang=\"en\"><title>Error</title>"
		               "<h1>An unexpected error occurred.</h1></html>");
	}
	http_reply_text_new(req, status, html, "text/html; charset=utf-8");
	page_security_headers(req, flags);
}

/* The heading of an error page of `status`. */
static const char *
error_title(int status)
{
	switch (status) {
	case 400:
		return "Bad request";
	case 401:
		return "Please log in";
	case 403:
		return "Not allowed";
	case 404:
		return "Page not found";
	case 405:
		return "Method not allowed";
	case 409:
		return "Conflict";
	case 411:
	case 413:
		return "Request too large";
	case 415:
		return "Unsupported form";
	case 429:
		return "Too many requests";
	case 503:
		return "Try again shortly";
	default:
		return status >= 500 ? "Something went wrong" : "Error";
	}
}

static void
error_page(struct http_req *req, int status, const char *code, const char *message)
{
	json_t *vars;

	if ((status == 503 || status == 429) && req->retry_after == 0)
		req->retry_after = 1;
	if (status >= 500)
		http_log(req, status == 503 ? RS_LOG_WARNING : RS_LOG_ERROR, "replying %d %s",
		    status, code);
	vars = json_pack("{s:s, s:s, s:i, s:s, s:b}", "title", error_title(status), "message",
	    message, "status", status, "request_id", req->id, "retry", status == 503);
	page_reply(req, status, "error.html", vars, 0);
}

void
page_render_http_err(struct http_req *req, enum http_err err)
{
	const struct http_err_info *info = http_err_info(err);

	error_page(req, info->status, info->code, info->message);
}

void
page_reply_error(struct http_req *req, enum api_err err)
{
	const struct api_err_info *info = api_err_info(err);

	error_page(req, info->status, info->code, info->message);
}

void
page_redirect(struct http_req *req, const char *location)
{
	http_reply_empty(req, 303);
	(void)http_reply_header(req, "Location", location);
	page_security_headers(req, 0);
}

void
page_css(struct http_req *req)
{
	const char *inm = http_header(req, "If-None-Match");

	req->cache_control = "no-cache"; /* revalidated each time: a new --site-css shows at once */
	if (inm != NULL && strstr(inm, css_etag) != NULL) {
		http_reply_empty(req, 304);
	} else {
		char *copy = xmalloc(css_len + 1);

		memcpy(copy, css, css_len + 1);
		http_reply_text_new(req, 200, copy, "text/css; charset=utf-8");
	}
	(void)http_reply_header(req, "ETag", css_etag);
	(void)http_reply_header(req, "X-Content-Type-Options", "nosniff");
}
