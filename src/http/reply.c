/*
 * Replies: the setters handlers call (READING or WAITING → READY), the
 * HTTP-level error format {"error", "code", "request_id"}, the errors http/
 * raises itself, and the hand-over of a reply to MHD (READY → SENT).
 */
#include "http/internal.h"
#include "xmalloc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct http_err_info errors[] = {
    [HTTP_ERR_NONE] = {200, "ok", "OK."},
    [HTTP_ERR_BAD_REQUEST] = {400, "bad_request", HTTP_MSG_BAD_REQUEST},
    [HTTP_ERR_NOT_FOUND] = {404, "not_found", HTTP_MSG_NOT_FOUND},
    [HTTP_ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed", HTTP_MSG_METHOD_NOT_ALLOWED},
    [HTTP_ERR_LENGTH_REQUIRED] = {411, "length_required", HTTP_MSG_LENGTH_REQUIRED},
    [HTTP_ERR_BODY_TOO_LARGE] = {413, "body_too_large", HTTP_MSG_BODY_TOO_LARGE},
    [HTTP_ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type",
        HTTP_MSG_UNSUPPORTED_MEDIA_TYPE},
    [HTTP_ERR_NOT_IMPLEMENTED] = {501, "not_implemented", HTTP_MSG_NOT_IMPLEMENTED},
    [HTTP_ERR_UNAVAILABLE] = {503, "unavailable", HTTP_MSG_UNAVAILABLE},
    [HTTP_ERR_INTERNAL] = {500, "internal", HTTP_MSG_INTERNAL},
};

static_assert(sizeof(errors) / sizeof(errors[0]) == HTTP_ERR_COUNT_, "every http_err has a row");

const struct http_err_info *
http_err_info(enum http_err err)
{
	if ((unsigned)err >= HTTP_ERR_COUNT_)
		err = HTTP_ERR_INTERNAL;
	return &errors[err];
}

void
http_raise(struct http_req *req, enum http_err err)
{
	http_error_renderer render =
	    req->route != NULL ? req->route->on_error : req->srv->opts.on_error;
	const struct http_err_info *info = http_err_info(err);

	if (render != NULL)
		render(req, err);
	if (render == NULL || req->state != HTTP_READY)
		http_reply_error(req, info->status, info->code, info->message);
}

void
http_reply_json_new(struct http_req *req, int status, json_t *body)
{
	free(req->reply);
	req->reply = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	if (req->reply == NULL) {
		/* A body that cannot be formatted: a fixed one still says what happened. */
		req->reply =
		    xstrdup("{\"error\":\"An unexpected error occurred.\",\"code\":\"internal\"}");
		status = 500;
	}
	req->reply_len = strlen(req->reply);
	req->status = status;
	req->state = HTTP_READY;
}

bool
http_reply_header(struct http_req *req, const char *name, const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	if (req->nextra >= HTTP_EXTRA_HEADERS_MAX)
		return false;
	req->extra[req->nextra].name = name;
	req->extra[req->nextra].value = xstrdup(value);
	req->nextra++;
	return true;
}

void
http_reply_text_new(struct http_req *req, int status, char *text, const char *content_type)
{
	if (text == NULL) {
		http_raise(req, HTTP_ERR_INTERNAL);
		return;
	}
	free(req->reply);
	req->reply = text;
	req->reply_len = strlen(text);
	req->content_type = content_type;
	req->status = status;
	req->state = HTTP_READY;
}

void
http_reply_empty(struct http_req *req, int status)
{
	free(req->reply);
	req->reply = NULL;
	req->reply_len = 0;
	req->status = status;
	req->state = HTTP_READY;
}

void
http_reply_error(struct http_req *req, int status, const char *code, const char *message)
{
	if (status == 503 && req->retry_after == 0)
		req->retry_after = 1;
	if (status >= 500)
		http_log(req, status == 503 ? RS_LOG_WARNING : RS_LOG_ERROR, "replying %d %s",
		    status, code);
	http_reply_json_new(req, status,
	    json_pack("{s:s, s:s, s:s}", "error", message, "code", code, "request_id", req->id));
}

enum MHD_Result
http_queue_reply(struct http_req *req)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char retry[16];

	resp = MHD_create_response_from_buffer(req->reply_len, req->reply, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		return MHD_NO;
	req->reply = NULL; /* MHD frees it now */
	if (req->reply_len > 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		    req->content_type != NULL ? req->content_type : "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
	    req->cache_control != NULL ? req->cache_control : "no-store");
	MHD_add_response_header(resp, "X-Request-ID", req->id);
	if (req->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%u", req->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	if (req->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
	if (req->challenge != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, req->challenge);
	for (size_t i = 0; i < req->nextra; i++)
		MHD_add_response_header(resp, req->extra[i].name, req->extra[i].value);
	if (atomic_load(&req->srv->draining)) /* MHD closes the connection after this reply */
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(req->conn, (unsigned)req->status, resp);
	MHD_destroy_response(resp);
	req->state = HTTP_SENT;
	return ret;
}
