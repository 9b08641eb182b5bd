/*
 * libFuzzer: stored-hash parsing (roster's argon2id, Django's pbkdf2 and
 * argon2). Inputs with 5 or more digits in a row are skipped: they only reach
 * the (bounded, but seconds-long) hashing itself, not the parser.
 */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "crypto/rcrypto.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct rcrypto_cost cost = {8192, 1};
	char *stored;
	bool rehash;
	size_t run = 0;

	for (size_t i = 0; i < size; i++) {
		run = data[i] >= '0' && data[i] <= '9' ? run + 1 : 0;
		if (run >= 5)
			return 0;
	}
	stored = fuzz_cstr(data, size);
	if (stored == NULL || rcrypto_init() != 0) {
		free(stored);
		return 0;
	}
	rcrypto_verify_any("testpass123", 11, stored, &cost, &rehash);
	free(stored);
	return 0;
}
