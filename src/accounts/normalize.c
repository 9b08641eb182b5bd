/*
 * Normalisation of usernames and emails into their uniqueness keys (utf8proc,
 * libidn2). username_key = NFKC + case fold; email_key = trim + NFKC, the local
 * part lowercased and the domain in IDNA A-label form (the username's confusable
 * key is skeleton.c's). Both
 * reject invisible and bidi-control characters, which NFKC would keep and which
 * make two different-looking accounts compare equal (or equal-looking ones differ).
 */
#include "accounts/acct.h"
#include "xmalloc.h"

#include <idn2.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define NFKC (UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT)

void
acct_errors_add(struct acct_errors *errs, const char *field, const char *message)
{
	if (errs->n < ACCT_ERRORS_MAX)
		errs->items[errs->n++] = (struct acct_error){field, message};
}

long
acct_utf8_chars(const char *s, size_t len)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	size_t off = 0;
	long n = 0;

	while (off < len) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(p + off, (utf8proc_ssize_t)(len - off), &cp);

		if (k < 0)
			return -1;
		off += (size_t)k;
		n++;
	}
	return n;
}

static bool
is_invisible(utf8proc_int32_t cp)
{
	const utf8proc_property_t *prop = utf8proc_get_property(cp);

	/* Cf holds the bidi controls (U+202A..E, U+2066..9, U+200E/F, U+061C) and
	 * the zero-width characters; `ignorable` adds the rest of
	 * Default_Ignorable_Code_Point (variation selectors, U+3164, ...). */
	return prop->category == UTF8PROC_CATEGORY_CF || prop->ignorable;
}

bool
acct_has_invisible(const char *s, size_t len)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	size_t off = 0;

	while (off < len) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(p + off, (utf8proc_ssize_t)(len - off), &cp);

		if (k < 0)
			return false; /* invalid UTF-8 is the caller's other check */
		if (is_invisible(cp))
			return true;
		off += (size_t)k;
	}
	return false;
}

/* utf8proc_map over `len` bytes; NULL on invalid input or OOM. */
static char *
map(const char *in, size_t len, utf8proc_option_t opts)
{
	utf8proc_uint8_t *out = NULL;

	if (utf8proc_map((const utf8proc_uint8_t *)in, (utf8proc_ssize_t)len, &out, opts) < 0)
		return NULL;
	return (char *)out;
}

char *
acct_username_key_any(const char *in, size_t len)
{
	if (len == 0 || acct_utf8_chars(in, len) < 0 || memchr(in, '\0', len) != NULL)
		return NULL;
	return map(in, len, NFKC | UTF8PROC_CASEFOLD);
}

static bool
is_word_char(utf8proc_int32_t cp)
{
	switch (utf8proc_category(cp)) {
	case UTF8PROC_CATEGORY_LU:
	case UTF8PROC_CATEGORY_LL:
	case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM:
	case UTF8PROC_CATEGORY_LO:
	case UTF8PROC_CATEGORY_ND:
	case UTF8PROC_CATEGORY_NL:
	case UTF8PROC_CATEGORY_NO:
		return true;
	default:
		return cp == '_';
	}
}

enum acct_status
acct_username_normalize(const char *in, size_t len, char **display, char **key, const char **msg)
{
	char *disp = NULL, *k = NULL;
	enum acct_status st = ACCT_INVALID;
	const utf8proc_uint8_t *p;
	size_t off = 0, n;
	long chars = 0;

	*display = *key = NULL;
	*msg = ACCT_MSG_USERNAME_INVALID;
	if (len == 0) {
		*msg = ACCT_MSG_BLANK;
		goto out;
	}
	if (acct_utf8_chars(in, len) < 0 || memchr(in, '\0', len) != NULL)
		goto out;
	if (acct_has_invisible(in, len)) {
		*msg = ACCT_MSG_INVISIBLE;
		goto out;
	}
	disp = map(in, len, NFKC);
	if (disp == NULL) {
		st = ACCT_NOMEM;
		goto out;
	}
	p = (const utf8proc_uint8_t *)disp;
	n = strlen(disp);
	while (off < n) {
		utf8proc_int32_t cp;

		off += (size_t)utf8proc_iterate(p + off, (utf8proc_ssize_t)(n - off), &cp);
		if (!is_word_char(cp) && (cp == 0 || cp > 127 || strchr("@.+-", (int)cp) == NULL))
			goto out;
		chars++;
	}
	if (chars > ACCT_USERNAME_MAX) {
		*msg = ACCT_MSG_USERNAME_TOO_LONG;
		goto out;
	}
	k = map(disp, n, NFKC | UTF8PROC_CASEFOLD);
	if (k == NULL) {
		st = ACCT_NOMEM;
		goto out;
	}
	*display = disp;
	*key = k;
	*msg = NULL;
	return ACCT_OK;
out:
	free(disp);
	return st;
}

static bool
is_space(utf8proc_int32_t cp)
{
	return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x85 || cp == 0xA0 ||
	       utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || cp == 0x2028 || cp == 0x2029;
}

/* Trims white space at both ends of valid UTF-8; returns the inner span. */
static void
trim(const char *s, size_t len, size_t *start, size_t *end)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	size_t off = 0, first = len, last = 0;

	while (off < len) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(p + off, (utf8proc_ssize_t)(len - off), &cp);

		if (!is_space(cp)) {
			if (first == len)
				first = off;
			last = off + (size_t)k;
		}
		off += (size_t)k;
	}
	*start = first == len ? 0 : first;
	*end = first == len ? 0 : last;
}

static bool
local_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

/* Dot-atom local part: ASCII atext runs separated by single dots. */
static bool
local_part_ok(const char *s, size_t len)
{
	if (len == 0 || len > 64 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!local_char_ok((unsigned char)s[i])) {
			return false;
		}
	}
	return true;
}

/* Domain: at least two labels of letters, digits and inner hyphens; TLD not numeric. */
static bool
domain_ok(const char *s, size_t len)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	size_t off = 0, label_len = 0, labels = 0;
	utf8proc_int32_t prev = '.';
	bool label_numeric = true;

	if (len == 0 || len > 253)
		return false;
	while (off <= len) {
		utf8proc_int32_t cp = '.'; /* a virtual dot ends the last label */

		if (off < len)
			off +=
			    (size_t)utf8proc_iterate(p + off, (utf8proc_ssize_t)(len - off), &cp);
		else
			off++;
		if (cp == '.') {
			if (label_len == 0 || label_len > 63 || prev == '-')
				return false;
			labels++;
			label_len = 0;
			if (off > len && label_numeric)
				return false;
			label_numeric = true;
		} else if (cp == '-') {
			if (label_len == 0)
				return false;
			label_len++;
			label_numeric = false;
		} else if (is_word_char(cp) && cp != '_') {
			label_len++;
			if (utf8proc_category(cp) != UTF8PROC_CATEGORY_ND)
				label_numeric = false;
		} else {
			return false;
		}
		prev = cp;
	}
	return labels >= 2;
}

/* True when each label of `u` that is not ASCII came out of IDNA as an "xn--" label of `a`. */
static bool
labels_stay_unicode(const char *u, const char *a)
{
	while (*u != '\0' && *a != '\0') {
		size_t ul = strcspn(u, "."), al = strcspn(a, ".");
		bool ascii = true;

		for (size_t i = 0; i < ul; i++)
			ascii = ascii && (unsigned char)u[i] < 0x80;
		if (!ascii && (al < 4 || strncmp(a, "xn--", 4) != 0))
			return false;
		u += ul + (u[ul] == '.');
		a += al + (a[al] == '.');
	}
	return *u == '\0' && *a == '\0';
}

/*
 * The key of a syntactically valid NFKC address whose '@' is at `at` - 1: the
 * ASCII local part lowercased, '@', and the domain's A-label form. IDNA2008 as
 * UTS #46 non-transitional processing (what browsers and registries resolve:
 * "faß.de" stays itself, transitional processing would make it "fass.de", a
 * domain someone else may own), with STD3 rules (letters, digits, hyphens).
 * Its case mapping is UTS #46's ("İ" is "i̇", not "i"), and a non-ASCII label
 * that still came out as plain ASCII is refused, so no case mapping turns one
 * domain into another. NULL when the domain is not valid IDNA.
 */
static char *
email_key(const char *disp, size_t at)
{
	char *alabel = NULL, *k = NULL;
	size_t dlen;

	if (idn2_to_ascii_8z(
	        disp + at, &alabel, IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES) != IDN2_OK)
		goto out;
	dlen = strlen(alabel);
	if (!labels_stay_unicode(disp + at, alabel) || !domain_ok(alabel, dlen))
		goto out;
	k = xmalloc(at + dlen + 1);
	for (size_t i = 0; i < at; i++) /* the local part is ASCII (local_part_ok) */
		k[i] = disp[i] >= 'A' && disp[i] <= 'Z' ? (char)(disp[i] - 'A' + 'a') : disp[i];
	memcpy(k + at, alabel, dlen + 1);
out:
	idn2_free(alabel);
	return k;
}

enum acct_status
acct_email_normalize(const char *in, size_t len, char **display, char **key, const char **msg)
{
	char *disp = NULL, *k = NULL;
	enum acct_status st = ACCT_INVALID;
	size_t start, end, n, at;
	long chars;

	*display = *key = NULL;
	*msg = ACCT_MSG_EMAIL_INVALID;
	if (acct_utf8_chars(in, len) < 0 || memchr(in, '\0', len) != NULL)
		goto out;
	trim(in, len, &start, &end);
	if (end == start) {
		*msg = ACCT_MSG_BLANK;
		goto out;
	}
	if (acct_has_invisible(in + start, end - start)) {
		*msg = ACCT_MSG_INVISIBLE;
		goto out;
	}
	disp = map(in + start, end - start, NFKC);
	if (disp == NULL) {
		st = ACCT_NOMEM;
		goto out;
	}
	n = strlen(disp);
	chars = acct_utf8_chars(disp, n);
	/* The last '@', as an index: GCC 12 -O3 misreads pointer arithmetic on
	 * utf8proc's output as a dangling pointer. */
	at = n;
	while (at > 0 && disp[at - 1] != '@')
		at--;
	if (chars > ACCT_EMAIL_MAX || at == 0)
		goto out;
	if (!local_part_ok(disp, at - 1) || !domain_ok(disp + at, n - at))
		goto out;
	k = email_key(disp, at);
	if (k == NULL)
		goto out;
	*display = disp;
	*key = k;
	*msg = NULL;
	return ACCT_OK;
out:
	free(disp);
	return st;
}

bool
acct_email_shaped(const char *s, size_t len)
{
	char *display = NULL, *key = NULL;
	const char *msg;
	bool shaped = acct_email_normalize(s, len, &display, &key, &msg) == ACCT_OK;

	free(display);
	free(key);
	return shaped;
}
