/*
 * notify.h: systemd's readiness protocol (sd_notify(3)) without libsystemd:
 * one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET. A leaf module.
 */
#ifndef ROSTER_NOTIFY_H
#define ROSTER_NOTIFY_H

#include <stdbool.h>

/*
 * Sends `state` ("READY=1", "STOPPING=1", ...) when $NOTIFY_SOCKET is set;
 * true when it was sent or there is no socket (outside systemd: nothing to do).
 */
bool notify_send(const char *state);

#endif
