/*
 * Registration input: every field validated, every problem collected per field,
 * the result normalised and owned. The role *policy* (which roles may
 * self-register) is the caller's, since it depends on configuration.
 */
#include "accounts/acct.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_roles[] = {"explorer", "teacher"};

bool
acct_role_known(const char *role)
{
	for (size_t i = 0; i < sizeof(known_roles) / sizeof(known_roles[0]); i++)
		if (strcmp(role, known_roles[i]) == 0)
			return true;
	return false;
}

/* Calls fn on each non-empty item of a comma-separated list until it returns true. */
static bool
list_any(
    const char *list, bool (*fn)(const char *item, size_t len, const void *arg), const void *arg)
{
	const char *p = list;

	while (*p != '\0') {
		size_t len = strcspn(p, ",");

		if (len > 0 && fn(p, len, arg))
			return true;
		p += len;
		if (*p == ',')
			p++;
	}
	return false;
}

static bool
item_is(const char *item, size_t len, const void *arg)
{
	const char *role = arg;

	return strlen(role) == len && memcmp(item, role, len) == 0;
}

static bool
item_unknown(const char *item, size_t len, const void *arg)
{
	char buf[32];

	(void)arg;
	if (len >= sizeof(buf))
		return true;
	memcpy(buf, item, len);
	buf[len] = '\0';
	return !acct_role_known(buf);
}

bool
acct_role_in_list(const char *list, const char *role)
{
	return list_any(list, item_is, role);
}

bool
acct_role_list_valid(const char *list)
{
	return !list_any(list, item_unknown, NULL);
}

bool
acct_bio_check(const char *bio, size_t len, struct acct_errors *errs)
{
	long chars = acct_utf8_chars(bio, len);

	if (chars < 0 || memchr(bio, '\0', len) != NULL)
		acct_errors_add(errs, "bio", ACCT_MSG_NOT_STRING);
	else if (chars > ACCT_BIO_MAX)
		acct_errors_add(errs, "bio", ACCT_MSG_BIO_TOO_LONG);
	else
		return true;
	return false;
}

bool
acct_name_check(const char *field, const char *name, size_t len, struct acct_errors *errs)
{
	long chars = acct_utf8_chars(name, len);

	if (chars < 0 || memchr(name, '\0', len) != NULL)
		acct_errors_add(errs, field, ACCT_MSG_NOT_STRING);
	else if (chars > ACCT_NAME_MAX)
		acct_errors_add(
		    errs, field, ACCT_MSG_USERNAME_TOO_LONG); /* "... 150 characters." */
	else
		return true;
	return false;
}

static bool
has_error(const struct acct_errors *errs, const char *field)
{
	for (size_t i = 0; i < errs->n; i++)
		if (strcmp(errs->items[i].field, field) == 0)
			return true;
	return false;
}

/* Normalises one key field with `fn`, or records why it cannot be. */
static enum acct_status
key_field(const char *field, const char *in, size_t len,
    enum acct_status (*fn)(const char *, size_t, char **, char **, const char **), char **display,
    char **key, struct acct_errors *errs)
{
	const char *msg = NULL;
	enum acct_status st;

	if (has_error(errs, field))
		return ACCT_OK;
	if (in == NULL) {
		acct_errors_add(errs, field, ACCT_MSG_REQUIRED);
		return ACCT_OK;
	}
	st = fn(in, len, display, key, &msg);
	if (st == ACCT_INVALID)
		acct_errors_add(errs, field, msg);
	return st == ACCT_NOMEM ? ACCT_NOMEM : ACCT_OK;
}

/* The email as a username would be keyed, or NULL when it is no valid username. */
static enum acct_status
email_username_key(struct acct_signup *out)
{
	char *display = NULL;
	const char *msg;
	enum acct_status st = acct_username_normalize(
	    out->email, strlen(out->email), &display, &out->email_username_key, &msg);

	free(display);
	return st == ACCT_NOMEM ? ACCT_NOMEM : ACCT_OK;
}

static char *
dup_n(const char *s, size_t len)
{
	char *p = xmalloc(len + 1);

	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

enum acct_status
acct_signup_validate(
    const struct acct_signup_input *in, struct acct_signup *out, struct acct_errors *errs)
{
	const char *role = in->role != NULL ? in->role : ACCT_DEFAULT_ROLE;
	const char *bio = in->bio != NULL ? in->bio : "";
	size_t bio_len = in->bio != NULL ? in->bio_len : 0;

	memset(out, 0, sizeof(*out));
	if (key_field("username", in->username, in->username_len, acct_username_normalize,
	        &out->username, &out->username_key, errs) != ACCT_OK)
		goto nomem;
	/* An email-shaped username could be taken for someone's email (login, the
	 * admin CLI): a username is never one, whichever form shows it. */
	if (out->username != NULL &&
	    (acct_email_shaped(out->username, strlen(out->username)) ||
	        acct_email_shaped(out->username_key, strlen(out->username_key))))
		acct_errors_add(errs, "username", ACCT_MSG_USERNAME_EMAIL);
	if (key_field("email", in->email, in->email_len, acct_email_normalize, &out->email,
	        &out->email_key, errs) != ACCT_OK)
		goto nomem;
	if (out->email != NULL && email_username_key(out) != ACCT_OK)
		goto nomem;
	if (!has_error(errs, "password")) {
		if (in->password == NULL)
			acct_errors_add(errs, "password", ACCT_MSG_REQUIRED);
		else if (in->password_len == 0)
			acct_errors_add(errs, "password", ACCT_MSG_BLANK);
		else
			/* Compared with the normalised values; an invalid field fails anyway. */
			acct_password_check(
			    in->password, in->password_len, out->username, out->email, errs);
	}
	if (!has_error(errs, "role") && !acct_role_known(role))
		acct_errors_add(errs, "role", ACCT_MSG_ROLE_INVALID);
	if (!has_error(errs, "bio"))
		acct_bio_check(bio, bio_len, errs);
	if (errs->n > 0) {
		acct_signup_clear(out);
		return ACCT_INVALID;
	}
	out->password = dup_n(in->password, in->password_len);
	out->password_len = in->password_len;
	out->role = dup_n(role, strlen(role));
	out->bio = dup_n(bio, bio_len);
	if (out->password == NULL || out->role == NULL || out->bio == NULL ||
	    acct_username_skeletons(out->username, strlen(out->username), &out->username_skeleton,
	        &out->username_skeleton_cased) != ACCT_OK)
		goto nomem; /* a valid username always has a skeleton */
	return ACCT_OK;
nomem:
	acct_signup_clear(out);
	return ACCT_NOMEM;
}

void
acct_signup_clear(struct acct_signup *s)
{
	if (s->password != NULL)
		sodium_memzero(s->password, s->password_len);
	free(s->username);
	free(s->username_key);
	free(s->username_skeleton);
	free(s->username_skeleton_cased);
	free(s->email);
	free(s->email_key);
	free(s->email_username_key);
	free(s->password);
	free(s->role);
	free(s->bio);
	memset(s, 0, sizeof(*s));
}
