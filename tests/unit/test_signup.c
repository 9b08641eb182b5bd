/*
 * Unit tests for src/accounts/signup.c: registration input validation with
 * every problem collected per field, and the role helpers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accounts/acct.h"
#include "support.h"

static struct acct_signup_input
input(const char *user, const char *mail, const char *pw)
{
	struct acct_signup_input in = {
	    .username = user,
	    .username_len = user ? strlen(user) : 0,
	    .email = mail,
	    .email_len = mail ? strlen(mail) : 0,
	    .password = pw,
	    .password_len = pw ? strlen(pw) : 0,
	    .role = NULL,
	    .bio = NULL,
	    .bio_len = 0,
	};

	return in;
}

static struct acct_signup_input
valid_input(void)
{
	return input("John_1", " John@Example.com ", "testpass123");
}

static bool
has(const struct acct_errors *errs, const char *field, const char *msg)
{
	for (size_t i = 0; i < errs->n && i < ACCT_ERRORS_MAX; i++)
		if (errs->items[i].field != NULL && errs->items[i].message != NULL &&
		    strcmp(errs->items[i].field, field) == 0 &&
		    strcmp(errs->items[i].message, msg) == 0)
			return true;
	return false;
}

static size_t
count_field(const struct acct_errors *errs, const char *field)
{
	size_t n = 0;

	for (size_t i = 0; i < errs->n && i < ACCT_ERRORS_MAX; i++)
		if (errs->items[i].field != NULL && strcmp(errs->items[i].field, field) == 0)
			n++;
	return n;
}

static const char *
dump(const struct acct_errors *errs)
{
	static char buf[2048];
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < errs->n && i < ACCT_ERRORS_MAX && off < sizeof buf; i++)
		off += (size_t)snprintf(buf + off, sizeof buf - off, "[%s: %s] ",
		    errs->items[i].field ? errs->items[i].field : "(null)",
		    errs->items[i].message ? errs->items[i].message : "(null)");
	return buf;
}

static void
assert_cleared(const struct acct_signup *s)
{
	cr_assert_null(s->username);
	cr_assert_null(s->username_key);
	cr_assert_null(s->email);
	cr_assert_null(s->email_key);
	cr_assert_null(s->password);
	cr_assert_null(s->role);
	cr_assert_null(s->bio);
}

/* Validates `in`, expecting ACCT_INVALID, a cleared `out` and well-formed errors. */
static void
validate_invalid(const struct acct_signup_input *in, struct acct_errors *errs)
{
	struct acct_signup out = {0};
	enum acct_status st;

	memset(errs, 0, sizeof *errs);
	st = acct_signup_validate(in, &out, errs);
	cr_assert_eq(st, ACCT_INVALID, "status %d, errors %s", st, dump(errs));
	cr_assert_gt(errs->n, 0);
	cr_assert_leq(errs->n, ACCT_ERRORS_MAX);
	assert_cleared(&out);
}

static char *
repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * n + 1);

	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

/* ---- acct_signup_validate ---- */

Test(acct_signup, valid_input_fills_every_field)
{
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_eq(errs.n, 0);
	cr_assert_str_eq(out.username, "John_1");
	cr_assert_str_eq(out.username_key, "john_1");
	cr_assert_str_eq(out.email, "John@Example.com");
	cr_assert_str_eq(out.email_key, "john@example.com");
	cr_assert_not_null(out.password);
	cr_assert_eq(out.password_len, 11);
	cr_assert_eq(memcmp(out.password, "testpass123", 11), 0);
	cr_assert_str_eq(out.role, ACCT_DEFAULT_ROLE);
	cr_assert_str_eq(out.role, "explorer");
	cr_assert_str_eq(out.bio, "");
	acct_signup_clear(&out);
}

Test(acct_signup, output_owns_copies)
{
	char user[] = "John_1", mail[] = "john@example.com", pw[] = "testpass123";
	char role[] = "teacher", bio[] = "hello";
	struct acct_signup_input in = input(user, mail, pw);
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	in.role = role;
	in.bio = bio;
	in.bio_len = strlen(bio);
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_neq((void *)out.password, (void *)pw);
	cr_assert_neq((void *)out.role, (void *)role);
	cr_assert_neq((void *)out.bio, (void *)bio);
	/* Scribble over the borrowed input: the output must not change. */
	memset(user, 'x', strlen(user));
	memset(mail, 'x', strlen(mail));
	memset(pw, 'x', strlen(pw));
	memset(role, 'x', strlen(role));
	memset(bio, 'x', strlen(bio));
	cr_assert_str_eq(out.username, "John_1");
	cr_assert_str_eq(out.email, "john@example.com");
	cr_assert_eq(memcmp(out.password, "testpass123", 11), 0);
	cr_assert_str_eq(out.role, "teacher");
	cr_assert_str_eq(out.bio, "hello");
	acct_signup_clear(&out);
}

Test(acct_signup, explicit_role_and_bio_kept)
{
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	in.role = "explorer";
	in.bio = "I like maps.";
	in.bio_len = strlen(in.bio);
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_str_eq(out.role, "explorer");
	cr_assert_str_eq(out.bio, "I like maps.");
	acct_signup_clear(&out);
}

Test(acct_signup, bio_len_respected)
{
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	in.bio = "hello, world";
	in.bio_len = 5;
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_str_eq(out.bio, "hello");
	acct_signup_clear(&out);
}

Test(acct_signup, teacher_is_a_known_role_here)
{
	/* Who may self-register as a teacher is the caller's policy, not validation. */
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	in.role = "teacher";
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_str_eq(out.role, "teacher");
	acct_signup_clear(&out);
}

Test(acct_signup, missing_fields_all_required)
{
	struct acct_signup_input in = input(NULL, NULL, NULL);
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "username", ACCT_MSG_REQUIRED), "%s", dump(&errs));
	cr_assert(has(&errs, "email", ACCT_MSG_REQUIRED), "%s", dump(&errs));
	cr_assert(has(&errs, "password", ACCT_MSG_REQUIRED), "%s", dump(&errs));
	cr_assert_eq(errs.n, 3, "%s", dump(&errs));
}

Test(acct_signup, one_missing_field_reported)
{
	struct acct_signup_input in = input("John_1", NULL, "testpass123");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "email", ACCT_MSG_REQUIRED), "%s", dump(&errs));
	cr_assert_eq(count_field(&errs, "username"), 0, "%s", dump(&errs));
	cr_assert_eq(count_field(&errs, "password"), 0, "%s", dump(&errs));
}

Test(acct_signup, empty_fields_blank)
{
	struct acct_signup_input in = input("", "", "");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "username", ACCT_MSG_BLANK), "%s", dump(&errs));
	cr_assert(has(&errs, "email", ACCT_MSG_BLANK), "%s", dump(&errs));
	cr_assert(has(&errs, "password", ACCT_MSG_BLANK), "%s", dump(&errs));
}

Test(acct_signup, bio_501_too_long)
{
	struct acct_signup_input in = valid_input();
	char *bio = repeat("b", 501);
	struct acct_errors errs;

	in.bio = bio;
	in.bio_len = 501;
	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "bio", ACCT_MSG_BIO_TOO_LONG), "%s", dump(&errs));
	cr_assert_eq(errs.n, 1, "%s", dump(&errs));
	free(bio);
}

Test(acct_signup, bio_500_characters_ok_even_multibyte)
{
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};
	char *bio = repeat("\u00E9", 500); /* 1000 bytes */

	in.bio = bio;
	in.bio_len = strlen(bio);
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_str_eq(out.bio, bio);
	acct_signup_clear(&out);
	free(bio);
}

Test(acct_signup, unknown_role_invalid)
{
	struct acct_signup_input in = valid_input();
	struct acct_errors errs;

	in.role = "wizard";
	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "role", ACCT_MSG_ROLE_INVALID), "%s", dump(&errs));
	cr_assert_eq(errs.n, 1, "%s", dump(&errs));
}

Test(acct_signup, username_problem_on_username_field)
{
	struct acct_signup_input in = input("a b", "john@example.com", "testpass123");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "username", ACCT_MSG_USERNAME_INVALID), "%s", dump(&errs));
	cr_assert_eq(errs.n, 1, "%s", dump(&errs));
}

Test(acct_signup, invisible_username_rejected)
{
	struct acct_signup_input in = input("jo\u200Bhn", "john@example.com", "testpass123");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "username", ACCT_MSG_INVISIBLE), "%s", dump(&errs));
}

Test(acct_signup, email_problem_on_email_field)
{
	struct acct_signup_input in = input("John_1", "a@b", "testpass123");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "email", ACCT_MSG_EMAIL_INVALID), "%s", dump(&errs));
	cr_assert_eq(errs.n, 1, "%s", dump(&errs));
}

Test(acct_signup, valid_username_freed_when_email_invalid)
{
	/* validate_invalid checks that the already-normalised username is not left in out. */
	struct acct_signup_input in = input("John_1", "no-at", "testpass123");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "email", ACCT_MSG_EMAIL_INVALID), "%s", dump(&errs));
}

Test(acct_signup, password_policy_applied)
{
	struct acct_signup_input in = input("John_1", "john@example.com", "1234567");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "password", ACCT_MSG_PW_TOO_SHORT), "%s", dump(&errs));
	cr_assert(has(&errs, "password", ACCT_MSG_PW_NUMERIC), "%s", dump(&errs));
	cr_assert(has(&errs, "password", ACCT_MSG_PW_COMMON), "%s", dump(&errs));
}

Test(acct_signup, password_compared_with_username)
{
	struct acct_signup_input in = input("johnsmith", "x@example.com", "johnsmith99");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "password", ACCT_MSG_PW_SIMILAR_USERNAME), "%s", dump(&errs));
}

Test(acct_signup, password_compared_with_email)
{
	struct acct_signup_input in = input("zed", "alicewonder@example.com", "alicewonder1");
	struct acct_errors errs;

	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "password", ACCT_MSG_PW_SIMILAR_EMAIL), "%s", dump(&errs));
}

Test(acct_signup, password_too_long_rejected)
{
	struct acct_signup_input in = valid_input();
	char *pw = repeat("Xq7!", 1025); /* 4100 bytes */
	struct acct_errors errs;

	in.password = pw;
	in.password_len = strlen(pw);
	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "password", ACCT_MSG_PW_TOO_LONG), "%s", dump(&errs));
	free(pw);
}

Test(acct_signup, errors_on_every_field_reported_at_once)
{
	struct acct_signup_input in = input("a b", "no-at", "123");
	char *bio = repeat("b", 501);
	struct acct_errors errs;

	in.role = "wizard";
	in.bio = bio;
	in.bio_len = 501;
	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "username", ACCT_MSG_USERNAME_INVALID), "%s", dump(&errs));
	cr_assert(has(&errs, "email", ACCT_MSG_EMAIL_INVALID), "%s", dump(&errs));
	cr_assert(has(&errs, "password", ACCT_MSG_PW_TOO_SHORT), "%s", dump(&errs));
	cr_assert(has(&errs, "password", ACCT_MSG_PW_NUMERIC), "%s", dump(&errs));
	cr_assert(has(&errs, "role", ACCT_MSG_ROLE_INVALID), "%s", dump(&errs));
	cr_assert(has(&errs, "bio", ACCT_MSG_BIO_TOO_LONG), "%s", dump(&errs));
	free(bio);
}

Test(acct_signup, valid_input_need_not_be_nul_terminated)
{
	struct acct_signup_input in = {0};
	struct acct_signup out = {0};
	struct acct_errors errs = {0};
	char *u = unterminated("John_1", &in.username_len);
	char *m = unterminated("john@example.com", &in.email_len);
	char *p = unterminated("testpass123", &in.password_len);
	char *b = unterminated("hello", &in.bio_len);

	in.username = u;
	in.email = m;
	in.password = p;
	in.bio = b;
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	cr_assert_str_eq(out.username, "John_1");
	cr_assert_str_eq(out.email, "john@example.com");
	cr_assert_eq(memcmp(out.password, "testpass123", 11), 0);
	cr_assert_str_eq(out.bio, "hello");
	acct_signup_clear(&out);
	unterminated_free(u, in.username_len);
	unterminated_free(m, in.email_len);
	unterminated_free(p, in.password_len);
	unterminated_free(b, in.bio_len);
}

Test(acct_signup, invalid_input_need_not_be_nul_terminated)
{
	/* The password is still compared with an invalid username/email: within their lengths. */
	struct acct_signup_input in = {0};
	struct acct_errors errs;
	char *u = unterminated("a b", &in.username_len);
	char *m = unterminated("no-at", &in.email_len);
	char *p = unterminated("testpass123", &in.password_len);

	in.username = u;
	in.email = m;
	in.password = p;
	validate_invalid(&in, &errs);
	cr_assert(has(&errs, "username", ACCT_MSG_USERNAME_INVALID), "%s", dump(&errs));
	cr_assert(has(&errs, "email", ACCT_MSG_EMAIL_INVALID), "%s", dump(&errs));
	unterminated_free(u, in.username_len);
	unterminated_free(m, in.email_len);
	unterminated_free(p, in.password_len);
}

/* ---- acct_signup_clear ---- */

Test(acct_signup, clear_leaves_pointers_null)
{
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "errors %s", dump(&errs));
	acct_signup_clear(&out);
	assert_cleared(&out);
}

Test(acct_signup, clear_twice_and_on_empty_is_safe)
{
	struct acct_signup empty = {0};
	struct acct_signup_input in = valid_input();
	struct acct_signup out = {0};
	struct acct_errors errs = {0};

	acct_signup_clear(&empty);
	assert_cleared(&empty);
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK);
	acct_signup_clear(&out);
	acct_signup_clear(&out);
	assert_cleared(&out);
}

/* ---- acct_errors ---- */

Test(acct_errors, add_appends_in_order)
{
	struct acct_errors errs = {0};

	acct_errors_add(&errs, "username", ACCT_MSG_BLANK);
	acct_errors_add(&errs, "email", ACCT_MSG_EMAIL_INVALID);
	cr_assert_eq(errs.n, 2);
	cr_assert_str_eq(errs.items[0].field, "username");
	cr_assert_str_eq(errs.items[0].message, ACCT_MSG_BLANK);
	cr_assert_str_eq(errs.items[1].field, "email");
	cr_assert_str_eq(errs.items[1].message, ACCT_MSG_EMAIL_INVALID);
}

Test(acct_errors, add_past_capacity_does_not_overflow)
{
	struct {
		struct acct_errors errs;
		unsigned char canary[64];
	} s;

	memset(&s, 0, sizeof s);
	memset(s.canary, 0xA5, sizeof s.canary);
	for (int i = 0; i < ACCT_ERRORS_MAX + 10; i++)
		acct_errors_add(&s.errs, "password", ACCT_MSG_PW_COMMON);
	cr_assert_eq(s.errs.n, ACCT_ERRORS_MAX);
	for (size_t i = 0; i < sizeof s.canary; i++)
		cr_assert_eq(s.canary[i], 0xA5, "byte %zu after the array overwritten", i);
}

/* ---- roles ---- */

Test(acct_role, known_roles)
{
	cr_assert(acct_role_known("explorer"));
	cr_assert(acct_role_known("teacher"));
	cr_assert(acct_role_known(ACCT_DEFAULT_ROLE));
	cr_assert_not(acct_role_known("wizard"));
	cr_assert_not(acct_role_known(""));
	cr_assert_not(acct_role_known("explorerx"));
	cr_assert_not(acct_role_known("explore"));
	cr_assert_not(acct_role_known("explorer,teacher"));
}

Test(acct_role, in_list)
{
	cr_assert(acct_role_in_list("explorer,teacher", "teacher"));
	cr_assert(acct_role_in_list("explorer,teacher", "explorer"));
	cr_assert(acct_role_in_list("explorer", "explorer"));
	cr_assert_not(acct_role_in_list("explorer", "teacher"));
	cr_assert_not(acct_role_in_list("", "explorer"));
}

Test(acct_role, in_list_matches_whole_items)
{
	cr_assert_not(acct_role_in_list("explorer,teacher", "teach"));
	cr_assert_not(acct_role_in_list("explorer,teacher", "each"));
	cr_assert_not(acct_role_in_list("explorers", "explorer"));
	cr_assert_not(acct_role_in_list("explorer", "explorers"));
	cr_assert_not(acct_role_in_list("explorer,teacher", "explorer,teacher"));
	cr_assert_not(acct_role_in_list("explorer,teacher", ""));
}

Test(acct_role, list_valid)
{
	cr_assert(acct_role_list_valid("explorer"));
	cr_assert(acct_role_list_valid("teacher"));
	cr_assert(acct_role_list_valid("explorer,teacher"));
	cr_assert_not(acct_role_list_valid("explorer,wizard"));
	cr_assert_not(acct_role_list_valid("wizard,explorer"));
	cr_assert_not(acct_role_list_valid("wizard"));
	cr_assert_not(acct_role_list_valid("explorer,teacher,wizard"));
	cr_assert_not(acct_role_list_valid("explorer,Teacher"));
}

/* Issue 14, item 2: a username may not be shaped like an email, by its display or its key. */
Test(acct_signup, email_shaped_username_refused)
{
	const char *shaped[] = {
	    "t.lee@school.example", "T.Lee@School.EXAMPLE", "ａ@ｂ.ｃｏ", "a@b.co"};
	const char *fine[] = {"ada@home", "ada@", "@ada", "ada.lovelace", "a@b.1"};

	for (size_t i = 0; i < sizeof(shaped) / sizeof(shaped[0]); i++) {
		struct acct_signup_input in = input(shaped[i], "x@example.com", "testpass123");
		struct acct_errors errs = {.n = 0};
		struct acct_signup out;

		cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_INVALID, "%s", shaped[i]);
		cr_assert(has(&errs, "username", ACCT_MSG_USERNAME_EMAIL), "%s", shaped[i]);
		cr_assert_eq(errs.n, 1, "%s: only the username", shaped[i]);
		cr_assert_null(out.username);
	}
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		struct acct_signup_input in = input(fine[i], "x@example.com", "testpass123");
		struct acct_errors errs = {.n = 0};
		struct acct_signup out;

		cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK, "%s", fine[i]);
		acct_signup_clear(&out);
	}
}

Test(acct_signup, email_username_key_is_the_email_keyed_as_a_username)
{
	struct acct_signup_input in = input("ada", " T.Lee@School.Example ", "testpass123");
	struct acct_errors errs = {.n = 0};
	struct acct_signup out;

	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK);
	cr_assert_str_eq(out.email_username_key, "t.lee@school.example");
	acct_signup_clear(&out);
	in = input("ada", "o'neil@example.com", "testpass123"); /* ' is no username character */
	cr_assert_eq(acct_signup_validate(&in, &out, &errs), ACCT_OK);
	cr_assert_null(out.email_username_key);
	acct_signup_clear(&out);
}
