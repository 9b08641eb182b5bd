/*
 * JSON-lines logging to stderr: one object per line, written with one write(2)
 * so lines from many threads and processes never interleave. Never pass a
 * password, token or password hash to any of these.
 */
#ifndef ROSTER_LOG_H
#define ROSTER_LOG_H

#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>

enum log_level { RS_LOG_DEBUG, RS_LOG_INFO, RS_LOG_WARNING, RS_LOG_ERROR };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/* Parses "debug", "info", "warning" or "error"; -1 when unknown. */
int log_level_parse(const char *s);

/* A process-wide event: {"ts", "level", "msg"}. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * log_msg with a va_list, and with "request_id" when `request_id` is not
 * NULL (http_log is this with the request's id). The message is cut at 1023
 * bytes.
 */
void log_vmsg(enum log_level level, const char *request_id, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/*
 * {"ts", "level", "msg", "request_id"?, ...fields}: takes `fields` (an object,
 * or NULL); `request_id` may be NULL.
 */
void log_json_new(enum log_level level, const char *request_id, const char *msg, json_t *fields);

/*
 * The access line of one request, formatted without allocation (it is written
 * for every request). Strings need not be valid UTF-8: bytes outside ASCII are
 * escaped, so the line is always valid JSON.
 */
void log_access(const char *request_id, const char *method, const char *path, int status,
    unsigned long long duration_us, const char *remote, bool completed);

#endif
