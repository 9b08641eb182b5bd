/* libFuzzer: the route table, trusted-proxy lists and X-Forwarded-For. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "http/proxy.h"
#include "http/req.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in peer = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
	char *s = fuzz_cstr(data, size), out[64], bucket[64];
	struct http_proxies p;
	size_t nroutes;
	const struct http_route *routes = api_routes(&nroutes);
	int64_t id;

	if (s == NULL)
		return 0;
	http_route_find(routes, nroutes, s, &id);
	if (http_proxies_parse(s, &p) != 0)
		http_proxies_parse("127.0.0.1,10.0.0.0/8,::1", &p);
	http_client_addr(&p, (struct sockaddr *)&peer, s, out, bucket);
	if (memchr(out, '\0', sizeof(out)) == NULL || memchr(bucket, '\0', sizeof(bucket)) == NULL)
		abort();
	free(s);
	return 0;
}
