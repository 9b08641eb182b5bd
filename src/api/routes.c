/*
 * The one route table, passed to http_server_start by main. Order matters
 * where a literal segment and {id} could both match ("accept" before "{id}").
 * Every route renders http/'s errors with api_render_http_err, so they carry
 * the API's codes and messages.
 */
#include "api/api.h"
#include "http/req.h"

#define R api_render_http_err

static const struct http_route routes[] = {
    /* path, methods, handler, Allow, methods that take a JSON body, error renderer */
    {"/users/register/", HTTP_POST, api_register, "POST", HTTP_POST, R, false},
    {"/users/login/", HTTP_POST, api_login, "POST", HTTP_POST, R, false},
    {"/users/logout/", HTTP_POST, api_logout, "POST", 0, R, false},
    {"/users/me/", HTTP_GET | HTTP_HEAD | HTTP_PATCH, api_me, "GET, HEAD, PATCH", HTTP_PATCH, R,
        false},
    {"/users/invitations/", HTTP_GET | HTTP_HEAD | HTTP_POST, api_invitations, "GET, HEAD, POST",
        HTTP_POST, R, false},
    {"/users/invitations/accept/", HTTP_POST, api_invitation_accept, "POST", HTTP_POST, R, false},
    {"/users/invitations/{id}/resend/", HTTP_POST, api_invitation_resend, "POST", 0, R, false},
    {"/users/invitations/{id}/", HTTP_DELETE, api_invitation, "DELETE", 0, R, false},
    {"/healthz", HTTP_GET | HTTP_HEAD, api_healthz, "GET, HEAD", 0, R, false},
    {"/readyz", HTTP_GET | HTTP_HEAD, api_readyz, "GET, HEAD", 0, R, false},
    {"/metrics", HTTP_GET | HTTP_HEAD, api_metrics, "GET, HEAD", 0, R, true},
    {"/auth/check",
        HTTP_GET | HTTP_HEAD | HTTP_POST | HTTP_PUT | HTTP_PATCH | HTTP_DELETE | HTTP_OPTIONS,
        api_auth_check, "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", 0, R, false},
    {"/openapi.json", HTTP_GET | HTTP_HEAD, api_openapi, "GET, HEAD", 0, R, false},
    /* The account lifecycle by email (lifecycle.c). */
    {"/users/email/verify/", HTTP_POST, api_email_verify, "POST", HTTP_POST, R, false},
    {"/users/email/verify/resend/", HTTP_POST, api_email_verify_resend, "POST", 0, R, false},
    {"/users/password/reset/", HTTP_POST, api_password_reset, "POST", HTTP_POST, R, false},
    {"/users/password/reset/confirm/", HTTP_POST, api_password_reset_confirm, "POST", HTTP_POST, R,
        false},
    {"/users/me/password/", HTTP_POST, api_password_change, "POST", HTTP_POST, R, false},
    {"/users/email/change/confirm/", HTTP_POST, api_email_change_confirm, "POST", HTTP_POST, R,
        false},
};

const struct http_route *
api_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
