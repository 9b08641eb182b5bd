/*
 * accounts: the domain rules of roster, with no I/O. Normalisation of usernames
 * and emails into their uniqueness keys, field validation with every problem
 * collected per field, the password policy, and the role set.
 * Includes no MHD, jansson or database header.
 */
#ifndef ROSTER_ACCT_H
#define ROSTER_ACCT_H

#include <stdbool.h>
#include <stddef.h>

#define ACCT_USERNAME_MAX       150  /* characters, as Django's User.username */
#define ACCT_EMAIL_MAX          254  /* characters */
#define ACCT_BIO_MAX            500  /* characters */
#define ACCT_NAME_MAX           150  /* characters of first_name, last_name (Django's) */
#define ACCT_PASSWORD_MIN       8    /* characters */
#define ACCT_PASSWORD_MAX_BYTES 4096 /* checked before any hashing */
#define ACCT_ERRORS_MAX         16

/* The exact messages of the contract (API.md); clients compare some of them. */
#define ACCT_MSG_REQUIRED      "This field is required."
#define ACCT_MSG_NOT_STRING    "Not a valid string."
#define ACCT_MSG_BLANK         "This field may not be blank."
#define ACCT_MSG_UNKNOWN_FIELD "Unknown field."
#define ACCT_MSG_USERNAME_INVALID                                                                  \
	"Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ "     \
	"characters."
#define ACCT_MSG_USERNAME_EMAIL      "Enter a valid username. This value must not be an email address."
#define ACCT_MSG_USERNAME_TOO_LONG   "Ensure this field has no more than 150 characters."
#define ACCT_MSG_INVISIBLE           "This value contains invisible or bidirectional control characters."
#define ACCT_MSG_EMAIL_INVALID       "Enter a valid email address."
#define ACCT_MSG_BIO_TOO_LONG        "Ensure this field has no more than 500 characters."
#define ACCT_MSG_ROLE_INVALID        "Not a valid role."
#define ACCT_MSG_PW_TOO_SHORT        "This password is too short. It must contain at least 8 characters."
#define ACCT_MSG_PW_TOO_LONG         "This password is too long. It must contain at most 4096 bytes."
#define ACCT_MSG_PW_NUMERIC          "This password is entirely numeric."
#define ACCT_MSG_PW_COMMON           "This password is too common."
#define ACCT_MSG_PW_SIMILAR_USERNAME "The password is too similar to the username."
#define ACCT_MSG_PW_SIMILAR_EMAIL    "The password is too similar to the email address."

/* One problem: `message` is static; `field` is static or outlives the errors. */
struct acct_error {
	const char *field;
	const char *message;
};

/* Every problem found, in the order the fields are checked. */
struct acct_errors {
	struct acct_error items[ACCT_ERRORS_MAX];
	size_t n;
};

void acct_errors_add(struct acct_errors *errs, const char *field, const char *message);

enum acct_status {
	ACCT_OK = 0,
	ACCT_INVALID, /* a message says why */
	ACCT_NOMEM,
};

/*
 * Username: NFKC-normalises `in` (valid UTF-8, `len` bytes) into `*display`
 * and NFKC + case folding into `*key`; both malloc'd, the caller frees them.
 * On ACCT_INVALID both are NULL and `*msg` is one of the ACCT_MSG_ strings.
 */
enum acct_status acct_username_normalize(const char *in, size_t len,
    /* OUT: */ char **display, char **key, const char **msg);

/*
 * The username key (NFKC + case folding) of any non-empty valid UTF-8 without
 * NUL, whatever characters it holds: for usernames imported from Django that
 * acct_username_normalize refuses, which must still log in and stay unique.
 * malloc'd; NULL for invalid input or OOM.
 */
char *acct_username_key_any(const char *in, size_t len);

/*
 * The confusable keys of a username (UTS #39), each skeleton(fold(skeleton()))
 * with ICU's skeleton and NFKC case folding: `*skeleton_key` of its
 * username_key (NFKC + case fold), shared by all its case variants, so
 * "аdmin" (Cyrillic а), "Αdmin" (Greek Alpha), "adrnin" and "r00t"/"root"
 * meet whatever case an account was registered in; `*cased` of the name as
 * typed (NFKC), before any case folding, so "paypaI" (capital i) meets
 * "paypal" and "Ian" meets "lan", which folding first would tell apart. Both
 * malloc'd, the caller frees them. ACCT_INVALID for invalid UTF-8 or a NUL;
 * ACCT_NOMEM when memory or ICU's data is missing. Both NULL unless ACCT_OK.
 */
enum acct_status acct_username_skeletons(const char *username, size_t len,
    /* OUT: */ char **skeleton_key, char **cased);

/* Releases ICU's data; at exit, once no thread computes a skeleton (leak checkers). */
void acct_unicode_cleanup(void);

/*
 * Email: trims ASCII and Unicode white space, NFKC-normalises into `*display`
 * (the user's spelling, domain included), and checks the syntax (dot-atom
 * ASCII local part, a domain of at least two labels that is valid IDNA2008 /
 * UTS #46 non-transitional). `*key` is the local part lowercased, "@", and
 * the domain's A-label form ("victim@bücher.de" and "victim@xn--bcher-kva.de"
 * share "victim@xn--bcher-kva.de"); a non-ASCII label always becomes an
 * "xn--" label, never plain ASCII ("examplEİ.com" is not "examplei.com").
 */
enum acct_status acct_email_normalize(const char *in, size_t len,
    /* OUT: */ char **display, char **key, const char **msg);

/*
 * True when `s` (`len` bytes) is shaped like an email address: one that
 * acct_email_normalize accepts. An email-shaped identifier names an account by
 * its email only: no new username may have this shape (acct_signup_validate),
 * and login and the admin CLI look such an identifier up as an email first.
 */
bool acct_email_shaped(const char *s, size_t len);

/*
 * True when the UTF-8 string has a format character (category Cf: the bidi
 * controls and zero-width characters) or any other Default_Ignorable_Code_Point
 * (soft hyphen, variation selectors, Hangul fillers, ...).
 */
bool acct_has_invisible(const char *s, size_t len);

/* Length of valid UTF-8 in code points; -1 when it is not valid UTF-8. */
long acct_utf8_chars(const char *s, size_t len);

/*
 * Password policy, equivalent to Django's four default validators: minimum
 * length, not entirely numeric, not in the common-password list (Django's own
 * list, embedded at build time), not too similar (quick ratio >= 0.7) to the
 * username or the email or their parts. `username`/`email` may be NULL.
 * Adds every problem to `errs` under the field "password"; true when none.
 */
bool acct_password_check(
    const char *pw, size_t len, const char *username, const char *email, struct acct_errors *errs);

/* True when `pw` (any case, surrounding spaces ignored) is in the common list. */
bool acct_password_is_common(const char *pw, size_t len);

/* Number of entries in the embedded common-password list. */
size_t acct_common_password_count(void);

/* Django's UserAttributeSimilarityValidator quick ratio of two strings, 0..1. */
double acct_similarity(const char *a, const char *b);

/* Roles that exist at all (the profiles table's check constraint). */
bool acct_role_known(const char *role);

/*
 * A comma-separated role list, as in --self-register-roles ("explorer,teacher";
 * no spaces; empty items are ignored, so "" lets nobody self-register). True
 * when `role` is in it.
 */
bool acct_role_in_list(const char *list, const char *role);

/* True when every item of the comma-separated list is a known role. */
bool acct_role_list_valid(const char *list);

/* Bio: valid UTF-8 without NUL, at most ACCT_BIO_MAX characters; adds a problem to `errs`. */
bool acct_bio_check(const char *bio, size_t len, struct acct_errors *errs);

/*
 * first_name / last_name (`field` names the problem): valid UTF-8 without NUL, at most
 * ACCT_NAME_MAX characters; adds a problem to `errs`.
 */
bool acct_name_check(const char *field, const char *name, size_t len, struct acct_errors *errs);

/* Raw registration input, borrowed from the request: NULL means absent. */
struct acct_signup_input {
	const char *username;
	size_t username_len;
	const char *email;
	size_t email_len;
	const char *password;
	size_t password_len;
	const char *role; /* NULL: the default role */
	const char *bio;  /* NULL: empty */
	size_t bio_len;
};

/* A validated registration: everything owned; release with acct_signup_clear. */
struct acct_signup {
	char *username;
	char *username_key;
	char *username_skeleton;       /* acct_username_skeletons: of the key */
	char *username_skeleton_cased; /* and of the name as typed */
	char *email;
	char *email_key;
	/* The email as a username key (NFKC + case fold), NULL when no username
	 * could be it: no account may have a username equal to another's email. */
	char *email_username_key;
	char *password; /* wiped on clear */
	size_t password_len;
	char *role;
	char *bio;
};

#define ACCT_DEFAULT_ROLE "explorer"

/*
 * Validates and normalises `in` into `out`, collecting every problem per field
 * into `errs`. A field that already has an error in `errs` (the caller found
 * it was not a string) is not checked again. An absent field is "required",
 * an empty one "blank"; an email-shaped username (by its display form or its
 * key) is ACCT_MSG_USERNAME_EMAIL. Returns ACCT_OK with `out` filled, ACCT_INVALID with `out`
 * cleared and `errs` non-empty, or ACCT_NOMEM. Role policy (who may
 * self-register as what) is the caller's next step, not a validation error.
 */
enum acct_status acct_signup_validate(const struct acct_signup_input *in,
    /* OUT: */ struct acct_signup *out, struct acct_errors *errs);

void acct_signup_clear(struct acct_signup *s);

#endif
