/*
 * The confusable keys of a username (UTS #39 skeletons, ICU's uspoof): two
 * names that a reader cannot tell apart ("admin" and "аdmin" with a Cyrillic а)
 * share a key, which the store keeps under a unique index. One USpoofChecker
 * for the process, opened on first use; its skeleton call is thread-safe.
 */
#include "accounts/acct.h"
#include "xmalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uclean.h>
#include <unicode/uspoof.h>
#include <utf8proc.h>

static pthread_mutex_t checker_mu = PTHREAD_MUTEX_INITIALIZER;
static USpoofChecker *checker; /* under checker_mu until acct_unicode_cleanup */

static const USpoofChecker *
get_checker(void)
{
	UErrorCode err = U_ZERO_ERROR;
	USpoofChecker *sc;

	pthread_mutex_lock(&checker_mu);
	if (checker == NULL) {
		checker = uspoof_open(&err);
		if (U_FAILURE(err)) {
			uspoof_close(checker);
			checker = NULL;
		}
	}
	sc = checker;
	pthread_mutex_unlock(&checker_mu);
	return sc;
}

void
acct_unicode_cleanup(void)
{
	pthread_mutex_lock(&checker_mu);
	uspoof_close(checker);
	checker = NULL;
	u_cleanup();
	pthread_mutex_unlock(&checker_mu);
}

/* ICU's skeleton of `in` (NUL-terminated UTF-8), malloc'd; NULL when ICU refuses it. */
static char *
skeleton(const USpoofChecker *sc, const char *in)
{
	UErrorCode err = U_ZERO_ERROR;
	int32_t n = uspoof_getSkeletonUTF8(sc, 0, in, -1, NULL, 0, &err);
	char *out;

	if (err != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(err))
		return NULL;
	out = xmalloc((size_t)n + 1);
	err = U_ZERO_ERROR;
	uspoof_getSkeletonUTF8(sc, 0, in, -1, out, n + 1, &err);
	if (U_FAILURE(err)) {
		free(out);
		return NULL;
	}
	return out;
}

static char *
fold(const char *in)
{
	utf8proc_uint8_t *out = NULL;

	if (utf8proc_map((const utf8proc_uint8_t *)in, 0, &out,
	        UTF8PROC_NULLTERM | UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
	            UTF8PROC_CASEFOLD) < 0)
		return NULL;
	return (char *)out;
}

/* skeleton(fold(skeleton(s))), malloc'd; NULL when ICU refuses or memory runs out. */
static char *
key_of(const USpoofChecker *sc, const char *s)
{
	char *first = skeleton(sc, s), *folded = first != NULL ? fold(first) : NULL;
	char *out = folded != NULL ? skeleton(sc, folded) : NULL;

	free(first);
	free(folded);
	return out;
}

enum acct_status
acct_username_skeletons(const char *username, size_t len, char **skeleton_key, char **cased)
{
	const USpoofChecker *sc = get_checker();
	utf8proc_uint8_t *nfkc = NULL, *folded = NULL;
	enum acct_status st = ACCT_NOMEM;

	*skeleton_key = *cased = NULL;
	if (acct_utf8_chars(username, len) < 0 || memchr(username, '\0', len) != NULL)
		return ACCT_INVALID;
	if (sc == NULL)
		return ACCT_NOMEM; /* ICU's data is missing: nothing a client did */
	if (utf8proc_map((const utf8proc_uint8_t *)username, (utf8proc_ssize_t)len, &nfkc,
	        UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT) < 0)
		goto out;
	folded = (utf8proc_uint8_t *)fold((const char *)nfkc);
	if (folded == NULL)
		goto out;
	/* The final fold and skeleton collapse what the first skeleton left in
	 * capitals ("r00t" -> "rOOt" -> "root"). */
	*skeleton_key = key_of(sc, (const char *)folded);
	*cased = key_of(sc, (const char *)nfkc);
	if (*skeleton_key != NULL && *cased != NULL) {
		st = ACCT_OK;
		goto out;
	}
	free(*skeleton_key);
	free(*cased);
	*skeleton_key = *cased = NULL;
out:
	free(nfkc);
	free(folded);
	return st;
}
