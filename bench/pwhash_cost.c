/*
 * pwhash_cost: wall time of one argon2id hash at roster's cost, with the same
 * call roster makes (libsodium crypto_pwhash_str_alg, parallelism 1).
 *
 *   pwhash_cost [COUNT [MEMORY_KIB [PASSES]]]     defaults: 20 19456 2
 *
 * Prints one line: "median_ms=... min_ms=... max_ms=... count=... memory_kib=... passes=...".
 * Used by bench/run to compute the hash-bound ceiling (cores / median).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static long
arg(int argc, char **argv, int i, long def, long min, long max)
{
	char *end;
	long v;

	if (argc <= i)
		return def;
	v = strtol(argv[i], &end, 10);
	if (*argv[i] == '\0' || *end != '\0' || v < min || v > max) {
		fprintf(
		    stderr, "pwhash_cost: bad argument '%s' (want %ld..%ld)\n", argv[i], min, max);
		exit(2);
	}
	return v;
}

int
main(int argc, char **argv)
{
	static const char pw[] = "correct-Horse-battery-9";
	char out[crypto_pwhash_STRBYTES];
	long count = arg(argc, argv, 1, 20, 1, 10000);
	long mem_kib = arg(argc, argv, 2, 19456, 8, 4L * 1024 * 1024);
	long passes = arg(argc, argv, 3, 2, 1, 100);
	double *ms;

	if (sodium_init() < 0) {
		fprintf(stderr, "pwhash_cost: sodium_init failed\n");
		return 1;
	}
	ms = calloc((size_t)count, sizeof(*ms));
	if (ms == NULL)
		return 1;
	for (long i = 0; i < count; i++) {
		struct timespec t0, t1;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (crypto_pwhash_str_alg(out, pw, strlen(pw), (unsigned long long)passes,
		        (size_t)mem_kib * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0) {
			fprintf(
			    stderr, "pwhash_cost: crypto_pwhash_str_alg failed (out of memory?)\n");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		ms[i] =
		    (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	}
	qsort(ms, (size_t)count, sizeof(*ms), cmp_double);
	printf("median_ms=%.3f min_ms=%.3f max_ms=%.3f count=%ld memory_kib=%ld passes=%ld\n",
	    count % 2 ? ms[count / 2] : (ms[count / 2 - 1] + ms[count / 2]) / 2, ms[0],
	    ms[count - 1], count, mem_kib, passes);
	free(ms);
	return 0;
}
