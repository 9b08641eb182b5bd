/* The router, trusted proxies, the Authorization parser and metrics (src/http, src/api,
 * src/metrics.c). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/internal.h"
#include "http/proxy.h"
#include "http/req.h"
#include "log.h"
#include "metrics.h"

/* The route table main passes to the server, and the matcher of http/. */
static const struct http_route *
find(const char *path, int64_t *id)
{
	size_t n;
	const struct http_route *routes = api_routes(&n);

	return http_route_find(routes, n, path, id);
}

Test(http_route, matches_with_and_without_trailing_slash)
{
	int64_t id = -1;

	cr_assert_not_null(find("/users/register/", &id));
	cr_assert_eq(find("/users/register", &id), find("/users/register/", &id));
	cr_assert_eq(id, 0);
	cr_assert_null(find("/users/register//", &id));
	cr_assert_null(find("/users/registerx", &id));
	cr_assert_null(find("/", &id));
}

Test(http_route, id_segment_parsed)
{
	int64_t id = 0;
	const struct http_route *r = find("/users/invitations/42/resend/", &id);

	cr_assert_not_null(r);
	cr_assert_str_eq(r->path, "/users/invitations/{id}/resend/");
	cr_assert_eq(id, 42);
	r = find("/users/invitations/7", &id);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->path, "/users/invitations/{id}/");
	cr_assert_eq(id, 7);
}

Test(http_route, literal_beats_id_and_bad_ids_rejected)
{
	int64_t id = 0;

	cr_assert_str_eq(
	    find("/users/invitations/accept/", &id)->path, "/users/invitations/accept/");
	cr_assert_null(find("/users/invitations/0/", &id));
	cr_assert_null(find("/users/invitations/-1/", &id));
	cr_assert_null(find("/users/invitations/12a/", &id));
	cr_assert_null(find("/users/invitations/1234567890123456789/", &id));
}

static struct sockaddr_in
v4(const char *ip)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	inet_pton(AF_INET, ip, &sa.sin_addr);
	return sa;
}

Test(http_proxies, parse_accepts_addresses_and_cidrs)
{
	struct http_proxies p;

	cr_assert_eq(http_proxies_parse("", &p), 0);
	cr_assert_eq(p.n, 0);
	cr_assert_eq(http_proxies_parse("127.0.0.1,10.0.0.0/8,::1,fd00::/8", &p), 0);
	cr_assert_eq(p.n, 4);
	cr_assert_eq(http_proxies_parse("10.0.0.0/33", &p), -1);
	cr_assert_eq(http_proxies_parse("example.com", &p), -1);
	cr_assert_eq(http_proxies_parse("10.0.0.1/", &p), -1);
}

Test(http_proxies, untrusted_peer_ignores_forwarded_for)
{
	struct http_proxies p;
	struct sockaddr_in peer = v4("192.0.2.5");
	char out[64];

	http_proxies_parse("127.0.0.1", &p);
	http_client_addr(&p, (struct sockaddr *)&peer, "203.0.113.9", out, NULL);
	cr_assert_str_eq(out, "192.0.2.5");
}

Test(http_proxies, trusted_chain_gives_rightmost_untrusted)
{
	struct http_proxies p;
	struct sockaddr_in peer = v4("127.0.0.1");
	char out[64];

	http_proxies_parse("127.0.0.1,10.0.0.0/8", &p);
	http_client_addr(
	    &p, (struct sockaddr *)&peer, "198.51.100.1, 203.0.113.9, 10.1.2.3", out, NULL);
	cr_assert_str_eq(out, "203.0.113.9"); /* 198.51.100.1 was the client's own claim */
	http_client_addr(&p, (struct sockaddr *)&peer, "garbage, 10.1.2.3", out, NULL);
	cr_assert_str_eq(out, "10.1.2.3");
	http_client_addr(&p, (struct sockaddr *)&peer, NULL, out, NULL);
	cr_assert_str_eq(out, "127.0.0.1");
}

static struct sockaddr_in6
v6(const char *ip)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6};

	inet_pton(AF_INET6, ip, &sa.sin6_addr);
	return sa;
}

Test(http_proxies, ipv4_mapped_peer_and_hop_are_ipv4)
{
	struct http_proxies p;
	struct sockaddr_in6 peer = v6("::ffff:127.0.0.1");
	char out[64];

	http_proxies_parse("127.0.0.1", &p);
	cr_assert(http_peer_trusted(&p, (struct sockaddr *)&peer), "::ffff:127.0.0.1 is 127.0.0.1");
	http_client_addr(&p, (struct sockaddr *)&peer, "::ffff:203.0.113.9", out, NULL);
	cr_assert_str_eq(out, "203.0.113.9");
	http_client_addr(&p, (struct sockaddr *)&peer, NULL, out, NULL);
	cr_assert_str_eq(out, "127.0.0.1");
}

Test(http_proxies, limit_address_is_ipv4_or_ipv6_slash_64)
{
	char out[64];

	http_limit_addr("2001:db8:1:2:aaaa:bbbb:cccc:dddd", out);
	cr_assert_str_eq(out, "2001:db8:1:2::/64");
	http_limit_addr("2001:db8:1:2::1", out);
	cr_assert_str_eq(out, "2001:db8:1:2::/64"); /* the same host's /64: one bucket */
	http_limit_addr("2001:db8:1:3::1", out);
	cr_assert_str_eq(out, "2001:db8:1:3::/64");
	http_limit_addr("::ffff:10.1.2.3", out);
	cr_assert_str_eq(out, "10.1.2.3");
	http_limit_addr("10.1.2.3", out);
	cr_assert_str_eq(out, "10.1.2.3");
	http_limit_addr("-", out);
	cr_assert_str_eq(out, "-");
}

Test(http_proxies, connection_key_counts_a_slash_64_once)
{
	struct sockaddr_in6 a = v6("2001:db8::1"), b = v6("2001:db8::ffff:1"),
	                    c = v6("2001:db8:0:1::1"), m = v6("::ffff:192.0.2.1");
	struct sockaddr_in d = v4("192.0.2.1");
	unsigned char ka[17], kb[17], kc[17], km[17], kd[17];

	cr_assert(http_addr_key((struct sockaddr *)&a, ka));
	cr_assert(http_addr_key((struct sockaddr *)&b, kb));
	cr_assert(http_addr_key((struct sockaddr *)&c, kc));
	cr_assert(http_addr_key((struct sockaddr *)&m, km));
	cr_assert(http_addr_key((struct sockaddr *)&d, kd));
	cr_assert_eq(memcmp(ka, kb, 17), 0);
	cr_assert_neq(memcmp(ka, kc, 17), 0);
	cr_assert_eq(memcmp(km, kd, 17), 0);
}

Test(api_auth, token_and_bearer_schemes)
{
	const char *t = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	char h[128], out[65];

	snprintf(h, sizeof(h), "Token %s", t);
	cr_assert(api_auth_token(h, out));
	cr_assert_str_eq(out, t);
	snprintf(h, sizeof(h), "bearer %s  ", t);
	cr_assert(api_auth_token(h, out));
	snprintf(h, sizeof(h), "Basic %s", t);
	cr_assert_not(api_auth_token(h, out));
	snprintf(h, sizeof(h), "Token %s0", t);
	cr_assert_not(api_auth_token(h, out));
	snprintf(h, sizeof(h), "Token %s extra", t);
	cr_assert_not(api_auth_token(h, out));
	cr_assert_not(api_auth_token("Token ABCDEF", out));
	cr_assert_not(api_auth_token("Token", out));
	cr_assert_not(api_auth_token(NULL, out));
}

Test(metrics, counts_requests_and_renders_histograms)
{
	static const char *names[] = {"/a", "/b"};
	char *text;

	metrics_set_routes(names, 2);
	metrics_request(0, 201, 300);
	metrics_request(0, 201, 3000000);
	metrics_request(2, 404, 10);
	metrics_registration(METRICS_REG_CREATED);
	text = metrics_render(3, 258);
	cr_assert_not_null(text);
	cr_assert_not_null(
	    strstr(text, "roster_http_requests_total{route=\"/a\",status=\"201\"} 2\n"));
	cr_assert_not_null(
	    strstr(text, "roster_http_requests_total{route=\"other\",status=\"404\"} 1\n"));
	cr_assert_not_null(strstr(
	    text, "roster_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.0005\"} 1\n"));
	cr_assert_not_null(strstr(
	    text, "roster_http_request_duration_seconds_bucket{route=\"/a\",le=\"2.5\"} 1\n"));
	cr_assert_not_null(
	    strstr(text, "roster_http_request_duration_seconds_bucket{route=\"/a\",le=\"5\"} 2\n"));
	cr_assert_not_null(strstr(text, "roster_registrations_total{outcome=\"created\"} 1\n"));
	cr_assert_not_null(strstr(text, "roster_hash_queue_depth 3\n"));
	free(text);
}

/* Every route names the API's error renderer: http/'s errors carry the API's codes. */
Test(api_routes, every_route_renders_api_errors)
{
	size_t n;
	const struct http_route *routes = api_routes(&n);

	cr_assert_gt(n, 0);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(routes[i].on_error, api_render_http_err, "%s", routes[i].path);
}

/* Issue 9: an error found earlier (here a 500) is not turned into a 413 by the next chunk. */
Test(http_body, earlier_error_stays_when_a_chunk_passes_the_limit)
{
	struct http_req req = {.early_err = HTTP_ERR_INTERNAL};

	cr_assert(http_body_append(&req, 4, "abcdef", 6));
	cr_assert_eq(req.early_err, HTTP_ERR_INTERNAL);
	cr_assert_eq(req.discarded, 6);
	cr_assert_null(req.body);
}

Test(http_body, over_the_limit_is_413_and_discarded)
{
	struct http_req req = {.early_err = HTTP_ERR_NONE};

	cr_assert(http_body_append(&req, 4, "ab", 2));
	cr_assert_eq(req.early_err, HTTP_ERR_NONE);
	cr_assert(http_body_append(&req, 4, "cde", 3));
	cr_assert_eq(req.early_err, HTTP_ERR_BODY_TOO_LARGE);
	cr_assert_eq(req.body_len, 2);
	cr_assert_str_eq(req.body, "ab");
	free(req.body);
}

static void
vlog(const char *id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(RS_LOG_WARNING, id, fmt, ap);
	va_end(ap);
}

/* log_vmsg is log_msg with a request id: what http_log writes. */
Test(log, vmsg_carries_the_request_id, .init = cr_redirect_stderr)
{
	char line[512] = "";
	FILE *err;

	vlog("rid-1", "waited %d ms", 7);
	fflush(stderr);
	err = cr_get_redirected_stderr();
	cr_assert_not_null(fgets(line, sizeof(line), err));
	cr_assert_not_null(strstr(line, "\"msg\":\"waited 7 ms\""), "%s", line);
	cr_assert_not_null(strstr(line, "\"request_id\":\"rid-1\""), "%s", line);
	cr_assert_not_null(strstr(line, "\"level\":\"warning\""), "%s", line);
}

/* Without a renderer, http/ answers its own errors in the plain JSON error format. */
Test(http_reply, raise_without_renderer_plain_json)
{
	struct http_server srv = {.opts = {.on_error = NULL}};
	struct http_req req = {.srv = &srv, .id = "r1"};

	http_raise(&req, HTTP_ERR_UNAVAILABLE);
	cr_assert_eq(req.state, HTTP_READY);
	cr_assert_eq(req.status, 503);
	cr_assert_eq(req.retry_after, 1);
	cr_assert_str_eq(req.reply, "{\"error\":\"The service is temporarily unavailable; retry "
	                            "shortly.\",\"code\":\"unavailable\",\"request_id\":\"r1\"}");
	free(req.reply);
}

/* A route's renderer decides: the API's renders http/'s 405 as its own row. */
Test(http_reply, raise_uses_the_route_renderer)
{
	struct http_server srv = {.opts = {.on_error = NULL}};
	int64_t id;
	struct http_req req = {.srv = &srv, .id = "r2", .route = find("/users/login/", &id)};

	cr_assert_not_null(req.route);
	http_raise(&req, HTTP_ERR_METHOD_NOT_ALLOWED);
	cr_assert_eq(req.status, 405);
	cr_assert_str_eq(req.reply,
	    "{\"error\":\"Method not allowed.\",\"code\":\"method_not_allowed\","
	    "\"request_id\":\"r2\"}");
	free(req.reply);
}
