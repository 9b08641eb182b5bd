/*
 * Unit tests for src/crypto/django.c: roster's own argon2id, token digests, and
 * hashes imported from Django. The Django vectors are made by Django itself at
 * test time (Debian's /usr/bin/python3 with python3-django and python3-argon2),
 * never typed in; cheap subclasses of Django's hashers keep the suite fast.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crypto/rcrypto.h"

#define DJ_HASH_MAX  512
#define FAST_SECONDS 0.5 /* a bounded rejection does no hashing at all */

static const struct rcrypto_cost cost = {8192, 1};

/*
 * Reads "<hasher>\t<password>" lines from RS_DJANGO_REQ and prints one
 * make_password() result per line, after checking that Django verifies it. A
 * hasher is a Django name ("pbkdf2_sha256", "argon2"), or a subclass of it:
 * "pbkdf2_sha256:<iterations>[:<salt length>]" (or pbkdf2_sha1), "argon2id:<t>,<m>,<p>",
 * "argon2i:<t>,<m>,<p>", "bcrypt_sha256:<rounds>", "bcrypt:<rounds>" (python3-bcrypt).
 */
static const char django_py[] =
    "import os\n"
    "from django.conf import settings\n"
    "settings.configure(PASSWORD_HASHERS=[\n"
    "    'django.contrib.auth.hashers.PBKDF2PasswordHasher',\n"
    "    'django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher',\n"
    "    'django.contrib.auth.hashers.Argon2PasswordHasher',\n"
    "    'django.contrib.auth.hashers.BCryptSHA256PasswordHasher',\n"
    "    'django.contrib.auth.hashers.BCryptPasswordHasher'])\n"
    "import argon2\n"
    "from django.contrib.auth import hashers as h\n"
    "from django.utils.crypto import get_random_string\n"
    "def hasher(spec):\n"
    "    name, _, arg = spec.partition(':')\n"
    "    if not arg:\n"
    "        return name, None\n"
    "    if name.startswith('bcrypt'):\n"
    "        base = h.BCryptSHA256PasswordHasher if name == 'bcrypt_sha256' else "
    "h.BCryptPasswordHasher\n"
    "        return type('H', (base,), {'rounds': int(arg)})(), None\n"
    "    if name.startswith('pbkdf2'):\n"
    "        sha1 = name == 'pbkdf2_sha1'\n"
    "        base = h.PBKDF2SHA1PasswordHasher if sha1 else h.PBKDF2PasswordHasher\n"
    "        iters, _, saltlen = arg.partition(':')\n"
    "        salt = get_random_string(int(saltlen)) if saltlen else None\n"
    "        return type('H', (base,), {'iterations': int(iters)})(), salt\n"
    "    t, m, p = map(int, arg.split(','))\n"
    "    ty = argon2.low_level.Type.I if name == 'argon2i' else argon2.low_level.Type.ID\n"
    "    class H(h.Argon2PasswordHasher):\n"
    "        time_cost, memory_cost, parallelism = t, m, p\n"
    "        def params(self):\n"
    "            q = super().params()\n"
    "            return argon2.Parameters(type=ty, version=q.version, salt_len=q.salt_len,\n"
    "                hash_len=q.hash_len, time_cost=t, memory_cost=m, parallelism=p)\n"
    "    return H(), None\n"
    "for line in os.environb[b'RS_DJANGO_REQ'].decode('utf-8').splitlines():\n"
    "    spec, pw = line.split('\\t', 1)\n"
    "    hs, salt = hasher(spec)\n"
    "    enc = h.make_password(pw, salt=salt, hasher=hs)\n"
    "    assert h.check_password(pw, enc), enc\n"
    "    print(enc, flush=True)\n";

static void
setup(void)
{
	cr_assert_eq(rcrypto_init(), 0, "rcrypto_init failed");
}

TestSuite(rcrypto_verify_any, .init = setup);

/* Runs Django on `req` ("<hasher>\t<password>\n" each); out[i] is the i-th hash. */
static void
django_make(const char *req, size_t n, char out[][DJ_HASH_MAX])
{
	FILE *py;
	size_t i;

	cr_assert_eq(setenv("RS_DJANGO_PY", django_py, 1), 0);
	cr_assert_eq(setenv("RS_DJANGO_REQ", req, 1), 0);
	py = popen("/usr/bin/python3 -c \"$RS_DJANGO_PY\"", "r");
	cr_assert_not_null(py, "cannot run /usr/bin/python3");
	for (i = 0; i < n; i++) {
		cr_assert_not_null(
		    fgets(out[i], DJ_HASH_MAX, py), "Django gave %zu of %zu hashes", i, n);
		out[i][strcspn(out[i], "\n")] = '\0';
	}
	cr_assert_eq(pclose(py), 0, "the Django script failed (see stderr)");
}

static bool
verify(const char *pw, const char *stored, bool *rehash)
{
	return rcrypto_verify_any(pw, strlen(pw), stored, &cost, rehash);
}

/* Right password verifies and asks for a rehash; near misses don't verify. */
static void
assert_django_hash(const char *pw, const char *stored)
{
	static const char *const wrong[] = {"", "testpass12", "testpass1234", "Testpass123",
	    "p\xc3\xa4ssw\xc3\xb6rd-u", "pa\xcc\x88ssw\xc3\xb6rd-\xc3\xbc" /* NFD */};
	bool rehash = false;
	size_t i;

	cr_assert(verify(pw, stored, &rehash), "%s does not verify %s", stored, pw);
	cr_assert(rehash, "an imported hash must be rehashed: %s", stored);
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
		if (strcmp(wrong[i], pw) == 0)
			continue;
		rehash = true;
		cr_assert_not(
		    verify(wrong[i], stored, &rehash), "%s verifies %s", stored, wrong[i]);
		cr_assert_not(rehash);
	}
}

/* `stored` is refused, without doing the work its costs ask for. */
static void
assert_refused_fast(const char *pw, const char *stored)
{
	struct timespec t0, t1;
	bool rehash = true;
	double s;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_not(verify(pw, stored, &rehash), "verified: %s", stored);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cr_assert_not(rehash);
	s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	cr_assert_lt(s, FAST_SECONDS, "%s took %.3f s to refuse", stored, s);
}

/* Copies `src` into `dst` with the first occurrence of `from` replaced by `to`. */
static void
replace(char dst[DJ_HASH_MAX], const char *src, const char *from, const char *to)
{
	const char *at = strstr(src, from);

	cr_assert_not_null(at, "%s not in %s", from, src);
	snprintf(dst, DJ_HASH_MAX, "%.*s%s%s", (int)(at - src), src, to, at + strlen(from));
}

/* Copies `src` into `dst` with the character `back` places before the end changed. */
static void
tamper(char dst[DJ_HASH_MAX], const char *src, size_t back)
{
	size_t n = strlen(src);

	cr_assert_gt(n, back);
	memcpy(dst, src, n + 1);
	dst[n - 1 - back] = dst[n - 1 - back] == 'A' ? 'B' : 'A';
}

Test(rcrypto_verify_any, own_argon2id_round_trip, .init = (void (*)(void))rcrypto_init)
{
	char hash[RCRYPTO_HASH_MAX];
	bool rehash = true;

	cr_assert_eq(rcrypto_pwhash("testpass123", 11, &cost, hash), 0);
	cr_assert(rcrypto_verify_any("testpass123", 11, hash, &cost, &rehash));
	cr_assert_not(rehash);
	cr_assert_not(rcrypto_verify_any("testpass124", 11, hash, &cost, &rehash));
}

Test(rcrypto_verify_any, other_cost_needs_rehash, .init = (void (*)(void))rcrypto_init)
{
	const struct rcrypto_cost cheaper = {8192, 2};
	char hash[RCRYPTO_HASH_MAX];
	bool rehash = false;

	cr_assert_eq(rcrypto_pwhash("testpass123", 11, &cheaper, hash), 0);
	cr_assert(rcrypto_verify_any("testpass123", 11, hash, &cost, &rehash));
	cr_assert(rehash);
}

Test(rcrypto_sha256, known_vector)
{
	char out[65];

	rcrypto_sha256_hex("abc", 3, out);
	cr_assert_str_eq(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(rcrypto_verify_any, pbkdf2_sha256_verifies_and_needs_rehash)
{
	char h[3][DJ_HASH_MAX];

	django_make("pbkdf2_sha256:1000\ttestpass123\n"
	            "pbkdf2_sha256:1000\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n"
	            "pbkdf2_sha256:1000\tcorrect horse battery staple \xe2\x9c\x93\n",
	    3, h);
	cr_assert_eq(strncmp(h[0], "pbkdf2_sha256$1000$", 19), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
	assert_django_hash("correct horse battery staple \xe2\x9c\x93", h[2]);
}

Test(rcrypto_verify_any, pbkdf2_sha256_django_default_iterations)
{
	char h[2][DJ_HASH_MAX];

	django_make("pbkdf2_sha256\ttestpass123\n"
	            "pbkdf2_sha256\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n",
	    2, h);
	cr_assert_eq(strncmp(h[0], "pbkdf2_sha256$", 14), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
}

Test(rcrypto_verify_any, pbkdf2_sha1_verifies)
{
	char h[2][DJ_HASH_MAX];

	django_make("pbkdf2_sha1:1000\ttestpass123\n"
	            "pbkdf2_sha1:1000\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n",
	    2, h);
	cr_assert_eq(strncmp(h[0], "pbkdf2_sha1$1000$", 17), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
}

Test(rcrypto_verify_any, bcrypt_sha256_verifies)
{
	char h[2][DJ_HASH_MAX];

	django_make("bcrypt_sha256:4\ttestpass123\n"
	            "bcrypt_sha256:5\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n",
	    2, h);
	cr_assert_eq(strncmp(h[0], "bcrypt_sha256$$2b$04$", 21), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
}

Test(rcrypto_verify_any, bcrypt_verifies)
{
	char h[2][DJ_HASH_MAX];

	django_make("bcrypt:4\ttestpass123\n"
	            "bcrypt:4\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n",
	    2, h);
	cr_assert_eq(strncmp(h[0], "bcrypt$$2b$04$", 14), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
}

/* A 100-character password: bcrypt_sha256 tells a change past byte 72 apart, bcrypt cannot. */
Test(rcrypto_verify_any, bcrypt_long_password_as_django)
{
	char h[2][DJ_HASH_MAX], req[512], pw[101], other[101];
	bool rehash = false;

	memset(pw, 'a', 100);
	pw[100] = '\0';
	memcpy(other, pw, sizeof(pw));
	other[90] = 'b';
	snprintf(req, sizeof(req), "bcrypt_sha256:4\t%s\nbcrypt:4\t%s\n", pw, pw);
	django_make(req, 2, h);
	cr_assert(verify(pw, h[0], &rehash) && rehash);
	cr_assert_not(verify(other, h[0], &rehash));
	cr_assert(verify(pw, h[1], &rehash) && rehash);
	cr_assert(verify(other, h[1], &rehash), "Django's bcrypt reads 72 bytes, and so do we");
}

Test(rcrypto_verify_any, bcrypt_tampered_or_costly_never_verifies)
{
	char h[1][DJ_HASH_MAX], bad[DJ_HASH_MAX];
	bool rehash = true;

	django_make("bcrypt_sha256:4\ttestpass123\n", 1, h);
	tamper(bad, h[0], 5); /* inside the hash */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	tamper(bad, h[0], 40); /* inside the salt */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "bcrypt_sha256$", "bcrypt$"); /* the other hasher */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "$04$", "$03$");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "$2b$", "$2x$");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	cr_assert_not(rehash);
	replace(bad, h[0], "$04$", "$31$"); /* 2^31 rounds: refused before any work */
	assert_refused_fast("testpass123", bad);
	replace(bad, h[0], "$04$", "$17$");
	assert_refused_fast("testpass123", bad);
}

Test(rcrypto_verify_any, pbkdf2_tampered_never_verifies)
{
	char h[1][DJ_HASH_MAX], bad[DJ_HASH_MAX];
	bool rehash = true;

	django_make("pbkdf2_sha256:1000\ttestpass123\n", 1, h);
	tamper(bad, h[0], 10); /* inside the digest */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	tamper(bad, h[0], 50); /* inside the salt */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "$1000$", "$1001$");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "pbkdf2_sha256$", "pbkdf2_sha1$");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "$1000$", "$01000$"); /* Django itself refuses it */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	cr_assert_not(rehash);
}

Test(rcrypto_verify_any, pbkdf2_iterations_out_of_bounds_never_verify)
{
	static const char *const iters[] = {"$10000001$", "$4294967297$",
	    "$99999999999999999999999$", "$0$", "$-1000$", "$+1000$", "$ 1000$", "$1e3$"};
	char h[1][DJ_HASH_MAX], bad[DJ_HASH_MAX];
	size_t i;

	django_make("pbkdf2_sha256:1000\ttestpass123\n", 1, h);
	for (i = 0; i < sizeof(iters) / sizeof(iters[0]); i++) {
		replace(bad, h[0], "$1000$", iters[i]);
		assert_refused_fast("testpass123", bad);
	}
}

Test(rcrypto_verify_any, pbkdf2_salt_length_bounded)
{
	char h[2][DJ_HASH_MAX];
	bool rehash = false;

	django_make("pbkdf2_sha256:1000:128\ttestpass123\n"
	            "pbkdf2_sha256:1000:129\ttestpass123\n",
	    2, h);
	cr_assert(verify("testpass123", h[0], &rehash), "%s", h[0]);
	cr_assert(rehash);
	assert_refused_fast("testpass123", h[1]);
}

Test(rcrypto_verify_any, argon2id_django_default_verifies)
{
	char h[2][DJ_HASH_MAX];

	django_make("argon2\ttestpass123\n"
	            "argon2\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n",
	    2, h);
	cr_assert_eq(strncmp(h[0], "argon2$argon2id$v=19$", 21), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
}

Test(rcrypto_verify_any, argon2i_older_django_verifies)
{
	char h[2][DJ_HASH_MAX];

	django_make("argon2i:2,512,2\ttestpass123\n"
	            "argon2i:2,512,2\tp\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc\n",
	    2, h);
	cr_assert_eq(strncmp(h[0], "argon2$argon2i$v=19$m=512,t=2,p=2$", 34), 0, "%s", h[0]);
	assert_django_hash("testpass123", h[0]);
	assert_django_hash("p\xc3\xa4ssw\xc3\xb6rd-\xc3\xbc", h[1]);
}

Test(rcrypto_verify_any, argon2_tampered_never_verifies)
{
	char h[1][DJ_HASH_MAX], bad[DJ_HASH_MAX];
	bool rehash = true;

	django_make("argon2id:1,64,2\ttestpass123\n", 1, h);
	tamper(bad, h[0], 5); /* inside the digest */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	tamper(bad, h[0], 30); /* inside the salt */
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "t=1,", "t=2,");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "$argon2id$", "$argon2i$");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	replace(bad, h[0], "$argon2id$", "$argon2d$");
	cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
	cr_assert_not(rehash);
}

Test(rcrypto_verify_any, argon2_costs_at_bounds_verify)
{
	char h[2][DJ_HASH_MAX];
	bool rehash = false;

	django_make("argon2id:16,128,16\ttestpass123\n"
	            "argon2id:1,262144,16\ttestpass123\n",
	    2, h);
	assert_django_hash("testpass123", h[0]);
	cr_assert(verify("testpass123", h[1], &rehash), "%s", h[1]); /* 256 MiB each */
	cr_assert(rehash);
	cr_assert_not(verify("testpass124", h[1], &rehash), "%s", h[1]);
}

/* Valid Django hashes, one cost over roster's bound: refused, not computed. */
Test(rcrypto_verify_any, argon2_costs_over_bounds_never_verify)
{
	char h[4][DJ_HASH_MAX], bad[DJ_HASH_MAX];
	size_t i;

	django_make("argon2id:17,64,1\ttestpass123\n"
	            "argon2id:1,136,17\ttestpass123\n"
	            "argon2id:1,262145,1\ttestpass123\n"
	            "argon2i:17,64,1\ttestpass123\n",
	    4, h);
	for (i = 0; i < 4; i++)
		assert_refused_fast("testpass123", h[i]);
	replace(bad, h[0], "m=64,t=17,", "m=4194304,t=16,");
	assert_refused_fast("testpass123", bad);
	replace(bad, h[0], "m=64,t=17,", "m=64,t=4294967297,");
	assert_refused_fast("testpass123", bad);
	replace(bad, h[0], "m=64,t=17,", "m=64,t=1000000,");
	assert_refused_fast("testpass123", bad);
}

Test(rcrypto_verify_any, garbage_never_verifies)
{
	static const char *const garbage[] = {"", "$", "$argon2id$", "$argon2id$v=19$m=8,t=1,p=1",
	    "pbkdf2_sha256$", "pbkdf2_sha256$1000", "pbkdf2_sha256$1000$", "pbkdf2_sha256$1000$$",
	    "pbkdf2_sha256$1000$salt$",
	    "pbkdf2_sha256$1000$salt$====", "pbkdf2_sha256$1000$salt$not base64!",
	    "pbkdf2_sha256$1000$salt$AAAA", "pbkdf2_sha256$abc$salt$hash",
	    "pbkdf2_sha256$$salt$hash", "pbkdf2_sha1$", "pbkdf2_sha512$1000$salt$AAAA",
	    "PBKDF2_SHA256$1000$salt$AAAA", "argon2", "argon2$", "argon2$argon2id",
	    "argon2$argon2id$", "argon2$argon2id$v=19$",
	    "argon2$argon2id$v=19$m=999999999,t=2,p=8$x$y", "argon2$argon2id$v=19$m=,t=,p=$x$y",
	    "argon2$argon2id$v=19$m=64,t=1,p=1$x$y", "argon2$argon2id$v=19$m=64,t=1,p=0$x$y",
	    "argon2$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
	    "argon2$argon2id$v=99$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
	    "argon2$argon2d$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
	    "argon2$$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo", "argon2$argon2",
	    "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuv", "md5$salt$hash", "!unusable",
	    "sha1$$da39a3ee5e6b4b0d3255bfef95601890afd80709", "testpass123"};
	char big[70000];
	bool rehash;
	size_t i;

	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		rehash = true;
		cr_assert_not(verify("testpass123", garbage[i], &rehash), "%s", garbage[i]);
		cr_assert_not(rehash);
	}
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "pbkdf2_sha256$1000$salt$", 24);
	cr_assert_not(verify("testpass123", big, &rehash));
	memcpy(big, "argon2$argon2id$v=19$m=64,t=1,p=1$", 34);
	cr_assert_not(verify("testpass123", big, &rehash));
}

/* Every prefix of a real hash, and the hash with a suffix, is refused. */
Test(rcrypto_verify_any, truncated_or_extended_never_verifies)
{
	static const char *const suffix[] = {"$", "=", "A", "\n", " ", "$AAAA"};
	char h[2][DJ_HASH_MAX], bad[DJ_HASH_MAX];
	bool rehash;
	size_t i, j, n;

	django_make("pbkdf2_sha256:1000\ttestpass123\n"
	            "argon2id:1,64,2\ttestpass123\n",
	    2, h);
	for (i = 0; i < 2; i++) {
		n = strlen(h[i]);
		for (j = 0; j < n; j++) {
			memcpy(bad, h[i], j);
			bad[j] = '\0';
			rehash = true;
			cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
			cr_assert_not(rehash);
		}
		for (j = 0; j < sizeof(suffix) / sizeof(suffix[0]); j++) {
			snprintf(bad, sizeof(bad), "%s%s", h[i], suffix[j]);
			cr_assert_not(verify("testpass123", bad, &rehash), "%s", bad);
		}
	}
}

Test(rcrypto_verify_any, empty_password_never_verifies)
{
	char h[3][DJ_HASH_MAX], own[RCRYPTO_HASH_MAX];
	bool rehash = true;
	size_t i;

	django_make("pbkdf2_sha256:1000\t\n"
	            "pbkdf2_sha1:1000\t\n"
	            "argon2id:1,64,2\t\n",
	    3, h);
	cr_assert_eq(rcrypto_pwhash("", 0, &cost, own), 0);
	for (i = 0; i < 3; i++)
		cr_assert_not(verify("", h[i], &rehash), "%s", h[i]);
	cr_assert_not(verify("", own, &rehash));
	cr_assert_not(rehash);
}
