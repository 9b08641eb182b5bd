/*
 * libFuzzer: username and email normalisation (IDNA domains included), the
 * username's confusable keys and the password policy on raw bytes.
 */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "accounts/acct.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	struct acct_errors errs = {.n = 0};
	char *display = NULL, *key = NULL, *copy;
	const char *msg;

	if (acct_username_normalize(s, size, &display, &key, &msg) == ACCT_OK) {
		char *sk = NULL, *cased = NULL;

		/* Every valid username has both confusable keys (signup relies on it). */
		if (acct_username_skeletons(display, strlen(display), &sk, &cased) != ACCT_OK)
			abort();
		free(sk);
		free(cased);
		free(display);
		free(key);
	}
	acct_username_skeletons(s, size, &display, &key);
	free(display);
	free(key);
	if (acct_email_normalize(s, size, &display, &key, &msg) == ACCT_OK) {
		free(display);
		free(key);
	}
	acct_has_invisible(s, size);
	if (acct_utf8_chars(s, size) < 0 || memchr(s, '\0', size) != NULL)
		return 0; /* the policy takes valid UTF-8 strings, as jansson hands them */
	copy = fuzz_cstr(data, size);
	if (copy == NULL)
		return 0;
	acct_password_check(copy, size, "fuzzuser", "fuzz@example.com", &errs);
	acct_similarity(copy, "fuzzuser");
	free(copy);
	return 0;
}
