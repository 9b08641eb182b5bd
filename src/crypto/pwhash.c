/*
 * Password hashing with argon2id (libsodium, parallelism 1) and random tokens.
 * The cost is the caller's (configuration); hashes are PHC strings, so a later
 * cost change still verifies old hashes.
 */
#include "crypto/rcrypto.h"

#include <sodium.h>
#include <string.h>

int
rcrypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int
rcrypto_pwhash(
    const char *pw, size_t len, const struct rcrypto_cost *cost, char out[RCRYPTO_HASH_MAX])
{
	_Static_assert(crypto_pwhash_STRBYTES <= RCRYPTO_HASH_MAX, "hash buffer too small");
	return crypto_pwhash_str_alg(out, pw, len, cost->passes, (size_t)cost->memory_kib * 1024,
	           crypto_pwhash_ALG_ARGON2ID13) == 0
	           ? 0
	           : -1;
}

bool
rcrypto_pwverify(const char *pw, size_t len, const char *hash)
{
	return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

void
rcrypto_random_hex(char *out, size_t len)
{
	unsigned char buf[64];

	*out = '\0';
	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);

		randombytes_buf(buf, n);
		sodium_bin2hex(out, 2 * n + 1, buf, n);
		out += 2 * n;
		len -= n;
	}
	sodium_memzero(buf, sizeof(buf));
}
