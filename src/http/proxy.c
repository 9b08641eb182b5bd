/* Trusted proxies and X-Forwarded-For; see proxy.h. */
#include "http/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses one address (no prefix) into `net`; false when it is none. */
static bool
parse_addr(const char *s, size_t len, struct http_net *net)
{
	char buf[INET6_ADDRSTRLEN + 1];

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	memset(net, 0, sizeof(*net));
	if (inet_pton(AF_INET, buf, net->addr) == 1) {
		net->family = AF_INET;
		net->prefix = 32;
		return true;
	}
	if (inet_pton(AF_INET6, buf, net->addr) == 1) {
		net->family = AF_INET6;
		net->prefix = 128;
		return true;
	}
	return false;
}

int
http_proxies_parse(const char *list, struct http_proxies *out)
{
	const char *p = list;

	out->n = 0;
	while (*p != '\0') {
		size_t len = strcspn(p, ","), alen = strcspn(p, "/,");
		struct http_net net;

		if (len > 0) {
			if (out->n == HTTP_PROXIES_MAX || !parse_addr(p, alen, &net))
				return -1;
			if (alen < len) {
				char *end;
				unsigned long bits = strtoul(p + alen + 1, &end, 10);

				if (alen + 1 == len || end != p + len || bits > net.prefix)
					return -1;
				net.prefix = (unsigned)bits;
			}
			out->nets[out->n++] = net;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

static bool
in_net(const struct http_net *net, const struct http_net *a)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != a->family || memcmp(net->addr, a->addr, full) != 0)
		return false;
	return rest == 0 || ((net->addr[full] ^ a->addr[full]) & (0xff << (8 - rest))) == 0;
}

static bool
trusted(const struct http_proxies *p, const struct http_net *a)
{
	for (size_t i = 0; i < p->n; i++)
		if (in_net(&p->nets[i], a))
			return true;
	return false;
}

static void format(const struct http_net *a, char out[64]);

/* ::ffff:a.b.c.d is a.b.c.d. */
static void
unmap(struct http_net *a)
{
	if (a->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a->addr)) {
		memmove(a->addr, a->addr + 12, 4);
		memset(a->addr + 4, 0, 12);
		a->family = AF_INET;
		a->prefix = a->prefix >= 96 ? a->prefix - 96 : 0;
	}
}

/* An address as per-address limits count it: IPv4 as is, IPv6 by its /64. */
static void
format_bucket(struct http_net a, char out[64])
{
	if (a.family == AF_INET6) {
		memset(a.addr + 8, 0, 8);
		format(&a, out);
		strncat(out, "/64", 63 - strlen(out));
		return;
	}
	format(&a, out);
}

void
http_limit_addr(const char *remote, char out[64])
{
	struct http_net a;

	if (!parse_addr(remote, strlen(remote), &a)) {
		snprintf(out, 64, "%s", remote);
		return;
	}
	unmap(&a);
	format_bucket(a, out);
}

/* The peer's address as a /32 or /128 net; false for another family. */
static bool
peer_net(const struct sockaddr *peer, struct http_net *a)
{
	memset(a, 0, sizeof(*a));
	if (peer == NULL)
		return false;
	if (peer->sa_family == AF_INET) {
		a->family = AF_INET;
		memcpy(a->addr, &((const struct sockaddr_in *)peer)->sin_addr, 4);
	} else if (peer->sa_family == AF_INET6) {
		const struct in6_addr *v6 = &((const struct sockaddr_in6 *)peer)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(v6)) { /* ::ffff:a.b.c.d is a.b.c.d */
			a->family = AF_INET;
			memcpy(a->addr, &v6->s6_addr[12], 4);
		} else {
			a->family = AF_INET6;
			memcpy(a->addr, v6, 16);
		}
	} else {
		return false;
	}
	return true;
}

bool
http_peer_trusted(const struct http_proxies *p, const struct sockaddr *peer)
{
	struct http_net a;

	return peer_net(peer, &a) && trusted(p, &a);
}

bool
http_addr_key(const struct sockaddr *sa, unsigned char key[17])
{
	struct http_net a;

	memset(key, 0, 17);
	if (!peer_net(sa, &a))
		return false;
	key[0] = a.family == AF_INET ? 4 : 6;
	memcpy(key + 1, a.addr, a.family == AF_INET ? 4 : 8);
	return true;
}

static void
format(const struct http_net *a, char out[64])
{
	if (inet_ntop(a->family, a->addr, out, 64) == NULL)
		strcpy(out, "-");
}

/* The client: the peer, or the rightmost X-Forwarded-For hop that is not a trusted proxy. */
static bool
client_net(
    const struct http_proxies *p, const struct sockaddr *peer, const char *xff, struct http_net *a)
{
	if (!peer_net(peer, a))
		return false;
	if (xff == NULL || !trusted(p, a))
		return true;
	/* Right to left: each hop appended by a proxy we trust names the one before. */
	for (size_t end = strlen(xff); end > 0;) {
		size_t start = end;
		struct http_net hop;

		while (start > 0 && xff[start - 1] != ',')
			start--;
		if (!parse_addr(xff + start, end - start, &hop))
			return true; /* garbage: keep the last address we could trust */
		unmap(&hop);
		*a = hop;
		if (!trusted(p, &hop))
			return true;
		end = start > 0 ? start - 1 : 0;
	}
	return true;
}

void
http_client_addr(const struct http_proxies *p, const struct sockaddr *peer, const char *xff,
    char out[64], char bucket[64])
{
	struct http_net a;

	if (!client_net(p, peer, xff, &a)) {
		strcpy(out, "-");
		if (bucket != NULL)
			strcpy(bucket, "-");
		return;
	}
	format(&a, out);
	if (bucket != NULL)
		format_bucket(a, bucket);
}
