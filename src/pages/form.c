/*
 * application/x-www-form-urlencoded bodies, as browsers send a page's form:
 * name=value pairs split on '&', '+' for a space, %XX escapes. The body is
 * bounded by http/'s body limit, and a form by PAGE_FORM_MAX fields, so
 * nothing here grows with what a client sends beyond that.
 */
#include "pages/internal.h"
#include "accounts/acct.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes s[0..n) into a new string; NULL for a bad escape, a NUL or invalid UTF-8. */
static char *
decode(const char *s, size_t n, size_t *out_len)
{
	char *out = xmalloc(n + 1);
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			out[o++] = ' ';
		} else if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (s[i] == '\0') {
			goto bad;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	if (acct_utf8_chars(out, o) < 0)
		goto bad;
	*out_len = o;
	return out;
bad:
	sodium_memzero(out, n + 1);
	free(out);
	return NULL;
}

bool
page_form_parse(const char *body, size_t len, struct page_form *out)
{
	size_t i = 0;

	memset(out, 0, sizeof(*out));
	while (i < len) {
		const char *pair = body + i, *amp = memchr(pair, '&', len - i), *eq;
		size_t plen = amp != NULL ? (size_t)(amp - pair) : len - i, nlen, vlen;
		char *name, *value;

		i += plen + 1;
		if (plen == 0)
			continue;
		eq = memchr(pair, '=', plen);
		nlen = eq != NULL ? (size_t)(eq - pair) : plen;
		if (out->n == PAGE_FORM_MAX)
			goto bad;
		name = decode(pair, nlen, &vlen);
		if (name == NULL)
			goto bad;
		if (page_form_get(out, name, NULL) != NULL) {
			free(name);
			goto bad;
		}
		value = eq != NULL ? decode(eq + 1, plen - nlen - 1, &vlen) : xstrdup("");
		if (eq == NULL)
			vlen = 0;
		if (value == NULL) {
			free(name);
			goto bad;
		}
		out->f[out->n].name = name;
		out->f[out->n].value = value;
		out->f[out->n].len = vlen;
		out->n++;
	}
	return true;
bad:
	page_form_clear(out);
	return false;
}

const char *
page_form_get(const struct page_form *f, const char *name, size_t *len)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->f[i].name, name) == 0) {
			if (len != NULL)
				*len = f->f[i].len;
			return f->f[i].value;
		}
	if (len != NULL)
		*len = 0;
	return NULL;
}

void
page_form_clear(struct page_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		sodium_memzero(f->f[i].value, f->f[i].len);
		free(f->f[i].value);
		free(f->f[i].name);
	}
	memset(f, 0, sizeof(*f));
}

bool
page_is_form(const struct http_req *req)
{
	const char *ct = http_header(req, "Content-Type");
	size_t n = strlen("application/x-www-form-urlencoded");

	if (ct == NULL)
		return false;
	while (*ct == ' ')
		ct++;
	return strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0 &&
	       (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}
