/*
 * Unit tests for src/accounts/password.c: the password policy, equivalent to
 * Django's four default validators. Expected results were checked against
 * Django 3.2's password_validation and difflib.SequenceMatcher.quick_ratio.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accounts/acct.h"
#include "support.h"

static bool
has_msg(const struct acct_errors *errs, const char *msg)
{
	for (size_t i = 0; i < errs->n && i < ACCT_ERRORS_MAX; i++)
		if (errs->items[i].message != NULL && strcmp(errs->items[i].message, msg) == 0)
			return true;
	return false;
}

static void
dump(const struct acct_errors *errs, char *buf, size_t size)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < errs->n && i < ACCT_ERRORS_MAX && off < size; i++)
		off += (size_t)snprintf(buf + off, size - off, "[%s: %s] ",
		    errs->items[i].field ? errs->items[i].field : "(null)",
		    errs->items[i].message ? errs->items[i].message : "(null)");
}

/* Runs the policy; every error must be on the "password" field. */
static bool
check(const char *pw, size_t len, const char *user, const char *mail, struct acct_errors *errs)
{
	bool ok;

	memset(errs, 0, sizeof *errs);
	ok = acct_password_check(pw, len, user, mail, errs);
	cr_assert_leq(errs->n, ACCT_ERRORS_MAX);
	for (size_t i = 0; i < errs->n; i++) {
		cr_assert_not_null(errs->items[i].field);
		cr_assert_str_eq(errs->items[i].field, "password");
		cr_assert_not_null(errs->items[i].message);
	}
	cr_assert_eq(ok, errs->n == 0, "returned %d with %zu errors", ok, errs->n);
	return ok;
}

static void
expect_msgs(const char *pw, size_t len, const char *user, const char *mail, const char *const *msgs,
    size_t nmsgs)
{
	struct acct_errors errs;
	char buf[1024];

	cr_assert_not(check(pw, len, user, mail, &errs), "\"%.40s\" accepted", pw);
	dump(&errs, buf, sizeof buf);
	for (size_t i = 0; i < nmsgs; i++)
		cr_assert(
		    has_msg(&errs, msgs[i]), "\"%.40s\": missing \"%s\"; got %s", pw, msgs[i], buf);
	cr_assert_eq(errs.n, nmsgs, "\"%.40s\": expected %zu errors, got %s", pw, nmsgs, buf);
}

#define EXPECT(pw, user, mail, ...)                                                                \
	do {                                                                                       \
		static const char *const m_[] = {__VA_ARGS__};                                     \
		expect_msgs((pw), strlen(pw), (user), (mail), m_, sizeof m_ / sizeof m_[0]);       \
	} while (0)

static void
expect_ok(const char *pw, const char *user, const char *mail)
{
	struct acct_errors errs;
	char buf[1024];
	bool ok = check(pw, strlen(pw), user, mail, &errs);

	dump(&errs, buf, sizeof buf);
	cr_assert(ok, "\"%s\" rejected: %s", pw, buf);
	cr_assert_eq(errs.n, 0);
}

/* ---- acct_password_check ---- */

Test(acct_password, good_password_passes)
{
	expect_ok("testpass123", "user_1", "shared@example.com");
	expect_ok("Xq7!kz#mv92Lp", "johnsmith", "john.smith@example.com");
}

Test(acct_password, username_and_email_may_be_null)
{
	expect_ok("testpass123", NULL, NULL);
	expect_ok("testpass123", "user_1", NULL);
	expect_ok("testpass123", NULL, "shared@example.com");
}

Test(acct_password, common_passwords_rejected)
{
	EXPECT("password123", NULL, NULL, ACCT_MSG_PW_COMMON);
	EXPECT("qwerty123", NULL, NULL, ACCT_MSG_PW_COMMON);
	EXPECT("12345678", NULL, NULL, ACCT_MSG_PW_COMMON, ACCT_MSG_PW_NUMERIC);
}

Test(acct_password, common_check_ignores_case)
{
	EXPECT("PassWord123", NULL, NULL, ACCT_MSG_PW_COMMON);
	EXPECT("PASSWORD123", NULL, NULL, ACCT_MSG_PW_COMMON);
}

Test(acct_password, common_check_ignores_surrounding_spaces)
{
	EXPECT("  password123 ", NULL, NULL, ACCT_MSG_PW_COMMON);
}

Test(acct_password, entirely_numeric_rejected)
{
	/* In Django's list too. */
	EXPECT("1234567890123", NULL, NULL, ACCT_MSG_PW_COMMON, ACCT_MSG_PW_NUMERIC);
	/* Not in the list: numeric only. */
	EXPECT("9182736450917", NULL, NULL, ACCT_MSG_PW_NUMERIC);
}

Test(acct_password, unicode_digits_are_numeric)
{
	/* Django uses str.isdigit(): FULLWIDTH DIGITs are digits. */
	EXPECT("\uFF19\uFF11\uFF18\uFF12\uFF17\uFF13\uFF16\uFF14\uFF15\uFF10", NULL, NULL,
	    ACCT_MSG_PW_NUMERIC);
}

Test(acct_password, digits_with_a_letter_not_numeric)
{
	expect_ok("9182736450917x", NULL, NULL);
}

Test(acct_password, too_short_rejected)
{
	EXPECT("short1!", NULL, NULL, ACCT_MSG_PW_TOO_SHORT);
}

Test(acct_password, eight_characters_long_enough)
{
	expect_ok("xq7!kz#m", NULL, NULL);
}

Test(acct_password, length_counts_characters_not_bytes)
{
	/* 7 characters in 14 bytes: short. 8 characters in 16 bytes: fine. */
	EXPECT("\u00E9\u00E8\u00EA\u00EB\u0113\u0117\u0119", NULL, NULL, ACCT_MSG_PW_TOO_SHORT);
	expect_ok("\u00E9\u00E8\u00EA\u00EB\u0113\u0117\u0119\u011B", NULL, NULL);
}

Test(acct_password, too_long_rejected)
{
	char *pw = malloc(ACCT_PASSWORD_MAX_BYTES + 2);
	struct acct_errors errs;

	cr_assert_not_null(pw);
	for (size_t i = 0; i < ACCT_PASSWORD_MAX_BYTES + 1; i++)
		pw[i] = (char)('a' + (i * 7) % 26);
	pw[ACCT_PASSWORD_MAX_BYTES + 1] = '\0';
	cr_assert_eq(strlen(pw), 4097);
	cr_assert_not(check(pw, 4097, "user_1", "shared@example.com", &errs));
	cr_assert(has_msg(&errs, ACCT_MSG_PW_TOO_LONG), "4097 bytes: no too-long error");
	free(pw);
}

Test(acct_password, max_bytes_not_too_long)
{
	char *pw = malloc(ACCT_PASSWORD_MAX_BYTES + 1);
	struct acct_errors errs;

	cr_assert_not_null(pw);
	for (size_t i = 0; i < ACCT_PASSWORD_MAX_BYTES; i++)
		pw[i] = (char)('a' + (i * 7) % 26);
	pw[ACCT_PASSWORD_MAX_BYTES] = '\0';
	cr_assert(check(pw, 4096, "user_1", "shared@example.com", &errs),
	    "4096 bytes rejected, %zu errors, first: %s", errs.n,
	    errs.n ? errs.items[0].message : "");
	free(pw);
}

Test(acct_password, too_long_counts_bytes)
{
	/* 2049 "é" = 4098 bytes but only 2049 characters: still too long. */
	size_t n = 2049;
	char *pw = malloc(2 * n + 1);
	struct acct_errors errs;

	cr_assert_not_null(pw);
	for (size_t i = 0; i < n; i++)
		memcpy(pw + 2 * i, "\u00E9", 2);
	pw[2 * n] = '\0';
	cr_assert_not(check(pw, 2 * n, NULL, NULL, &errs));
	cr_assert(has_msg(&errs, ACCT_MSG_PW_TOO_LONG));
	free(pw);
}

Test(acct_password, respects_len)
{
	/* Only the first 11 bytes are the password. */
	struct acct_errors errs;

	cr_assert(check("testpass123\0password", 11, NULL, NULL, &errs));
	cr_assert_not(check("password123XYZ", 11, NULL, NULL, &errs));
	cr_assert(has_msg(&errs, ACCT_MSG_PW_COMMON));
}

Test(acct_password, input_need_not_be_nul_terminated)
{
	size_t len;
	char *pw = unterminated("testpass123", &len);
	struct acct_errors errs;

	cr_assert(check(pw, len, "user_1", "shared@example.com", &errs));
	cr_assert_not(acct_password_is_common(pw, len));
	unterminated_free(pw, len);
	pw = unterminated("Password123 ", &len);
	cr_assert(acct_password_is_common(pw, len));
	cr_assert_not(check(pw, len, NULL, NULL, &errs));
	cr_assert(has_msg(&errs, ACCT_MSG_PW_COMMON));
	unterminated_free(pw, len);
}

Test(acct_password, similar_to_username_rejected)
{
	EXPECT("johnsmith99", "johnsmith", "x@example.com", ACCT_MSG_PW_SIMILAR_USERNAME);
}

Test(acct_password, similarity_ignores_case)
{
	EXPECT("JohnSmith99", "johnsmith", "x@example.com", ACCT_MSG_PW_SIMILAR_USERNAME);
	EXPECT("johnsmith99", "JOHNSMITH", "x@example.com", ACCT_MSG_PW_SIMILAR_USERNAME);
}

Test(acct_password, similarity_ignores_order)
{
	/* quick_ratio compares character multisets: a reversed username is 1.0. */
	EXPECT("htimsnhoj", "johnsmith", NULL, ACCT_MSG_PW_SIMILAR_USERNAME);
}

Test(acct_password, similar_to_username_part_rejected)
{
	/* 0.77 against the part "smith", only 0.56 against "john.smith". */
	EXPECT("smithy12", "john.smith", NULL, ACCT_MSG_PW_SIMILAR_USERNAME);
}

Test(acct_password, similar_to_email_local_part_rejected)
{
	EXPECT("alicewonder1", "zed", "alicewonder@example.com", ACCT_MSG_PW_SIMILAR_EMAIL);
}

Test(acct_password, similar_to_email_part_rejected)
{
	EXPECT("smithjohn7", "zed", "zz.smithjohn@example.com", ACCT_MSG_PW_SIMILAR_EMAIL);
}

Test(acct_password, dissimilar_to_email_accepted)
{
	expect_ok("smithjohn7", "zed", "john.smith@example.com");
	expect_ok("xq7!kz#mv92", "zed", "alicewonder@example.com");
}

Test(acct_password, several_problems_all_collected)
{
	EXPECT(
	    "1234567", NULL, NULL, ACCT_MSG_PW_TOO_SHORT, ACCT_MSG_PW_COMMON, ACCT_MSG_PW_NUMERIC);
}

Test(acct_password, problems_in_djangos_order)
{
	/* Django runs similarity, length, common, numeric in that order. */
	struct acct_errors errs;

	cr_assert_not(check("1234567", 7, "12345", "x@example.com", &errs));
	cr_assert_eq(errs.n, 4);
	cr_assert_str_eq(errs.items[0].message, ACCT_MSG_PW_SIMILAR_USERNAME);
	cr_assert_str_eq(errs.items[1].message, ACCT_MSG_PW_TOO_SHORT);
	cr_assert_str_eq(errs.items[2].message, ACCT_MSG_PW_COMMON);
	cr_assert_str_eq(errs.items[3].message, ACCT_MSG_PW_NUMERIC);
}

Test(acct_password, invalid_utf8_rejected)
{
	struct acct_errors errs;

	cr_assert_not(check("testpass\xff\xfe"
	                    "123",
	    13, NULL, NULL, &errs));
	cr_assert_geq(errs.n, 1);
}

Test(acct_password, appends_to_existing_errors)
{
	struct acct_errors errs = {0};

	acct_errors_add(&errs, "username", ACCT_MSG_USERNAME_INVALID);
	cr_assert_not(acct_password_check("short1!", 7, NULL, NULL, &errs));
	cr_assert_eq(errs.n, 2);
	cr_assert_str_eq(errs.items[0].field, "username");
	cr_assert_str_eq(errs.items[1].field, "password");
	cr_assert_str_eq(errs.items[1].message, ACCT_MSG_PW_TOO_SHORT);
}

/* ---- acct_password_is_common, the list ---- */

Test(acct_password, is_common)
{
	cr_assert(acct_password_is_common("password", 8));
	cr_assert(acct_password_is_common("password123", 11));
	cr_assert(acct_password_is_common("PassWord123", 11));
	cr_assert(acct_password_is_common(" qwerty123  ", 12));
	cr_assert(acct_password_is_common("12345678", 8));
	cr_assert_not(acct_password_is_common("testpass123", 11));
	cr_assert_not(acct_password_is_common("Xq7!kz#mv92Lp", 13));
	cr_assert_not(acct_password_is_common("", 0));
}

Test(acct_password, is_common_respects_len)
{
	cr_assert(acct_password_is_common("password123xyz", 11));
	cr_assert(acct_password_is_common("passwordXq7!", 8));
	cr_assert_not(acct_password_is_common("passwordXq7!", 12));
}

Test(acct_password, common_list_is_djangos)
{
	size_t n = acct_common_password_count();

	cr_assert_geq(n, 10000, "only %zu common passwords", n);
}

/* ---- acct_similarity ---- */

Test(acct_similarity, identical_is_one)
{
	cr_assert_float_eq(acct_similarity("johnsmith", "johnsmith"), 1.0, 1e-9);
}

Test(acct_similarity, disjoint_is_zero)
{
	cr_assert_float_eq(acct_similarity("abc", "xyz"), 0.0, 1e-9);
}

Test(acct_similarity, matches_difflib_quick_ratio)
{
	/* difflib.SequenceMatcher(a="abcd", b="bcde").quick_ratio() == 0.75 */
	cr_assert_float_eq(acct_similarity("abcd", "bcde"), 0.75, 1e-9);
	/* ...("johnsmith99", "johnsmith") == 18/20 */
	cr_assert_float_eq(acct_similarity("johnsmith99", "johnsmith"), 0.9, 1e-9);
	/* ...("smith1234", "smith") == 10/14 */
	cr_assert_float_eq(acct_similarity("smith1234", "smith"), 10.0 / 14.0, 1e-9);
	/* repeated characters count as a multiset: ("aab", "abb") == 4/6 */
	cr_assert_float_eq(acct_similarity("aab", "abb"), 4.0 / 6.0, 1e-9);
}

Test(acct_similarity, order_does_not_matter)
{
	cr_assert_float_eq(acct_similarity("abcd", "dcba"), 1.0, 1e-9);
}

Test(acct_similarity, symmetric)
{
	cr_assert_float_eq(
	    acct_similarity("password", "pass"), acct_similarity("pass", "password"), 1e-9);
	cr_assert_float_eq(acct_similarity("pass", "password"), 8.0 / 12.0, 1e-9);
}

Test(acct_similarity, counts_characters_not_bytes)
{
	/* Python strs: {é, a} vs {è, a} share one of two characters: 0.5 (bytes would give 0.67).
	 */
	cr_assert_float_eq(acct_similarity("\u00E9a", "\u00E8a"), 0.5, 1e-9);
}

/* ---- stack use: the checks run on HTTP I/O threads ---- */

struct check_job {
	char *pw;
	bool ok;
	bool common;
};

static void *
run_check(void *arg)
{
	struct check_job *j = arg;
	struct acct_errors errs = {.n = 0};

	j->ok = acct_password_check(j->pw, strlen(j->pw), "someone", "someone@example.com", &errs);
	j->common = acct_password_is_common(j->pw, strlen(j->pw));
	return NULL;
}

/*
 * Issue 9: the checks kept 48 KiB of work arrays on the calling thread's
 * stack. On a thread with a 40 KiB stack (the whole stack, guard page below
 * it) a longest password must pass through every check: the work arrays live
 * on the heap.
 */
Test(acct_password, longest_password_checks_fit_a_small_stack)
{
	pthread_attr_t attr;
	pthread_t t;
	struct check_job j = {.pw = malloc(ACCT_PASSWORD_MAX_BYTES + 1)};

	cr_assert_not_null(j.pw);
	for (size_t i = 0; i < ACCT_PASSWORD_MAX_BYTES; i++)
		j.pw[i] = (char)('a' + (i * 7) % 26);
	j.pw[ACCT_PASSWORD_MAX_BYTES] = '\0';
	cr_assert_eq(pthread_attr_init(&attr), 0);
	cr_assert_eq(pthread_attr_setstacksize(&attr, 40 * 1024), 0);
	cr_assert_eq(pthread_create(&t, &attr, run_check, &j), 0);
	cr_assert_eq(pthread_join(t, NULL), 0);
	cr_assert(j.ok, "a long varied password passes the policy");
	cr_assert_not(j.common);
	pthread_attr_destroy(&attr);
	free(j.pw);
}
