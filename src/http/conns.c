/*
 * The listening socket, the accept thread and the table of open connections
 * (see conns.h for why roster accepts for MHD).
 *
 * Every connection MHD opens is a slot in a list, oldest first, from MHD's
 * NOTIFY_CONNECTION STARTED to CLOSED. A slot has the phase of the request
 * on it and a deadline for that phase:
 *
 *   HEAD (a head is awaited)  --conns_head_done-->  BODY  --conns_body_done-->  BUSY
 *     ^  deadline: head_timeout from the connection, or     deadline:         (no
 *     |  idle_timeout + head_timeout from the last reply    body_timeout      deadline)
 *     +--------------------------conns_reply_done----------------------------------+
 *
 * The accept thread wakes at least every REAP_MS and shuts down (shutdown(2),
 * never close: the fd stays MHD's) each connection past its deadline; MHD
 * then reads end-of-file and closes it on its own thread. The fd is
 * valid while its slot is in the list: MHD calls CLOSED, which removes the
 * slot under `mu`, before it closes the socket, and the accept thread shuts
 * sockets down only under `mu`.
 *
 * Room for new clients: when `live` (slots not yet shut down) and `pending`
 * (handed to MHD, not yet started) reach max_connections, a new connection first shuts down the
 * incomplete one (HEAD or BODY) whose phase began longest ago; only when every connection is busy
 * is the new one refused. MHD's own limit is max_connections plus a margin, for connections shut
 * down but not yet closed.
 */
#include "http/conns.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REAP_MS      250
#define ACCEPT_BATCH 128

enum phase { PH_HEAD, PH_BODY, PH_BUSY };

/* Open connections per client address (http_addr_key); n == 0: a free cell. */
struct addr_count {
	unsigned char key[17];
	unsigned n;
};

struct slot {
	struct slot *prev, *next;
	const struct conns *c;
	int fd;
	bool metrics; /* accepted on the metrics listener */
	bool counted; /* in the per-address table under `key` */
	unsigned char key[17];
	_Atomic int phase;
	_Atomic uint64_t since_us;    /* when the phase began (for the choice of whom to close) */
	_Atomic uint64_t deadline_us; /* 0: none */
	bool shut;                    /* under conns.mu */
};

struct conns {
	struct conns_opts o;
	pthread_mutex_t mu; /* the list, `live`, each slot's `shut` */
	struct slot *head, *tail;
	struct addr_count *addrs; /* open addressing, linear probing; naddrs a power of two */
	size_t naddrs;
	unsigned live;    /* slots not shut down */
	unsigned pending; /* handed to MHD, not yet STARTED (MHD starts them on its threads) */
	uint64_t last_admit_us;
	struct MHD_Daemon *daemon;
	int listen_fd;
	int metrics_fd;                     /* -1: none */
	struct sockaddr_storage metrics_ss; /* its bound address */
	int wake[2];                        /* a byte on wake[1] stops the accept thread */
	pthread_t thread;
	bool running;
};

struct conns *
conns_new(const struct conns_opts *o)
{
	struct conns *c = xcalloc(1, sizeof(*c));

	c->o = *o;
	/* At most one cell per connection MHD may hold (max + margin, see
	 * server.c): twice that many cells keep probes short and never fill. */
	c->naddrs = 64;
	while (c->naddrs < 2 * ((size_t)o->max_connections * 2 + 64))
		c->naddrs *= 2;
	c->addrs = o->max_per_addr > 0 ? xcalloc(c->naddrs, sizeof(*c->addrs)) : NULL;
	c->listen_fd = c->metrics_fd = -1;
	c->wake[0] = c->wake[1] = -1;
	pthread_mutex_init(&c->mu, NULL);
	return c;
}

int
conns_listen(const struct sockaddr_storage *ss, bool reuse_port)
{
	int one = 1;
	socklen_t len =
	    ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) ||
	    (ss->ss_family == AF_INET6 &&
	        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
	    bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, SOMAXCONN) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Under c->mu. */
static void
shut(struct conns *c, struct slot *s, enum metrics_conn why)
{
	shutdown(s->fd, SHUT_RDWR);
	s->shut = true;
	c->live--;
	metrics_conn_closed(why);
}

/* Under c->mu: the incomplete connection whose phase began longest ago, or NULL. */
static struct slot *
oldest_incomplete(struct conns *c)
{
	struct slot *best = NULL;

	for (struct slot *s = c->head; s != NULL; s = s->next)
		if (!s->shut && atomic_load(&s->phase) != PH_BUSY &&
		    (best == NULL || atomic_load(&s->since_us) < atomic_load(&best->since_us)))
			best = s;
	return best;
}

/*
 * Under c->mu: every connection past its phase's deadline is shut down. And
 * `pending` forgets what MHD dropped without a notification (out of memory,
 * its own limit): a connection is STARTED microseconds after it was handed
 * over, so none is pending a whole REAP_MS after the last hand-over.
 */
static void
reap(struct conns *c, uint64_t now)
{
	if (now - c->last_admit_us > REAP_MS * 1000u)
		c->pending = 0;
	for (struct slot *s = c->head; s != NULL; s = s->next) {
		uint64_t d = atomic_load(&s->deadline_us);

		if (!s->shut && d != 0 && now > d)
			shut(c, s,
			    atomic_load(&s->phase) == PH_BODY ? METRICS_CONN_BODY_DEADLINE
			                                      : METRICS_CONN_HEAD_DEADLINE);
	}
}

/* One accepted socket: make room if the server is full, then hand it to MHD. */
static void
admit(struct conns *c, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	bool room = true;

	pthread_mutex_lock(&c->mu);
	if (c->live + c->pending >= c->o.max_connections) {
		struct slot *victim = oldest_incomplete(c);

		if (victim != NULL)
			shut(c, victim, METRICS_CONN_EVICTED);
		else
			room = false;
	}
	if (room) {
		c->pending++;
		c->last_admit_us = pool_now_us();
	}
	pthread_mutex_unlock(&c->mu);
	if (!room) {
		metrics_conn_closed(METRICS_CONN_REFUSED);
		close(fd);
		return;
	}
	/* MHD closes the socket itself when it refuses it (its per-IP limit). */
	if (MHD_add_connection(c->daemon, fd, (const struct sockaddr *)ss, len) != MHD_YES) {
		pthread_mutex_lock(&c->mu);
		c->pending--;
		pthread_mutex_unlock(&c->mu);
	}
}

/* Accepts what is pending on `lfd`; false when the process is out of descriptors (back off). */
static bool
accept_batch(struct conns *c, int lfd)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			admit(c, fd, &ss, len);
			continue;
		}
		switch (errno) {
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			continue;
		case EMFILE:
		case ENFILE:
		case ENOBUFS:
		case ENOMEM:
			return false;
		default: /* EAGAIN: nothing more pending */
			return true;
		}
	}
	return true;
}

static void *
accept_main(void *arg)
{
	struct conns *c = arg;
	uint64_t next_reap = pool_now_us() + REAP_MS * 1000u;
	bool starved = false;

	for (;;) {
		struct pollfd p[3] = {{.fd = c->wake[0], .events = POLLIN},
		    {.fd = c->listen_fd, .events = POLLIN},
		    {.fd = c->metrics_fd, .events = POLLIN}};
		uint64_t now;

		/* Out of descriptors: the listening sockets stay readable; wait for a reap.
		 * (poll ignores a negative fd: no metrics listener.) */
		if (poll(p, starved ? 1 : 3, REAP_MS) < 0 && errno != EINTR)
			break;
		if (p[0].revents != 0)
			break;
		for (int i = 1; i < 3 && !starved; i++)
			if ((p[i].revents & POLLIN) != 0 && !accept_batch(c, p[i].fd)) {
				log_msg(RS_LOG_WARNING,
				    "out of file descriptors: not accepting for %d ms", REAP_MS);
				starved = true;
			}
		now = pool_now_us();
		if (now >= next_reap) {
			pthread_mutex_lock(&c->mu);
			reap(c, now);
			pthread_mutex_unlock(&c->mu);
			next_reap = now + REAP_MS * 1000u;
			starved = false;
		}
	}
	return NULL;
}

bool
conns_start(struct conns *c, struct MHD_Daemon *d, int fd, int metrics_fd)
{
	socklen_t len = sizeof(c->metrics_ss);

	c->daemon = d;
	c->listen_fd = fd;
	c->metrics_fd = metrics_fd;
	if (metrics_fd >= 0 &&
	    getsockname(metrics_fd, (struct sockaddr *)&c->metrics_ss, &len) != 0)
		return false;
	if (pipe2(c->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		c->wake[0] = c->wake[1] = -1;
		return false;
	}
	if (pthread_create(&c->thread, NULL, accept_main, c) != 0)
		return false;
	c->running = true;
	return true;
}

void
conns_stop(struct conns *c)
{
	if (c->running) {
		ssize_t n;

		do
			n = write(c->wake[1], "q", 1);
		while (n < 0 && errno == EINTR);
		pthread_join(c->thread, NULL);
		c->running = false;
	}
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->metrics_fd >= 0)
		close(c->metrics_fd);
	c->listen_fd = c->metrics_fd = -1;
}

void
conns_free(struct conns *c)
{
	if (c == NULL)
		return;
	conns_stop(c);
	for (int i = 0; i < 2; i++)
		if (c->wake[i] >= 0)
			close(c->wake[i]);
	while (c->head != NULL) { /* MHD closed every connection it had; be safe */
		struct slot *s = c->head;

		c->head = s->next;
		free(s);
	}
	pthread_mutex_destroy(&c->mu);
	free(c->addrs);
	free(c);
}

static struct slot *
slot_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/* The connection's local address is the metrics listener's: its port, and its
 * address unless that is a wildcard. */
static bool
on_metrics_listener(const struct conns *c, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_storage *m = &c->metrics_ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0 || ss.ss_family != m->ss_family)
		return false;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ss, *b = (const void *)m;

		return a->sin_port == b->sin_port && (b->sin_addr.s_addr == htonl(INADDR_ANY) ||
		                                         a->sin_addr.s_addr == b->sin_addr.s_addr);
	}
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss, *b = (const void *)m;

		return a->sin6_port == b->sin6_port &&
		       (IN6_IS_ADDR_UNSPECIFIED(&b->sin6_addr) ||
		           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof(a->sin6_addr)) == 0);
	}
	return false;
}

bool
conns_is_metrics(struct MHD_Connection *conn)
{
	struct slot *s = slot_of(conn);

	return s != NULL && s->metrics;
}

static size_t
addr_hash(const unsigned char key[17])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (int i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	return h;
}

/* Under c->mu: the cell of `key`, or the free cell where it would go. */
static struct addr_count *
addr_cell(struct conns *c, const unsigned char key[17])
{
	size_t mask = c->naddrs - 1;

	for (size_t i = addr_hash(key) & mask;; i = (i + 1) & mask)
		if (c->addrs[i].n == 0 || memcmp(c->addrs[i].key, key, 17) == 0)
			return &c->addrs[i];
}

/* Under c->mu: one connection of `key` less; the cells after a freed one move back. */
static void
addr_release(struct conns *c, const unsigned char key[17])
{
	size_t mask = c->naddrs - 1;
	struct addr_count *cell = addr_cell(c, key);
	size_t i = (size_t)(cell - c->addrs), j = i;

	if (cell->n == 0 || --cell->n > 0)
		return;
	for (;;) { /* backward-shift deletion: no tombstones */
		size_t home;

		j = (j + 1) & mask;
		if (c->addrs[j].n == 0)
			break;
		home = addr_hash(c->addrs[j].key) & mask;
		/* Move j into the hole at i unless its home lies cyclically in (i, j]. */
		if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) {
			c->addrs[i] = c->addrs[j];
			c->addrs[j].n = 0;
			i = j;
		}
	}
}

/*
 * Under c->mu: counts the new connection against its address; false when the
 * address already has max_per_addr open. A trusted proxy is not counted.
 */
static bool
addr_admit(struct conns *c, struct slot *s, struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci != NULL ? ci->client_addr : NULL;
	struct addr_count *cell;

	if (c->addrs == NULL || !http_addr_key(sa, s->key) || http_peer_trusted(c->o.proxies, sa))
		return true;
	cell = addr_cell(c, s->key);
	if (cell->n >= c->o.max_per_addr)
		return false;
	if (cell->n == 0)
		memcpy(cell->key, s->key, 17);
	cell->n++;
	s->counted = true;
	return true;
}

static void
set_phase(struct slot *s, enum phase ph, uint64_t since, unsigned timeout_s)
{
	atomic_store(&s->since_us, since);
	atomic_store(&s->deadline_us, timeout_s > 0 ? since + (uint64_t)timeout_s * 1000000u : 0);
	atomic_store(&s->phase, ph);
}

void
conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code)
{
	struct conns *c = cls;
	struct slot *s = *socket_context;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

		s = xcalloc(1, sizeof(*s));
		s->c = c;
		s->fd = ci != NULL ? ci->connect_fd : -1;
		s->metrics = c->metrics_fd >= 0 && s->fd >= 0 && on_metrics_listener(c, s->fd);
		set_phase(s, PH_HEAD, pool_now_us(), c->o.head_timeout_s);
		pthread_mutex_lock(&c->mu);
		s->prev = c->tail;
		if (c->tail != NULL)
			c->tail->next = s;
		else
			c->head = s;
		c->tail = s;
		c->live++;
		if (c->pending > 0)
			c->pending--;
		if (!addr_admit(c, s, conn))
			shut(c, s, METRICS_CONN_PER_ADDRESS); /* MHD closes it at once */
		pthread_mutex_unlock(&c->mu);
		metrics_conn_open(1);
		*socket_context = s;
		return;
	}
	if (s == NULL)
		return;
	pthread_mutex_lock(&c->mu);
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		c->head = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	else
		c->tail = s->prev;
	if (!s->shut)
		c->live--;
	if (s->counted)
		addr_release(c, s->key);
	pthread_mutex_unlock(&c->mu);
	metrics_conn_open(-1);
	free(s);
	*socket_context = NULL;
}

void
conns_head_done(struct MHD_Connection *conn)
{
	struct slot *s = slot_of(conn);

	if (s != NULL)
		set_phase(s, PH_BODY, pool_now_us(), s->c->o.body_timeout_s);
}

void
conns_body_done(struct MHD_Connection *conn)
{
	struct slot *s = slot_of(conn);

	if (s != NULL)
		set_phase(s, PH_BUSY, pool_now_us(), 0);
}

void
conns_reply_done(struct MHD_Connection *conn)
{
	struct slot *s = slot_of(conn);

	/* The next head may wait the idle timeout before its deadline starts. */
	if (s != NULL)
		set_phase(s, PH_HEAD, pool_now_us() + (uint64_t)s->c->o.idle_timeout_s * 1000000u,
		    s->c->o.head_timeout_s);
}
