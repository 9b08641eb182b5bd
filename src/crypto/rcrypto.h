/*
 * crypto: password hashing (argon2id via libsodium) and random tokens.
 * rcrypto_init must succeed before any other call.
 */
#ifndef ROSTER_RCRYPTO_H
#define ROSTER_RCRYPTO_H

#include <stdbool.h>
#include <stddef.h>

#define RCRYPTO_HASH_MAX 128 /* crypto_pwhash_STRBYTES, with room */

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

/*
 * Verifies `pw` against a stored hash in any format roster accepts: its own
 * argon2id PHC strings, and hashes imported from Django:
 * "pbkdf2_sha256$<iterations>$<salt>$<base64>" (or pbkdf2_sha1), "argon2$argon2id$..."
 * (or "argon2$argon2i$..."), "bcrypt_sha256$$2b$<cost>$..." and "bcrypt$$2b$<cost>$...". Costs in
 * imported hashes are bounded (see django.c); a hash over the bounds or in an unknown format never
 * verifies.
 * `*needs_rehash` is set true when the password matched but the stored hash is
 * not roster's argon2id at `cost`: the caller stores a fresh rcrypto_pwhash.
 */
bool rcrypto_verify_any(const char *pw, size_t len, const char *stored,
    const struct rcrypto_cost *cost, /* OUT: */ bool *needs_rehash);

/* SHA-256 of `data` as 64 lowercase hex characters + NUL (token storage). */
void rcrypto_sha256_hex(const char *data, size_t len, /* OUT: */ char out[65]);

#define RCRYPTO_KEY_BYTES 32

/*
 * A keyed hash (BLAKE2b-256, libsodium's crypto_generichash) of `data` under
 * `key`, as 64 lowercase hex characters + NUL: a stable name for a value that
 * must not be stored in clear and cannot be linked to it without the key.
 */
void rcrypto_keyed_hash_hex(const unsigned char key[RCRYPTO_KEY_BYTES], const char *data,
    size_t len, /* OUT: */ char out[65]);

/* Decodes 2 * RCRYPTO_KEY_BYTES hex characters into `key`; false when `hex` is not that. */
bool rcrypto_key_from_hex(const char *hex, /* OUT: */ unsigned char key[RCRYPTO_KEY_BYTES]);

/* Constant-time comparison of two equal-length buffers. */
bool rcrypto_equal(const void *a, const void *b, size_t len);

/* Fills `out` with `len` random bytes, hex-encoded (2 * len + 1 bytes). */
void rcrypto_random_hex(char *out, size_t len);

#endif
