/*
 * http/conns.h: the listening socket, the accept thread and the table of open
 * connections (conns.c). Included only from src/http/.
 *
 * roster accepts its connections itself and hands each to MHD with
 * MHD_add_connection, instead of letting MHD listen:
 * - Stopping to accept is closing our own socket on our own thread. MHD's
 *   way, MHD_quiesce_daemon, races its epoll threads over the same listening
 *   socket and can abort the process ("Failed to remove listen FD from epoll
 *   set", a defect of libmicrohttpd 0.9.75).
 * - Every open connection is in a table with the phase of its current
 *   request, so a request head (and a body) has a deadline of its own that
 *   trickling bytes cannot extend (MHD's timeout is an idle timeout), and a
 *   full server closes its oldest incomplete connection to make room for a
 *   new client instead of refusing it.
 * - The per-address limit is counted here too, so a trusted proxy (nginx,
 *   whose connections all come from one address) is exempt from it.
 */
#ifndef ROSTER_HTTP_CONNS_H
#define ROSTER_HTTP_CONNS_H

#include <microhttpd.h>

#include "http/proxy.h"
#include <stdbool.h>
#include <sys/socket.h>

struct conns;

struct conns_opts {
	/* Open at once; past it the oldest incomplete connection is closed. */
	unsigned max_connections;
	/* From the connection (or from the previous reply + the idle timeout) to a whole head. */
	unsigned head_timeout_s;
	/* From a whole head to a whole body. */
	unsigned body_timeout_s;
	/* MHD's; the deadline of a kept-alive connection's next head starts after it. */
	unsigned idle_timeout_s;
	/* Open at once per client address (IPv6: per /64); 0: no limit. */
	unsigned max_per_addr;
	/* Exempt from max_per_addr (borrowed). */
	const struct http_proxies *proxies;
};

/* The table alone; nothing listens yet. */
struct conns *conns_new(const struct conns_opts *o);

/*
 * A listening socket on `ss` (SO_REUSEADDR, SO_REUSEPORT when asked, IPv6
 * only for an IPv6 address). Returns the fd, or -1 with errno set.
 */
int conns_listen(const struct sockaddr_storage *ss, bool reuse_port);

/*
 * Starts the accept thread on `fd` and, unless it is -1, on the metrics
 * listener `metrics_fd` (both taken over), handing connections to `d`.
 */
bool conns_start(struct conns *c, struct MHD_Daemon *d, int fd, int metrics_fd);

/* The connection came in on the metrics listener. */
bool conns_is_metrics(struct MHD_Connection *conn);

/*
 * Stops accepting: joins the accept thread and closes the listening sockets,
 * so new connections are refused (a proxy tries the next instance).
 */
void conns_stop(struct conns *c);

/* After MHD_stop_daemon (its threads call conns_notify until then). */
void conns_free(struct conns *c);

/* MHD_OPTION_NOTIFY_CONNECTION; `cls` is the struct conns. */
void conns_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode code);

/* A request's phases, from on_request and on_completed: head read; body read; reply done. */
void conns_head_done(struct MHD_Connection *conn);
void conns_body_done(struct MHD_Connection *conn);
void conns_reply_done(struct MHD_Connection *conn);

#endif
