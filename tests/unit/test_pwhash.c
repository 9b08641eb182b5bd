/*
 * Unit tests for src/crypto/pwhash.c: argon2id PHC strings via libsodium and
 * random hex tokens. A low cost keeps the suite fast.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "crypto/rcrypto.h"

static const struct rcrypto_cost cheap = {.memory_kib = 8192, .passes = 1};

static void
setup(void)
{
	cr_assert_eq(rcrypto_init(), 0, "rcrypto_init failed");
}

TestSuite(rcrypto_pwhash, .init = setup);
TestSuite(rcrypto_random, .init = setup);

static void
hash(const char *pw, size_t len, char out[RCRYPTO_HASH_MAX])
{
	memset(out, 'Z', RCRYPTO_HASH_MAX);
	cr_assert_eq(rcrypto_pwhash(pw, len, &cheap, out), 0, "rcrypto_pwhash failed");
	cr_assert_not_null(memchr(out, '\0', RCRYPTO_HASH_MAX), "hash not NUL-terminated");
}

/* ---- rcrypto_pwhash / rcrypto_pwverify ---- */

Test(rcrypto_pwhash, init_is_idempotent)
{
	cr_assert_eq(rcrypto_init(), 0);
}

Test(rcrypto_pwhash, phc_string_is_argon2id)
{
	char h[RCRYPTO_HASH_MAX];

	hash("testpass123", 11, h);
	cr_assert_eq(strncmp(h, "$argon2id$", 10), 0, "hash: %s", h);
	cr_assert_eq(strncmp(h, "$argon2id$v=19$", 15), 0, "hash: %s", h);
}

Test(rcrypto_pwhash, cost_in_phc_string)
{
	char h[RCRYPTO_HASH_MAX];

	hash("testpass123", 11, h);
	cr_assert_not_null(strstr(h, "$m=8192,"), "hash: %s", h);
	cr_assert_not_null(strstr(h, ",t=1,"), "hash: %s", h);
	cr_assert_not_null(strstr(h, ",p=1$"), "hash: %s", h);
}

Test(rcrypto_pwhash, other_cost_in_phc_string)
{
	const struct rcrypto_cost cost = {.memory_kib = 16384, .passes = 2};
	char h[RCRYPTO_HASH_MAX];

	cr_assert_eq(rcrypto_pwhash("testpass123", 11, &cost, h), 0);
	cr_assert_not_null(strstr(h, "$m=16384,t=2,"), "hash: %s", h);
	cr_assert(rcrypto_pwverify("testpass123", 11, h));
}

Test(rcrypto_pwhash, verify_right_password)
{
	char h[RCRYPTO_HASH_MAX];

	hash("testpass123", 11, h);
	cr_assert(rcrypto_pwverify("testpass123", 11, h));
}

Test(rcrypto_pwhash, verify_wrong_password)
{
	char h[RCRYPTO_HASH_MAX];

	hash("testpass123", 11, h);
	cr_assert_not(rcrypto_pwverify("testpass124", 11, h));
	cr_assert_not(rcrypto_pwverify("Testpass123", 11, h));
	cr_assert_not(rcrypto_pwverify("testpass12", 10, h));
	cr_assert_not(rcrypto_pwverify("testpass1234", 12, h));
}

Test(rcrypto_pwhash, verify_empty_password)
{
	char h[RCRYPTO_HASH_MAX];

	hash("testpass123", 11, h);
	cr_assert_not(rcrypto_pwverify("", 0, h));
}

Test(rcrypto_pwhash, uses_len_not_nul)
{
	char h[RCRYPTO_HASH_MAX];

	/* Bytes after a NUL are part of the password. */
	hash("abc\0def", 7, h);
	cr_assert(rcrypto_pwverify("abc\0def", 7, h));
	cr_assert_not(rcrypto_pwverify("abc", 3, h));
	cr_assert_not(rcrypto_pwverify("abc\0xyz", 7, h));
}

Test(rcrypto_pwhash, non_ascii_password)
{
	char h[RCRYPTO_HASH_MAX];
	const char *pw = "p\u00E4ssw\u00F6rd-\u7528";

	hash(pw, strlen(pw), h);
	cr_assert(rcrypto_pwverify(pw, strlen(pw), h));
}

Test(rcrypto_pwhash, salted_hashes_differ)
{
	char a[RCRYPTO_HASH_MAX], b[RCRYPTO_HASH_MAX];

	hash("testpass123", 11, a);
	hash("testpass123", 11, b);
	cr_assert_str_neq(a, b);
	cr_assert(rcrypto_pwverify("testpass123", 11, a));
	cr_assert(rcrypto_pwverify("testpass123", 11, b));
}

Test(rcrypto_pwhash, garbage_hash_does_not_verify)
{
	cr_assert_not(rcrypto_pwverify("testpass123", 11, ""));
	cr_assert_not(rcrypto_pwverify("testpass123", 11, "$argon2id$"));
	cr_assert_not(rcrypto_pwverify("testpass123", 11, "testpass123"));
	cr_assert_not(
	    rcrypto_pwverify("testpass123", 11, "pbkdf2_sha256$260000$salt$c29tZWhhc2g="));
}

Test(rcrypto_pwhash, tampered_hash_does_not_verify)
{
	char h[RCRYPTO_HASH_MAX];
	size_t n;

	hash("testpass123", 11, h);
	n = strlen(h);
	/* Change a base64 character inside the tag (the last one has unused bits). */
	cr_assert_gt(n, 10);
	h[n - 5] = h[n - 5] == 'A' ? 'B' : 'A';
	cr_assert_not(rcrypto_pwverify("testpass123", 11, h));
}

/* ---- rcrypto_random_hex ---- */

static void
assert_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_assert(isxdigit((unsigned char)s[i]) && !isupper((unsigned char)s[i]),
		    "char %zu of \"%s\" is not lowercase hex", i, s);
}

Test(rcrypto_random, hex_of_32_bytes)
{
	char buf[80];

	memset(buf, 'Z', sizeof buf);
	rcrypto_random_hex(buf, 32);
	cr_assert_eq(buf[64], '\0', "not NUL-terminated at 64");
	cr_assert_eq(strlen(buf), 64);
	assert_lower_hex(buf, 64);
	cr_assert_eq(buf[65], 'Z', "wrote past 2 * len + 1 bytes");
}

Test(rcrypto_random, two_calls_differ)
{
	char a[65], b[65];

	rcrypto_random_hex(a, 32);
	rcrypto_random_hex(b, 32);
	cr_assert_str_neq(a, b);
}

Test(rcrypto_random, zero_bytes_is_empty_string)
{
	/* 2 * 0 + 1 bytes: just the terminator. */
	char buf[8];

	memset(buf, 'Z', sizeof buf);
	rcrypto_random_hex(buf, 0);
	cr_assert_eq(buf[0], '\0', "len 0: buf[0] is '%c', not NUL", buf[0]);
	cr_assert_eq(buf[1], 'Z');
}

Test(rcrypto_random, one_byte)
{
	char buf[8];

	memset(buf, 'Z', sizeof buf);
	rcrypto_random_hex(buf, 1);
	cr_assert_eq(buf[2], '\0');
	cr_assert_eq(strlen(buf), 2);
	assert_lower_hex(buf, 2);
	cr_assert_eq(buf[3], 'Z');
}

Test(rcrypto_random, more_than_one_chunk)
{
	/* Lengths around a likely internal buffer size: 63, 64, 65, 129 bytes. */
	static const size_t lens[] = {63, 64, 65, 129};

	for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
		char buf[2 * 129 + 2];

		memset(buf, 'Z', sizeof buf);
		rcrypto_random_hex(buf, lens[i]);
		cr_assert_eq(buf[2 * lens[i]], '\0', "len %zu: not terminated", lens[i]);
		cr_assert_eq(strlen(buf), 2 * lens[i], "len %zu", lens[i]);
		assert_lower_hex(buf, 2 * lens[i]);
		cr_assert_eq(buf[2 * lens[i] + 1], 'Z', "len %zu: wrote past the end", lens[i]);
	}
}

Test(rcrypto_random, all_nibbles_occur)
{
	/* 4096 random bytes: each of the 16 digits shows up (p of a miss ~ 1e-500). */
	static char buf[2 * 4096 + 1];
	bool seen[16] = {false};

	rcrypto_random_hex(buf, 4096);
	cr_assert_eq(strlen(buf), 8192);
	assert_lower_hex(buf, 8192);
	for (size_t i = 0; i < 8192; i++)
		seen[buf[i] <= '9' ? buf[i] - '0' : buf[i] - 'a' + 10] = true;
	for (int d = 0; d < 16; d++)
		cr_assert(seen[d], "hex digit %x never produced", d);
}
