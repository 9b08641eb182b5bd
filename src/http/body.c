/*
 * Request bodies: the declared length on the first call, then accumulation up
 * to the configured limit. MHD 0.9.75 cannot queue a reply while a body is
 * arriving, so past the limit the rest is discarded as it comes (never
 * stored) and the 413 goes out when the request ends, chunked or declared;
 * a declared length past DISCARD_MAX is answered at once (and closed), and a
 * client that keeps sending past DISCARD_MAX is disconnected.
 */
#include "http/internal.h"
#include "xmalloc.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DISCARD_MAX (1024 * 1024)

struct framing {
	unsigned lengths;   /* Content-Length headers */
	unsigned encodings; /* Transfer-Encoding headers */
};

static enum MHD_Result
count_framing_headers(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;

	(void)kind;
	(void)value;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
		f->lengths++;
	else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
		f->encodings++;
	return MHD_YES;
}

/* "chunked", any case, with optional whitespace around: the one coding MHD decodes. */
static bool
only_chunked(const char *te)
{
	size_t n = strlen("chunked");

	while (*te == ' ' || *te == '\t')
		te++;
	if (strncasecmp(te, "chunked", n) != 0)
		return false;
	for (te += n; *te == ' ' || *te == '\t'; te++) {
	}
	return *te == '\0';
}

/*
 * Line endings and NULs in the head, which libmicrohttpd 0.9.75 does not
 * report: it accepts a bare LF as a line end and cuts a header value at a NUL
 * without a sign (RFC 9110 5.5 and 9112 2.2 let a server refuse both, and a
 * proxy that reads them otherwise could be smuggled past). It parses the head
 * in place, one line after the other in its read buffer, turning each CR and
 * LF of a line end into a NUL, so what lies between the end of one item (the
 * version, then each header value) and the start of the next header name
 * tells: exactly two NULs for CRLF, one for a bare LF, and anything else that
 * is not a NUL is the rest of a value cut at a NUL (or an obs-fold, which RFC
 * 9112 5.2 lets a server refuse too). This reads MHD's buffer layout, so it is
 * compiled for the one version whose layout was checked; a gap that does not
 * look like that layout at all (backwards, or long) is not judged.
 */
#define HEAD_LAYOUT_CHECKED (MHD_VERSION == 0x00097500)
#define HEAD_GAP_MAX        64

struct head_scan {
	unsigned hosts;
	bool bad;        /* a NUL cut a value, or a bare LF */
	const char *end; /* the end of the previous item */
};

/* The bytes from `end` (the end of an item) to `next` (the next name): false when they say bad. */
static bool
gap_ok(const char *end, const char *next)
{
	ptrdiff_t n = next - end;

	if (n <= 0 || n > HEAD_GAP_MAX)
		return true; /* not the layout this was written for: no verdict */
	for (ptrdiff_t i = 0; i < n; i++)
		if (end[i] != '\0')
			return false; /* the rest of a value after a NUL */
	return n != 1;                /* one NUL: a bare LF */
}

static enum MHD_Result
scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
    size_t value_size)
{
	struct head_scan *h = cls;

	(void)kind;
	(void)key_size;
	if (HEAD_LAYOUT_CHECKED && h->end != NULL && !gap_ok(h->end, key))
		h->bad = true;
	h->end = value != NULL ? value + value_size : NULL;
	if (strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0)
		h->hosts++;
	return MHD_YES;
}

bool
http_head_check(struct http_req *req, const char *version)
{
	struct head_scan h = {0, false, version + strlen(version)};

	MHD_get_connection_values_n(req->conn, MHD_HEADER_KIND, scan_header, &h);
	/* After the last value: its line end, then the empty line's. A byte that is not
	 * a NUL is the rest of a value cut at a NUL. */
	if (HEAD_LAYOUT_CHECKED && h.end != NULL && h.end[0] == '\0' && h.end[1] != '\0')
		h.bad = true;
	if (h.bad || (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && h.hosts != 1)) {
		req->early_err = HTTP_ERR_BAD_REQUEST;
		return false;
	}
	return true;
}

bool
http_body_check_declared(struct http_req *req, size_t limit)
{
	const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	struct framing f = {0, 0};

	/* RFC 9112 6.3: differing lengths are an error (a request-smuggling vector
	 * behind a proxy that would read the other one); MHD uses the first. */
	MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_framing_headers, &f);
	if (f.lengths > 1 || f.encodings > 1) {
		req->early_err = HTTP_ERR_BAD_REQUEST;
		return false;
	}
	/* RFC 9112 6.1: both framings at once is a smuggling attempt or a broken
	 * client; answer 400 and close rather than pick one. */
	if (cl != NULL && te != NULL) {
		req->early_err = HTTP_ERR_BAD_REQUEST;
		return false;
	}
	/* RFC 9112 6.1: a coding the server does not understand is 501. MHD would
	 * read such a body until the connection closes: a hang, not an answer. */
	if (te != NULL && !only_chunked(te)) {
		req->early_err = HTTP_ERR_NOT_IMPLEMENTED;
		return false;
	}
	req->chunked = te != NULL;
	req->has_length = cl != NULL;
	if (cl != NULL && strtoull(cl, NULL, 10) > limit) {
		req->early_err = HTTP_ERR_BODY_TOO_LARGE;
		/* Up to DISCARD_MAX the body is read and dropped, and the 413 goes
		 * out when it ends, on a connection kept alive: a proxy still writing
		 * it (nginx) must not see the connection close under it, count an
		 * upstream failure and take the instance out of rotation (issue 14).
		 * Past that, answer now and close. */
		return strtoull(cl, NULL, 10) <= DISCARD_MAX;
	}
	return true;
}

bool
http_body_append(struct http_req *req, size_t limit, const char *data, size_t len)
{
	if (req->early_err == HTTP_ERR_NONE && req->body_len + len > limit)
		req->early_err = HTTP_ERR_BODY_TOO_LARGE;
	if (req->early_err != HTTP_ERR_NONE) {
		/* The first error stays: a 500 found earlier is not turned into a 413. */
		req->discarded += len;
		return req->discarded <= DISCARD_MAX;
	}
	if (req->body == NULL) {
		req->body_cap = limit + 1; /* bounded by configuration, not by the client */
		req->body = xmalloc(req->body_cap);
	}
	memcpy(req->body + req->body_len, data, len);
	req->body_len += len;
	req->body[req->body_len] = '\0';
	return true;
}

bool
http_body_is_json(const char *ct)
{
	size_t n = strlen("application/json");

	if (ct == NULL || strncasecmp(ct, "application/json", n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}
