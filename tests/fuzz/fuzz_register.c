/*
 * libFuzzer: a request body through JSON parsing and the input validation of
 * registration, login (identifier keys) and invitations (email, token).
 */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>

#include "accounts/acct.h"
#include "api/api.h"

/* The other bodies' fields: login name as username and email, invitation token. */
static void
login_and_invitation(json_t *obj)
{
	struct acct_errors errs = {.n = 0};
	char *display = NULL, *key = NULL, hash[65];
	const char *v = NULL, *msg;
	size_t len = 0;

	if (api_required_string(obj, "username", &v, &len, &errs)) {
		if (acct_username_normalize(v, len, &display, &key, &msg) == ACCT_OK) {
			free(display);
			free(key);
		}
		if (acct_email_normalize(v, len, &display, &key, &msg) == ACCT_OK) {
			free(display);
			free(key);
		}
	}
	if (api_required_string(obj, "token", &v, &len, &errs))
		api_invitation_token_hash(v, len, hash);
	if (api_required_string(obj, "invitation", &v, &len, &errs))
		api_invitation_token_hash(v, len, hash);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acct_signup_input in = {0};
	struct acct_errors errs = {.n = 0};
	struct acct_signup out;
	json_t *obj = NULL;

	if (api_body_object_new((const char *)data, size, &obj) != API_ERR_NONE)
		return 0;
	api_string_field(obj, "username", &in.username, &in.username_len, &errs);
	api_string_field(obj, "email", &in.email, &in.email_len, &errs);
	api_string_field(obj, "password", &in.password, &in.password_len, &errs);
	api_string_field(obj, "role", &in.role, NULL, &errs);
	api_string_field(obj, "bio", &in.bio, &in.bio_len, &errs);
	if (acct_signup_validate(&in, &out, &errs) == ACCT_OK)
		acct_signup_clear(&out);
	login_and_invitation(obj);
	json_decref(obj);
	return 0;
}
