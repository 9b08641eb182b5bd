/*
 * crypto: password hashing (argon2id via libsodium) and random tokens.
 * rcrypto_init must succeed before any other call.
 */
#ifndef ROSTER_RCRYPTO_H
#define ROSTER_RCRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define RCRYPTO_HASH_MAX 128	/* crypto_pwhash_STRBYTES, with room */

/* 0 on success; -1 when libsodium cannot start. */
int rcrypto_init(void);

/* Cost of argon2id: memory in KiB and passes; parallelism is 1. */
struct rcrypto_cost {
	unsigned memory_kib;
	unsigned passes;
};

/*
 * Hashes `pw` into `out` as a PHC string ("$argon2id$v=19$m=...").
 * 0 on success, -1 when out of memory (the cost is too high for the machine).
 */
int rcrypto_pwhash(const char *pw, size_t len, const struct rcrypto_cost *cost,
    /* OUT: */ char out[RCRYPTO_HASH_MAX]);

/* True when `pw` matches the PHC string `hash`. */
bool rcrypto_pwverify(const char *pw, size_t len, const char *hash);

/* Fills `out` with `len` random bytes, hex-encoded (2 * len + 1 bytes). */
void rcrypto_random_hex(char *out, size_t len);

#endif
