/*
 * Trusted proxies: which peers may tell us the client's address in
 * X-Forwarded-For. No MHD here, so configuration can validate the list.
 */
#ifndef ROSTER_PROXY_H
#define ROSTER_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HTTP_PROXIES_MAX 32

struct http_net {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned prefix; /* bits */
};

struct http_proxies {
	size_t n;
	struct http_net nets[HTTP_PROXIES_MAX];
};

/* Parses "10.0.0.1,10.1.0.0/16,::1"; -1 when an item is not an address or CIDR. */
int http_proxies_parse(const char *list, struct http_proxies *out);

/*
 * The client's address as text: the peer itself unless it is a trusted proxy;
 * then the rightmost X-Forwarded-For entry that is not a trusted proxy.
 */
void http_client_addr(
    const struct http_proxies *p, const struct sockaddr *peer, const char *xff, char out[64]);

#endif
