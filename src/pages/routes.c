/*
 * The pages' routes, appended by main to the API's table. Every one renders
 * http/'s errors as HTML pages (page_render_http_err), and none asks http/ for
 * a JSON body: the POSTs are forms, checked by the handlers.
 */
#include "pages/pages.h"
#include "pages/internal.h"
#include "http/req.h"

#define P    page_render_http_err
#define GHP  (HTTP_GET | HTTP_HEAD | HTTP_POST)
#define AGHP "GET, HEAD, POST"

static const struct http_route routes[] = {
    /* path, methods, handler, Allow, methods that take a JSON body, error renderer */
    {"/account/", GHP, page_profile, AGHP, 0, P, false},
    {"/account/login/", GHP, page_login, AGHP, 0, P, false},
    {"/account/logout/", HTTP_POST, page_logout, "POST", 0, P, false},
    {"/account/register/", GHP, page_register, AGHP, 0, P, false},
    {"/account/password/", HTTP_POST, page_password_change, "POST", 0, P, false},
    {"/account/password/forgot/", GHP, page_password_forgot, AGHP, 0, P, false},
    {"/account/password/reset/", GHP, page_password_reset, AGHP, 0, P, false},
    {"/account/email/", HTTP_POST, page_email_change_request, "POST", 0, P, false},
    {"/account/email/verify/", GHP, page_email_verify, AGHP, 0, P, false},
    {"/account/email/verify/resend/", HTTP_POST, page_verify_resend, "POST", 0, P, false},
    {"/account/email/change/", GHP, page_email_change, AGHP, 0, P, false},
    {"/account/invitation/", GHP, page_invitation, AGHP, 0, P, false},
    {"/account/invitations/", GHP, page_invitations, AGHP, 0, P, false},
    {"/account/static/site.css", HTTP_GET | HTTP_HEAD, page_css, "GET, HEAD", 0, P, false},
};

const struct http_route *
page_routes(size_t *n)
{
	*n = sizeof(routes) / sizeof(routes[0]);
	return routes;
}
