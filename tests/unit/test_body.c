/*
 * Unit tests for src/api/body.c (api_body_object_new: the request body must be
 * one JSON object, valid UTF-8, no NUL, no duplicate keys, bounded nesting) and
 * src/api/errors.c (the error table of API.md).
 *
 * Depth counts containers (objects and arrays); the top-level object is depth 1,
 * so `{"k":1}` is 1 and `{"k":[1]}` is 2.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "api/api.h"
#include "support.h"

static enum api_err
parse_n(const char *body, size_t len, json_t **out)
{
	*out = (json_t *)(uintptr_t)1; /* must be overwritten */
	return api_body_object_new(body, len, out);
}

static void
expect_malformed_n(const char *body, size_t len, const char *what)
{
	json_t *out;
	enum api_err err = parse_n(body, len, &out);

	cr_assert_eq(err, API_ERR_MALFORMED_JSON, "%s: accepted (err %d)", what, err);
	cr_assert_null(out, "%s: *out not NULL on error", what);
}

static void
expect_malformed(const char *body)
{
	expect_malformed_n(body, strlen(body), body);
}

/* Parses a body that must be accepted; the caller json_decref()s the result. */
static json_t *
expect_object_n(const char *body, size_t len, const char *what)
{
	json_t *out;
	enum api_err err = parse_n(body, len, &out);

	cr_assert_eq(err, API_ERR_NONE, "%s: rejected (err %d)", what, err);
	cr_assert_not_null(out, "%s: no object", what);
	cr_assert(json_is_object(out), "%s: not an object", what);
	cr_assert_eq(
	    out->refcount, 1, "%s: refcount %zu, want a new reference", what, out->refcount);
	return out;
}

static json_t *
expect_object(const char *body)
{
	return expect_object_n(body, strlen(body), body);
}

/*
 * A top-level object holding containers nested `depth` deep in all (the
 * top-level object included). Inner containers are arrays, or objects when
 * `objects`; the innermost holds the scalar 1. Free the result.
 */
static char *
nested(size_t depth, bool objects)
{
	char *s = malloc(depth * 8 + 16);
	size_t n = 0;

	cr_assert_not_null(s);
	cr_assert_geq(depth, 1);
	n += (size_t)sprintf(s + n, "{\"k\":");
	for (size_t i = 1; i < depth; i++)
		n += (size_t)sprintf(s + n, objects ? "{\"k\":" : "[");
	s[n++] = '1';
	for (size_t i = 1; i < depth; i++)
		s[n++] = objects ? '}' : ']';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

/* The same, alternating arrays and objects below the top. */
static char *
nested_mixed(size_t depth)
{
	char *s = malloc(depth * 8 + 16);
	size_t n = 0;

	cr_assert_not_null(s);
	n += (size_t)sprintf(s + n, "{\"k\":");
	for (size_t i = 1; i < depth; i++)
		n += (size_t)sprintf(s + n, i % 2 ? "[" : "{\"k\":");
	s[n++] = '1';
	for (size_t i = depth - 1; i >= 1; i--)
		s[n++] = i % 2 ? ']' : '}';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

/* ---- accepted bodies ---- */

Test(api_body, empty_object_ok)
{
	json_t *o = expect_object("{}");

	cr_assert_eq(json_object_size(o), 0);
	json_decref(o);
}

Test(api_body, object_with_value_ok)
{
	json_t *o = expect_object("{\"a\":1}");

	cr_assert_eq(json_object_size(o), 1);
	cr_assert(json_is_integer(json_object_get(o, "a")));
	cr_assert_eq(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);
}

Test(api_body, registration_body_ok)
{
	json_t *o =
	    expect_object(" {\n\t\"username\": \"Jos\u00E9\", \"email\": \"j@example.com\","
	                  " \"password\": \"testpass123\", \"bio\": \"caf\\u00e9 \\ud83d\\ude00\","
	                  " \"role\": null, \"tags\": [1, 2.5, true, {}]} \r\n");

	cr_assert_str_eq(json_string_value(json_object_get(o, "username")), "Jos\u00E9");
	cr_assert_str_eq(json_string_value(json_object_get(o, "bio")), "caf\u00E9 \U0001F600");
	cr_assert(json_is_null(json_object_get(o, "role")));
	cr_assert_eq(json_array_size(json_object_get(o, "tags")), 4);
	json_decref(o);
}

Test(api_body, uses_len_not_nul)
{
	json_t *o = expect_object_n("{\"a\":1}garbage", 7, "{\"a\":1} (len 7 of 14)");

	cr_assert_eq(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);
	expect_malformed_n("{\"a\":1}", 5, "{\"a\": (len 5)");
}

Test(api_body, body_need_not_be_nul_terminated)
{
	size_t len;
	char *buf = unterminated("{\"a\":1}", &len);
	json_t *o = expect_object_n(buf, len, "unterminated {\"a\":1}");

	cr_assert_eq(json_integer_value(json_object_get(o, "a")), 1);
	json_decref(o);
	unterminated_free(buf, len);
	buf = unterminated("{\"a\":", &len);
	expect_malformed_n(buf, len, "unterminated {\"a\":");
	unterminated_free(buf, len);
}

/* ---- not one object ---- */

Test(api_body, array_malformed)
{
	expect_malformed("[]");
	expect_malformed("[{\"a\":1}]");
}

Test(api_body, scalars_malformed)
{
	expect_malformed("42");
	expect_malformed("\"x\"");
	expect_malformed("null");
	expect_malformed("true");
}

Test(api_body, empty_and_blank_malformed)
{
	expect_malformed_n("", 0, "empty");
	expect_malformed("   \n");
}

Test(api_body, truncated_malformed)
{
	expect_malformed("{");
	expect_malformed("{\"a\":");
	expect_malformed("{\"a\":\"b");
	expect_malformed("{\"a\" 1}");
	expect_malformed("{'a':1}");
	expect_malformed("{\"a\":1,}");
}

Test(api_body, trailing_data_malformed)
{
	expect_malformed("{\"a\":1} trailing");
	expect_malformed("{}{}");
	expect_malformed("{} 1");
	expect_malformed_n("{\"a\":1}\0", 8, "{\"a\":1}<NUL>");
}

/* ---- encoding ---- */

Test(api_body, invalid_utf8_in_string_malformed)
{
	expect_malformed("{\"a\":\"\xff\"}");
	expect_malformed("{\"a\":\"\xc3\"}");         /* truncated sequence */
	expect_malformed("{\"a\":\"\xc0\xaf\"}");     /* overlong */
	expect_malformed("{\"a\":\"\xed\xa0\x80\"}"); /* encoded surrogate */
}

Test(api_body, invalid_utf8_in_key_malformed)
{
	expect_malformed("{\"\xff\":1}");
}

Test(api_body, lone_surrogate_escape_malformed)
{
	expect_malformed("{\"a\":\"\\ud800\"}");
	expect_malformed("{\"a\":\"\\udc00x\"}");
}

Test(api_body, nul_escape_malformed)
{
	expect_malformed("{\"a\":\"\\u0000\"}");
	expect_malformed("{\"a\":\"x\\u0000y\"}");
	expect_malformed("{\"a\\u0000b\":1}");
	expect_malformed("{\"a\":[\"\\u0000\"]}");
}

Test(api_body, raw_nul_byte_malformed)
{
	expect_malformed_n("{\"a\":\"x\0y\"}", 11, "raw NUL in a string");
}

/* ---- duplicate keys ---- */

Test(api_body, duplicate_keys_malformed)
{
	expect_malformed("{\"a\":1,\"a\":2}");
	expect_malformed("{\"a\":1,\"b\":2,\"a\":1}");
}

Test(api_body, nested_duplicate_keys_malformed)
{
	expect_malformed("{\"o\":{\"a\":1,\"a\":2}}");
	expect_malformed("{\"o\":[{\"a\":1,\"a\":2}]}");
}

Test(api_body, same_key_in_different_objects_ok)
{
	json_t *o = expect_object("{\"a\":{\"a\":1},\"b\":{\"a\":2}}");

	json_decref(o);
}

/* ---- depth ---- */

Test(api_body, depth_helper_counts_as_documented)
{
	char *one = nested(1, false), *two = nested(2, false), *three = nested(3, true);

	cr_assert_str_eq(one, "{\"k\":1}");
	cr_assert_str_eq(two, "{\"k\":[1]}");
	cr_assert_str_eq(three, "{\"k\":{\"k\":{\"k\":1}}}");
	free(one);
	free(two);
	free(three);
}

Test(api_body, depth_8_arrays_ok)
{
	char *s = nested(API_JSON_MAX_DEPTH, false);

	cr_assert_eq(API_JSON_MAX_DEPTH, 8);
	json_decref(expect_object(s));
	free(s);
}

Test(api_body, depth_8_objects_ok)
{
	char *s = nested(8, true);

	json_decref(expect_object(s));
	free(s);
}

Test(api_body, depth_8_mixed_ok)
{
	char *s = nested_mixed(8);

	json_decref(expect_object(s));
	free(s);
}

Test(api_body, depth_8_with_empty_innermost_ok)
{
	/* {"k":[[[[[[[]]]]]]]} : 1 object + 7 arrays. */
	json_decref(expect_object("{\"k\":[[[[[[[]]]]]]]}"));
}

Test(api_body, depth_9_arrays_malformed)
{
	char *s = nested(API_JSON_MAX_DEPTH + 1, false);

	expect_malformed(s);
	free(s);
}

Test(api_body, depth_9_objects_malformed)
{
	char *s = nested(9, true);

	expect_malformed(s);
	free(s);
}

Test(api_body, depth_9_mixed_malformed)
{
	char *s = nested_mixed(9);

	expect_malformed(s);
	free(s);
}

Test(api_body, depth_9_with_empty_innermost_malformed)
{
	expect_malformed("{\"k\":[[[[[[[[]]]]]]]]}");
}

Test(api_body, depth_9_in_a_later_member_malformed)
{
	/* The deep value is not the first one. */
	expect_malformed("{\"a\":1,\"b\":[2],\"c\":[[[[[[[[3]]]]]]]]}");
}

Test(api_body, wide_but_shallow_ok)
{
	/* 1000 sibling arrays at depth 2: width is not depth. */
	size_t n = 0;
	char *s = malloc(16 + 1000 * 4);
	json_t *o;

	cr_assert_not_null(s);
	n += (size_t)sprintf(s, "{\"k\":[");
	for (int i = 0; i < 1000; i++)
		n += (size_t)sprintf(s + n, "%s[]", i ? "," : "");
	n += (size_t)sprintf(s + n, "]}");
	o = expect_object_n(s, n, "1000 siblings");
	cr_assert_eq(json_array_size(json_object_get(o, "k")), 1000);
	json_decref(o);
	free(s);
}

Test(api_body, very_deep_array_malformed)
{
	size_t depth = 10000;
	char *s = malloc(2 * depth + 1);

	cr_assert_not_null(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	expect_malformed_n(s, 2 * depth, "10,000 nested arrays");
	free(s);
}

Test(api_body, very_deep_inside_object_malformed)
{
	size_t depth = 10000;
	char *s = nested(depth, false);

	expect_malformed(s);
	free(s);
}

Test(api_body, very_deep_unclosed_malformed)
{
	size_t depth = 100000;
	char *s = malloc(depth + 8);

	cr_assert_not_null(s);
	memcpy(s, "{\"k\":", 5);
	memset(s + 5, '[', depth);
	expect_malformed_n(s, depth + 5, "100,000 unclosed arrays");
	free(s);
}

/* ---- the error table ---- */

Test(api_err, email_taken)
{
	const struct api_err_info *e = api_err_info(API_ERR_EMAIL_TAKEN);

	cr_assert_not_null(e);
	cr_assert_eq(e->status, 400);
	cr_assert_str_eq(e->code, "email_taken");
	cr_assert_str_eq(e->message, "Email already registered.");
}

Test(api_err, username_taken)
{
	const struct api_err_info *e = api_err_info(API_ERR_USERNAME_TAKEN);

	cr_assert_not_null(e);
	cr_assert_eq(e->status, 400);
	cr_assert_str_eq(e->code, "username_taken");
	cr_assert_str_eq(e->message, "Username already taken.");
}

Test(api_err, internal_register_message)
{
	const struct api_err_info *e = api_err_info(API_ERR_INTERNAL_REGISTER);

	cr_assert_not_null(e);
	cr_assert_eq(e->status, 500);
	cr_assert_str_eq(e->code, "internal");
	cr_assert_str_eq(e->message, "An unexpected error occurred during registration.");
}

Test(api_err, statuses_and_codes_of_api_md)
{
	static const struct {
		enum api_err err;
		int status;
		const char *code;
	} want[] = {
	    {API_ERR_MALFORMED_JSON, 400, "malformed_json"},
	    {API_ERR_BAD_REQUEST, 400, "bad_request"},
	    {API_ERR_INVALID, 400, "invalid"},
	    {API_ERR_USERNAME_TAKEN, 400, "username_taken"},
	    {API_ERR_EMAIL_TAKEN, 400, "email_taken"},
	    {API_ERR_INVALID_CREDENTIALS, 400, "invalid_credentials"},
	    {API_ERR_INVITATION_INVALID, 400, "invitation_invalid"},
	    {API_ERR_INVITATION_EXPIRED, 400, "invitation_expired"},
	    {API_ERR_INVITATION_USED, 400, "invitation_used"},
	    {API_ERR_INVITATION_REVOKED, 400, "invitation_revoked"},
	    {API_ERR_NOT_AUTHENTICATED, 401, "not_authenticated"},
	    {API_ERR_FORBIDDEN, 403, "forbidden"},
	    {API_ERR_ROLE_NOT_ALLOWED, 403, "role_not_allowed"},
	    {API_ERR_INVITATION_EMAIL_MISMATCH, 403, "invitation_email_mismatch"},
	    {API_ERR_NOT_FOUND, 404, "not_found"},
	    {API_ERR_METHOD_NOT_ALLOWED, 405, "method_not_allowed"},
	    {API_ERR_INVITATION_PENDING, 409, "invitation_pending"},
	    {API_ERR_CONFLICT, 409, "conflict"},
	    {API_ERR_RATE_LIMITED, 429, "rate_limited"},
	    {API_ERR_LENGTH_REQUIRED, 411, "length_required"},
	    {API_ERR_BODY_TOO_LARGE, 413, "body_too_large"},
	    {API_ERR_UNSUPPORTED_MEDIA_TYPE, 415, "unsupported_media_type"},
	    {API_ERR_NOT_IMPLEMENTED, 501, "not_implemented"},
	    {API_ERR_UNAVAILABLE, 503, "unavailable"},
	    {API_ERR_INTERNAL, 500, "internal"},
	    {API_ERR_INTERNAL_REGISTER, 500, "internal"},
	    {API_ERR_TOKEN_INVALID, 400, "token_invalid"},
	    {API_ERR_TOKEN_EXPIRED, 400, "token_expired"},
	    {API_ERR_TOKEN_USED, 400, "token_used"},
	    {API_ERR_EMAIL_NOT_VERIFIED, 403, "email_not_verified"},
	};

	cr_assert_eq(sizeof want / sizeof want[0], API_ERR_COUNT_ - 1, "update this table");
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
		const struct api_err_info *e = api_err_info(want[i].err);

		cr_assert_not_null(e, "err %d: no row", want[i].err);
		cr_assert_eq(e->status, want[i].status, "err %d (%s): status %d", want[i].err,
		    want[i].code, e->status);
		cr_assert_not_null(e->code, "err %d: no code", want[i].err);
		cr_assert_str_eq(e->code, want[i].code, "err %d", want[i].err);
	}
}

Test(api_err, every_value_has_a_row)
{
	for (int i = 1; i < API_ERR_COUNT_; i++) {
		const struct api_err_info *e = api_err_info((enum api_err)i);

		cr_assert_not_null(e, "err %d: no row", i);
		cr_assert_not_null(e->code, "err %d: no code", i);
		cr_assert_gt(strlen(e->code), 0, "err %d: empty code", i);
		cr_assert_not_null(e->message, "err %d: no message", i);
		cr_assert_gt(strlen(e->message), 0, "err %d: empty message", i);
		cr_assert(e->status >= 400 && e->status <= 599, "err %d (%s): status %d", i,
		    e->code, e->status);
	}
}

Test(api_err, codes_are_snake_case)
{
	for (int i = 1; i < API_ERR_COUNT_; i++) {
		const char *c = api_err_info((enum api_err)i)->code;

		for (const char *p = c; *p; p++)
			cr_assert(
			    (*p >= 'a' && *p <= 'z') || *p == '_', "err %d: code \"%s\"", i, c);
	}
}
