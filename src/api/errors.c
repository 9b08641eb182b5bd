/* The single table of API errors: status, stable code, exact message (API.md). */
#include "api/api.h"
#include "accounts/acct.h"
#include "http/http.h"

#include <assert.h>

static const struct api_err_info table[] = {
    [API_ERR_NONE] = {200, "ok", "OK."},
    [API_ERR_MALFORMED_JSON] = {400, "malformed_json",
        "The request body must be a JSON object in valid UTF-8."},
    [API_ERR_BAD_REQUEST] = {400, "bad_request", "The request is malformed."},
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
    [API_ERR_NOT_FOUND] = {404, "not_found", "Not found."},
    [API_ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", "Method not allowed."},
    [API_ERR_INVITATION_PENDING] = {409, "invitation_pending",
        "An invitation is already pending for this email."},
    [API_ERR_CONFLICT] = {409, "conflict", "The invitation is not in a state that allows this."},
    [API_ERR_RATE_LIMITED] = {429, "rate_limited", "Too many requests; retry later."},
    [API_ERR_LENGTH_REQUIRED] = {411, "length_required",
        "A request body with Content-Length or chunked encoding is required."},
    [API_ERR_BODY_TOO_LARGE] = {413, "body_too_large", "The request body is too large."},
    [API_ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type",
        "The request body must be application/json."},
    [API_ERR_UNAVAILABLE] = {503, "unavailable",
        "The service is temporarily unavailable; retry shortly."},
    [API_ERR_INTERNAL] = {500, "internal", "An unexpected error occurred."},
    [API_ERR_INTERNAL_REGISTER] = {500, "internal",
        "An unexpected error occurred during registration."},
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

	if (info->status == 503 && req->retry_after == 0)
		req->retry_after = 1;
	if (info->status == 401)
		req->challenge = "Token";
	if (info->status >= 500)
		http_log(req, info->status == 503 ? RS_LOG_WARNING : RS_LOG_ERROR, "replying %d %s",
		    info->status, info->code);
	http_reply_json_new(req, info->status, error_body(req, info));
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
