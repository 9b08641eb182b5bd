/* libFuzzer: a request body through JSON parsing, field extraction and registration validation. */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>

#include "acct.h"
#include "api.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct acct_signup_input in = { 0 };
	struct acct_errors errs = { .n = 0 };
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
	json_decref(obj);
	return 0;
}
