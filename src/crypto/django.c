/*
 * Verification of stored hashes in every format roster accepts: its own argon2id
 * (libsodium), and hashes imported from Django: PBKDF2 (OpenSSL), argon2 with
 * p > 1 (libargon2), bcrypt_sha256 and bcrypt (libxcrypt's crypt_rn). Every cost in an imported
 * hash is read and bounded before any work is done, so a hostile stored value cannot make a login
 * slow or large. Also token digests, keyed hashes and constant-time compare.
 */
#include "crypto/rcrypto.h"

#include <argon2.h>
#include <crypt.h>
#include <limits.h>
#include <stdlib.h>
#include <openssl/evp.h>
#include <sodium.h>
#include <string.h>

#define IMPORTED_MAX    512        /* longest imported hash considered (Django's: ~100) */
#define PBKDF2_ITER_MAX 10000000UL /* Django 3.2 uses 260000 */
#define PBKDF2_SALT_MAX 128        /* Django's salts are 12 or 22 characters */
#define A2_MEMORY_MAX   262144UL   /* KiB; Django's default is 102400 */
#define A2_PASSES_MAX   16UL       /* Django's default is 2 */
#define A2_LANES_MAX    16UL       /* Django's default is 8 */
#define BCRYPT_COST_MAX 16UL       /* log2 rounds; Django's default is 12 */
#define BCRYPT_LEN      60         /* "$2b$12$" + 22 characters of salt + 31 of hash */

/* Django's PBKDF2 hashers: the digest length is the hash's output size. */
struct pbkdf2_alg {
	const char *prefix;
	const EVP_MD *(*md)(void);
	size_t dklen;
};

static const struct pbkdf2_alg pbkdf2_algs[] = {
    {"pbkdf2_sha256$", EVP_sha256, 32},
    {"pbkdf2_sha1$", EVP_sha1, 20},
};

/*
 * Reads a canonical decimal (digits, no sign, no leading zero) no greater than
 * `max`; returns the first character after it, or NULL.
 */
static const char *
parse_bounded(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	const char *p;

	if (s[0] == '0' && s[1] >= '0' && s[1] <= '9')
		return NULL;
	for (p = s; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long)(*p - '0'); /* v <= max before: no overflow */
		if (v > max)
			return NULL;
	}
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

/* `s` follows the prefix: "<iterations>$<salt>$<base64 digest>". */
static bool
pbkdf2_verify(const char *pw, size_t len, const char *s, const struct pbkdf2_alg *alg)
{
	unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
	const char *salt, *b64;
	unsigned long iter;
	size_t want_len;
	bool ok = false;

	s = parse_bounded(s, PBKDF2_ITER_MAX, &iter);
	if (s == NULL || iter < 1 || *s != '$' || len > INT_MAX)
		goto out;
	salt = s + 1;
	b64 = strchr(salt, '$'); /* Django's salts never hold a '$' */
	if (b64 == NULL || b64 == salt || (size_t)(b64 - salt) > PBKDF2_SALT_MAX)
		goto out;
	b64++;
	if (sodium_base642bin(want, sizeof(want), b64, strlen(b64), NULL, &want_len, NULL,
	        sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    want_len != alg->dklen)
		goto out;
	if (PKCS5_PBKDF2_HMAC(pw, (int)len, (const unsigned char *)salt, (int)(b64 - 1 - salt),
	        (int)iter, alg->md(), (int)alg->dklen, got) != 1)
		goto out;
	ok = sodium_memcmp(want, got, alg->dklen) == 0;
out:
	sodium_memzero(got, sizeof(got));
	sodium_memzero(want, sizeof(want));
	return ok;
}

/*
 * `s` follows "$argon2id$" or "$argon2i$": "[v=<n>$]m=<m>,t=<t>,p=<p>$...". True
 * when the costs are within bounds; libargon2 checks the rest as it verifies.
 */
static bool
argon2_costs_ok(const char *s)
{
	unsigned long v, m, t, p;

	if (strncmp(s, "v=", 2) == 0) {
		s = parse_bounded(s + 2, ARGON2_VERSION_13, &v);
		if (s == NULL || *s != '$' || (v != ARGON2_VERSION_10 && v != ARGON2_VERSION_13))
			return false;
		s++;
	}
	if (strncmp(s, "m=", 2) != 0 || (s = parse_bounded(s + 2, A2_MEMORY_MAX, &m)) == NULL)
		return false;
	if (strncmp(s, ",t=", 3) != 0 || (s = parse_bounded(s + 3, A2_PASSES_MAX, &t)) == NULL)
		return false;
	if (strncmp(s, ",p=", 3) != 0 || (s = parse_bounded(s + 3, A2_LANES_MAX, &p)) == NULL)
		return false;
	return *s == '$' && t >= 1 && p >= 1 && m >= 8 * p;
}

/* `phc` is a Django argon2 hash without its leading "argon2": "$argon2id$v=19$...". */
static bool
argon2_phc_verify(const char *pw, size_t len, const char *phc)
{
	argon2_type type;
	const char *costs;

	if (strncmp(phc, "$argon2id$", 10) == 0) {
		type = Argon2_id;
		costs = phc + 10;
	} else if (strncmp(phc, "$argon2i$", 9) == 0) {
		type = Argon2_i;
		costs = phc + 9;
	} else {
		return false;
	}
	if (!argon2_costs_ok(costs))
		return false;
	return argon2_verify(phc, pw, len, type) == ARGON2_OK;
}

/* bcrypt's base64 alphabet. */
static bool
bcrypt_b64(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strchr("./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
		        s[i]) == NULL ||
		    s[i] == '\0')
			return false;
	return true;
}

/*
 * `mcf` is "$2b$NN$<53>" (or $2a$, $2y$) with 4 <= NN <= BCRYPT_COST_MAX; `key`
 * the NUL-free password bytes bcrypt sees (it reads at most 72 of them).
 */
static bool
bcrypt_verify(const char *key, size_t len, const char *mcf)
{
	struct crypt_data *cd = NULL;
	char *pw = NULL;
	const char *got;
	unsigned long cost;
	bool ok = false;

	if (strlen(mcf) != BCRYPT_LEN || strncmp(mcf, "$2", 2) != 0 ||
	    strchr("aby", mcf[2]) == NULL || mcf[2] == '\0' || mcf[3] != '$' || mcf[4] < '0' ||
	    mcf[4] > '9' || mcf[5] < '0' || mcf[5] > '9' || mcf[6] != '$' ||
	    !bcrypt_b64(mcf + 7, BCRYPT_LEN - 7) || memchr(key, '\0', len) != NULL)
		return false;
	cost = (unsigned long)(mcf[4] - '0') * 10 + (unsigned long)(mcf[5] - '0');
	if (cost < 4 || cost > BCRYPT_COST_MAX)
		return false;
	cd = calloc(1, sizeof(*cd)); /* about 32 KiB: not on a worker's stack */
	pw = malloc(len + 1);
	if (cd == NULL || pw == NULL)
		goto out;
	memcpy(pw, key, len);
	pw[len] = '\0';
	/* crypt_rn, not crypt_r: the sanitizers' runtime defines a crypt_r of its own, which
	 * the linker then prefers to libxcrypt's (and calls a NULL "real" one) */
	got = crypt_rn(pw, mcf, cd, (int)sizeof(*cd));
	ok = got != NULL && strlen(got) == BCRYPT_LEN && sodium_memcmp(got, mcf, BCRYPT_LEN) == 0;
out:
	if (pw != NULL)
		sodium_memzero(pw, len + 1);
	if (cd != NULL)
		sodium_memzero(cd, sizeof(*cd));
	free(pw);
	free(cd);
	return ok;
}

/* Django's bcrypt_sha256: bcrypt of the SHA-256 hex digest of the password. */
static bool
bcrypt_sha256_verify(const char *pw, size_t len, const char *mcf)
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	bool ok;

	crypto_hash_sha256(digest, (const unsigned char *)pw, len);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	ok = bcrypt_verify(hex, strlen(hex), mcf);
	sodium_memzero(digest, sizeof(digest));
	sodium_memzero(hex, sizeof(hex));
	return ok;
}

static bool
django_verify(const char *pw, size_t len, const char *stored)
{
	size_t i, n;

	if (strnlen(stored, IMPORTED_MAX + 1) > IMPORTED_MAX)
		return false;
	for (i = 0; i < sizeof(pbkdf2_algs) / sizeof(pbkdf2_algs[0]); i++) {
		n = strlen(pbkdf2_algs[i].prefix);
		if (strncmp(stored, pbkdf2_algs[i].prefix, n) == 0)
			return pbkdf2_verify(pw, len, stored + n, &pbkdf2_algs[i]);
	}
	if (strncmp(stored, "argon2$", 7) == 0)
		return argon2_phc_verify(pw, len, stored + 6);
	if (strncmp(stored, "bcrypt_sha256$", 14) == 0)
		return bcrypt_sha256_verify(pw, len, stored + 14);
	if (strncmp(stored, "bcrypt$", 7) == 0)
		return bcrypt_verify(pw, len, stored + 7);
	return false;
}

bool
rcrypto_verify_any(const char *pw, size_t len, const char *stored, const struct rcrypto_cost *cost,
    bool *needs_rehash)
{
	bool ok;

	*needs_rehash = false;
	if (len == 0 || stored == NULL)
		return false;
	if (strncmp(stored, "$argon2id$", 10) != 0) {
		ok = django_verify(pw, len, stored);
		*needs_rehash = ok; /* any imported hash is replaced by roster's own */
		return ok;
	}
	ok = crypto_pwhash_str_verify(stored, pw, len) == 0;
	if (ok)
		*needs_rehash = crypto_pwhash_str_needs_rehash(
		                    stored, cost->passes, (size_t)cost->memory_kib * 1024) != 0;
	return ok;
}

void
rcrypto_sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char digest[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(digest, (const unsigned char *)data, len);
	sodium_bin2hex(out, 65, digest, sizeof(digest));
}

void
rcrypto_keyed_hash_hex(
    const unsigned char key[RCRYPTO_KEY_BYTES], const char *data, size_t len, char out[65])
{
	unsigned char digest[32];

	crypto_generichash(
	    digest, sizeof(digest), (const unsigned char *)data, len, key, RCRYPTO_KEY_BYTES);
	sodium_bin2hex(out, 65, digest, sizeof(digest));
}

bool
rcrypto_key_from_hex(const char *hex, unsigned char key[RCRYPTO_KEY_BYTES])
{
	size_t n = 0;
	const char *end = NULL;

	return strlen(hex) == 2 * RCRYPTO_KEY_BYTES &&
	       sodium_hex2bin(key, RCRYPTO_KEY_BYTES, hex, strlen(hex), NULL, &n, &end) == 0 &&
	       n == RCRYPTO_KEY_BYTES && *end == '\0';
}

bool
rcrypto_equal(const void *a, const void *b, size_t len)
{
	return sodium_memcmp(a, b, len) == 0;
}
