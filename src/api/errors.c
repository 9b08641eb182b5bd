/*
 * The single table of API errors: status, stable code, exact message (API.md);
 * the one mapping from store statuses (and invitation refusals) to it; and the
 * renderer of http/'s own errors for the API's routes.
 */
#include "api/api.h"
#include "accounts/acct.h"
#include "http/req.h"

#include <assert.h>

static const struct api_err_info table[] = {
    [API_ERR_NONE] = {200, "ok", "OK."},
    [API_ERR_MALFORMED_JSON] = {400, "malformed_json",
        "The request body must be a JSON object in valid UTF-8."},
    [API_ERR_BAD_REQUEST] = {400, "bad_request", HTTP_MSG_BAD_REQUEST},
    [API_ERR_INVALID] = {400, "invalid", "Invalid input."},
    [API_ERR_USERNAME_TAKEN] = {400, "username_taken", "Username already taken."},
    [API_ERR_EMAIL_TAKEN] = {400, "email_taken", "Email already registered."},
    [API_ERR_INVALID_CREDENTIALS] = {400, "invalid_credentials", "Invalid credentials."},
    [API_ERR_INVITATION_INVALID] = {400, "invitation_invalid", "Invalid invitation token."},
    [API_ERR_INVITATION_EXPIRED] = {400, "invitation_expired", "This invitation has expired."},
    [API_ERR_INVITATION_USED] = {400, "invitation_used", "This invitation has already been used."},
    [API_ERR_INVITATION_REVOKED] = {400, "invitation_revoked", "This invitation has been revoked."},
    [API_ERR_NOT_AUTHENTICATED] = {401, "not_authenticated",
        "Authentication credentials were not provided or are not valid."},
    [API_ERR_FORBIDDEN] = {403, "forbidden", "You do not have permission to perform this action."},
    [API_ERR_ROLE_NOT_ALLOWED] = {403, "role_not_allowed",
        "This role cannot be chosen at registration."},
    [API_ERR_INVITATION_EMAIL_MISMATCH] = {403, "invitation_email_mismatch",
        "This invitation was issued for a different email address."},
    [API_ERR_NOT_FOUND] = {404, "not_found", HTTP_MSG_NOT_FOUND},
    [API_ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", HTTP_MSG_METHOD_NOT_ALLOWED},
    [API_ERR_INVITATION_PENDING] = {409, "invitation_pending",
        "An invitation is already pending for this email."},
    [API_ERR_CONFLICT] = {409, "conflict", "The invitation is not in a state that allows this."},
    [API_ERR_RATE_LIMITED] = {429, "rate_limited", "Too many requests; retry later."},
    [API_ERR_LENGTH_REQUIRED] = {411, "length_required", HTTP_MSG_LENGTH_REQUIRED},
    [API_ERR_BODY_TOO_LARGE] = {413, "body_too_large", HTTP_MSG_BODY_TOO_LARGE},
    [API_ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type",
        HTTP_MSG_UNSUPPORTED_MEDIA_TYPE},
    [API_ERR_NOT_IMPLEMENTED] = {501, "not_implemented", HTTP_MSG_NOT_IMPLEMENTED},
    [API_ERR_UNAVAILABLE] = {503, "unavailable", HTTP_MSG_UNAVAILABLE},
    [API_ERR_INTERNAL] = {500, "internal", HTTP_MSG_INTERNAL},
    [API_ERR_INTERNAL_REGISTER] = {500, "internal",
        "An unexpected error occurred during registration."},
    [API_ERR_TOKEN_INVALID] = {400, "token_invalid", "This link is invalid."},
    [API_ERR_TOKEN_EXPIRED] = {400, "token_expired", "This link has expired."},
    [API_ERR_TOKEN_USED] = {400, "token_used", "This link has already been used."},
    [API_ERR_EMAIL_NOT_VERIFIED] = {403, "email_not_verified",
        "Verify your email address before logging in."},
};

static_assert(sizeof(table) / sizeof(table[0]) == API_ERR_COUNT_, "every api_err has a row");

const struct api_err_info *
api_err_info(enum api_err err)
{
	if ((unsigned)err >= API_ERR_COUNT_ || table[err].code == NULL)
		err = API_ERR_INTERNAL;
	return &table[err];
}

static json_t *
error_body(const struct http_req *req, const struct api_err_info *info)
{
	return json_pack(
	    "{s:s, s:s, s:s}", "error", info->message, "code", info->code, "request_id", req->id);
}

void
api_reply_error(struct http_req *req, enum api_err err)
{
	const struct api_err_info *info = api_err_info(err);

	if (info->status == 401)
		req->challenge = "Token";
	http_reply_error(req, info->status, info->code, info->message);
}

void
api_render_http_err(struct http_req *req, enum http_err err)
{
	static const enum api_err as_api[] = {
	    [HTTP_ERR_NONE] = API_ERR_INTERNAL, /* not an error: a bug in http/ */
	    [HTTP_ERR_BAD_REQUEST] = API_ERR_BAD_REQUEST,
	    [HTTP_ERR_NOT_FOUND] = API_ERR_NOT_FOUND,
	    [HTTP_ERR_METHOD_NOT_ALLOWED] = API_ERR_METHOD_NOT_ALLOWED,
	    [HTTP_ERR_LENGTH_REQUIRED] = API_ERR_LENGTH_REQUIRED,
	    [HTTP_ERR_BODY_TOO_LARGE] = API_ERR_BODY_TOO_LARGE,
	    [HTTP_ERR_UNSUPPORTED_MEDIA_TYPE] = API_ERR_UNSUPPORTED_MEDIA_TYPE,
	    [HTTP_ERR_NOT_IMPLEMENTED] = API_ERR_NOT_IMPLEMENTED,
	    [HTTP_ERR_UNAVAILABLE] = API_ERR_UNAVAILABLE,
	    [HTTP_ERR_INTERNAL] = API_ERR_INTERNAL,
	};

	static_assert(
	    sizeof(as_api) / sizeof(as_api[0]) == HTTP_ERR_COUNT_, "every http_err has an api_err");
	api_reply_error(req, (unsigned)err < HTTP_ERR_COUNT_ ? as_api[err] : API_ERR_INTERNAL);
}

enum api_err
api_store_err(enum store_status st, enum api_err not_found, enum api_err internal)
{
	switch (st) {
	case STORE_OK:
		return API_ERR_NONE;
	case STORE_NOT_FOUND:
		return not_found;
	case STORE_CONFLICT_USERNAME:
		return API_ERR_USERNAME_TAKEN;
	case STORE_CONFLICT_EMAIL:
		return API_ERR_EMAIL_TAKEN;
	case STORE_CONFLICT:
		return API_ERR_CONFLICT;
	case STORE_CONFLICT_PENDING:
		return API_ERR_INVITATION_PENDING;
	case STORE_BUSY:
	case STORE_UNAVAILABLE:
		return API_ERR_UNAVAILABLE;
	case STORE_ERROR:
		break;
	}
	return internal;
}

enum api_err
api_invite_why_err(enum store_invite_why why)
{
	switch (why) {
	case STORE_INVITE_EXPIRED:
		return API_ERR_INVITATION_EXPIRED;
	case STORE_INVITE_USED:
		return API_ERR_INVITATION_USED;
	case STORE_INVITE_REVOKED:
		return API_ERR_INVITATION_REVOKED;
	case STORE_INVITE_EMAIL_MISMATCH:
		return API_ERR_INVITATION_EMAIL_MISMATCH;
	default:
		return API_ERR_INVITATION_INVALID;
	}
}

void
api_reply_invalid(struct http_req *req, const struct acct_errors *errs)
{
	const struct api_err_info *info = api_err_info(API_ERR_INVALID);
	json_t *body = error_body(req, info);
	json_t *fields = json_object();

	for (size_t i = 0; i < errs->n; i++) {
		json_t *list = json_object_get(fields, errs->items[i].field);

		if (list == NULL) {
			list = json_array();
			json_object_set_new(fields, errs->items[i].field, list);
		}
		json_array_append_new(list, json_string(errs->items[i].message));
	}
	/* The first problem is the human sentence: more useful than "Invalid input." */
	if (errs->n > 0)
		json_object_set_new(body, "error", json_string(errs->items[0].message));
	json_object_set_new(body, "fields", fields);
	http_reply_json_new(req, info->status, body);
}
