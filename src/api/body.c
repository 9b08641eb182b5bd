/* Request bodies: exactly one JSON object, strict. */
#include "api/api.h"
#include "accounts/acct.h"

static size_t
depth(const json_t *v)
{
	size_t max = 0, d;
	const char *key;
	json_t *child;
	size_t i;

	if (json_is_object(v)) {
		json_object_foreach((json_t *)v, key, child)
		{
			d = depth(child);
			max = d > max ? d : max;
		}
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, child)
		{
			d = depth(child);
			max = d > max ? d : max;
		}
	} else {
		return 0;
	}
	return max + 1;
}

enum api_err
api_body_object_new(const char *body, size_t len, json_t **out)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if (body == NULL || len == 0)
		return API_ERR_MALFORMED_JSON;
	/* jansson rejects invalid UTF-8 and \u0000 (no JSON_ALLOW_NUL) and bounds
	 * its own recursion; duplicate keys are refused as ambiguous. */
	v = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return API_ERR_MALFORMED_JSON;
	if (!json_is_object(v) || depth(v) > API_JSON_MAX_DEPTH) {
		json_decref(v);
		return API_ERR_MALFORMED_JSON;
	}
	*out = v;
	return API_ERR_NONE;
}

void
api_string_field(
    json_t *obj, const char *name, const char **out, size_t *len, struct acct_errors *errs)
{
	json_t *v = json_object_get(obj, name);

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (v == NULL || json_is_null(v))
		return;
	if (!json_is_string(v)) {
		acct_errors_add(errs, name, ACCT_MSG_NOT_STRING);
		return;
	}
	*out = json_string_value(v);
	if (len != NULL)
		*len = json_string_length(v);
}

bool
api_required_string(
    json_t *obj, const char *name, const char **out, size_t *len, struct acct_errors *errs)
{
	size_t before = errs->n;

	api_string_field(obj, name, out, len, errs);
	if (*out == NULL && errs->n == before)
		acct_errors_add(errs, name, ACCT_MSG_REQUIRED);
	return *out != NULL;
}
