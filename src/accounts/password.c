/*
 * Password policy, equivalent to Django's four default validators
 * (MinimumLength, UserAttributeSimilarity, CommonPassword, Numeric). The common
 * list is Django's own, embedded at build time as a sorted blob and searched in
 * place, so it costs no start-up work and no heap.
 */
#include "accounts/acct.h"
#include "xmalloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <utf8proc.h>

extern const size_t acct_common_n;
extern const uint32_t acct_common_off[];
extern const char acct_common_blob[];

#define SIMILARITY_MAX 0.7 /* Django's UserAttributeSimilarityValidator default */

/*
 * The checks' work arrays, about 48 KiB: on the heap, not on the stack of the
 * HTTP I/O thread that validates a request. Wiped before release (they hold
 * the password's code points).
 */
struct pw_work {
	utf8proc_int32_t cps[ACCT_PASSWORD_MAX_BYTES]; /* the password, lowercased */
	utf8proc_int32_t a[ACCT_PASSWORD_MAX_BYTES];   /* sorted copies for quick_ratio */
	utf8proc_int32_t b[ACCT_EMAIL_MAX + 1];
	utf8proc_int32_t v[ACCT_EMAIL_MAX + 1];    /* a user attribute */
	char buf[ACCT_PASSWORD_MAX_BYTES * 4 + 1]; /* stripped UTF-8, for the list */
};

static void
work_free(struct pw_work *w)
{
	sodium_memzero(w, sizeof(*w));
	free(w);
}

size_t
acct_common_password_count(void)
{
	return acct_common_n;
}

/* Decodes valid UTF-8 into lowercased code points; returns the count, -1 on error. */
static long
decode_lower(const char *s, size_t len, utf8proc_int32_t *out, size_t cap)
{
	const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
	size_t off = 0, n = 0;

	while (off < len) {
		utf8proc_int32_t cp;
		utf8proc_ssize_t k = utf8proc_iterate(p + off, (utf8proc_ssize_t)(len - off), &cp);

		if (k < 0 || n == cap)
			return -1;
		out[n++] = utf8proc_tolower(cp);
		off += (size_t)k;
	}
	return (long)n;
}

static int
cmp_cp(const void *a, const void *b)
{
	utf8proc_int32_t x = *(const utf8proc_int32_t *)a, y = *(const utf8proc_int32_t *)b;

	return (x > y) - (x < y);
}

/* difflib.SequenceMatcher.quick_ratio over code points: 2 * |A ∩ B| / (|A| + |B|). */
static double
quick_ratio(utf8proc_int32_t *a, size_t na, utf8proc_int32_t *b, size_t nb)
{
	size_t i = 0, j = 0, matches = 0;

	if (na + nb == 0)
		return 1.0;
	qsort(a, na, sizeof(*a), cmp_cp);
	qsort(b, nb, sizeof(*b), cmp_cp);
	while (i < na && j < nb) {
		if (a[i] == b[j]) {
			matches++;
			i++;
			j++;
		} else if (a[i] < b[j]) {
			i++;
		} else {
			j++;
		}
	}
	return 2.0 * (double)matches / (double)(na + nb);
}

double
acct_similarity(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	utf8proc_int32_t *ca = xcalloc(la + 1, sizeof(*ca));
	utf8proc_int32_t *cb = xcalloc(lb + 1, sizeof(*cb));
	long na = decode_lower(a, la, ca, la + 1), nb = decode_lower(b, lb, cb, lb + 1);
	double r = 0.0;

	if (na >= 0 && nb >= 0)
		r = quick_ratio(ca, (size_t)na, cb, (size_t)nb);
	free(ca);
	free(cb);
	return r;
}

static bool
is_word(utf8proc_int32_t cp)
{
	utf8proc_category_t c = utf8proc_category(cp);

	return cp == '_' || (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
	       (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO);
}

/* Django 4.2: a value far shorter than the password cannot make it similar. */
static bool
exceeds_length_ratio(size_t pw_len, size_t value_len)
{
	return pw_len >= 10 * value_len && (double)value_len < SIMILARITY_MAX / 2 * (double)pw_len;
}

static bool
part_similar(struct pw_work *w, size_t npw, const utf8proc_int32_t *part, size_t n)
{
	if (n > ACCT_EMAIL_MAX || exceeds_length_ratio(npw, n))
		return false;
	memcpy(w->a, w->cps, npw * sizeof(w->a[0]));
	memcpy(w->b, part, n * sizeof(w->b[0]));
	return quick_ratio(w->a, npw, w->b, n) >= SIMILARITY_MAX;
}

/* The whole value, then each part between runs of non-word characters (re.split(r"\W+")). */
static bool
too_similar(struct pw_work *w, size_t npw, const char *value)
{
	utf8proc_int32_t *v = w->v;
	long nv = decode_lower(value, strlen(value), v, ACCT_EMAIL_MAX + 1);
	size_t start = 0;

	if (nv < 0)
		return false;
	if (part_similar(w, npw, v, (size_t)nv))
		return true;
	for (size_t i = 0; i <= (size_t)nv; i++) {
		if (i == (size_t)nv || !is_word(v[i])) {
			if (part_similar(w, npw, v + start, i - start))
				return true;
			start = i + 1;
		}
	}
	return false;
}

/* Python's str.isspace, which Django's strip() uses. */
static bool
is_space(utf8proc_int32_t cp)
{
	return cp == ' ' || (cp >= '\t' && cp <= '\r') || (cp >= 0x1c && cp <= 0x1f) ||
	       cp == 0x85 || utf8proc_category(cp) == UTF8PROC_CATEGORY_ZS || cp == 0x2028 ||
	       cp == 0x2029;
}

static int
cmp_common(const void *key, const void *elem)
{
	return strcmp((const char *)key, acct_common_blob + *(const uint32_t *)elem);
}

/* The list lookup, in `w` (its cps and buf are overwritten). */
static bool
is_common(const char *pw, size_t len, struct pw_work *w)
{
	long n = len <= ACCT_PASSWORD_MAX_BYTES
	             ? decode_lower(pw, len, w->cps, ACCT_PASSWORD_MAX_BYTES)
	             : -1;
	size_t first = 0, last, o = 0;

	if (n <= 0)
		return false;
	last = (size_t)n;
	while (first < last && is_space(w->cps[first]))
		first++;
	while (last > first && is_space(w->cps[last - 1]))
		last--;
	for (size_t i = first; i < last; i++)
		o += (size_t)utf8proc_encode_char(w->cps[i], (utf8proc_uint8_t *)w->buf + o);
	w->buf[o] = '\0';
	return bsearch(w->buf, acct_common_off, acct_common_n, sizeof(acct_common_off[0]),
	           cmp_common) != NULL;
}

bool
acct_password_is_common(const char *pw, size_t len)
{
	struct pw_work *w = xmalloc(sizeof(*w));
	bool found = is_common(pw, len, w);

	work_free(w);
	return found;
}

bool
acct_password_check(
    const char *pw, size_t len, const char *username, const char *email, struct acct_errors *errs)
{
	struct pw_work *w = NULL;
	size_t before = errs->n;
	bool numeric = true;
	long n;

	if (len > ACCT_PASSWORD_MAX_BYTES) {
		acct_errors_add(errs, "password", ACCT_MSG_PW_TOO_LONG);
		return false;
	}
	w = xmalloc(sizeof(*w));
	n = decode_lower(pw, len, w->cps, ACCT_PASSWORD_MAX_BYTES);
	if (n < 0) {
		acct_errors_add(errs, "password", ACCT_MSG_NOT_STRING);
		goto out;
	}
	for (long i = 0; i < n; i++)
		numeric = numeric && utf8proc_category(w->cps[i]) == UTF8PROC_CATEGORY_ND;
	if (username != NULL && too_similar(w, (size_t)n, username))
		acct_errors_add(errs, "password", ACCT_MSG_PW_SIMILAR_USERNAME);
	else if (email != NULL && too_similar(w, (size_t)n, email))
		acct_errors_add(errs, "password", ACCT_MSG_PW_SIMILAR_EMAIL);
	if (n < ACCT_PASSWORD_MIN)
		acct_errors_add(errs, "password", ACCT_MSG_PW_TOO_SHORT);
	if (is_common(pw, len, w)) /* reuses w->cps: the numeric test is done */
		acct_errors_add(errs, "password", ACCT_MSG_PW_COMMON);
	if (numeric && n > 0)
		acct_errors_add(errs, "password", ACCT_MSG_PW_NUMERIC);
out:
	work_free(w);
	return errs->n == before;
}
