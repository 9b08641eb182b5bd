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

/* The peer is one of the trusted proxies. */
bool http_peer_trusted(const struct http_proxies *p, const struct sockaddr *peer);

/*
 * A client's address as a limit counts it: IPv4 as is (and an IPv4-mapped
 * IPv6 address as the IPv4 address), IPv6 by its /64 (one host is given a
 * whole /64). 17 bytes: the family, then the address with the host bits zero.
 * False for another family.
 */
bool http_addr_key(const struct sockaddr *sa, unsigned char key[17]);

/*
 * A client's address (http_client_addr's text) as the API's per-address limits
 * count it: IPv4 as is, IPv6 as its /64 ("2001:db8:1:2::/64"), so the
 * addresses of one host's /64 share one bucket.
 */
void http_limit_addr(const char *remote, char out[64]);

/*
 * The client's address as text: the peer itself unless it is a trusted proxy;
 * then the rightmost X-Forwarded-For entry that is not a trusted proxy. With
 * `bucket` (may be NULL), the same address as http_limit_addr gives it.
 */
void http_client_addr(const struct http_proxies *p, const struct sockaddr *peer, const char *xff,
    char out[64], char bucket[64]);

#endif
