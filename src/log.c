/* JSON-lines logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = RS_LOG_INFO;
static const char *const names[] = {"debug", "info", "warning", "error"};

void
log_set_level(enum log_level level)
{
	min_level = level;
}

bool
log_enabled(enum log_level level)
{
	return level >= min_level;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static void
timestamp(char out[64])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

void
log_json_new(enum log_level level, const char *request_id, const char *msg, json_t *fields)
{
	char ts[64];
	json_t *line = NULL;
	char *text = NULL;
	size_t len;

	if (!log_enabled(level))
		goto out;
	timestamp(ts);
	line = json_pack("{s:s, s:s, s:s}", "ts", ts, "level", names[level], "msg", msg);
	if (line == NULL)
		goto out;
	if (request_id != NULL)
		json_object_set_new(line, "request_id", json_string(request_id));
	if (fields != NULL)
		json_object_update(line, fields);
	text = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (text == NULL)
		goto out;
	len = strlen(text);
	text[len] = '\n'; /* json_dumps' NUL becomes the newline; one write */
	if (write(STDERR_FILENO, text, len + 1) < 0) {
		/* nowhere left to report it */
	}
out:
	free(text);
	json_decref(line);
	json_decref(fields);
}

void
log_vmsg(enum log_level level, const char *request_id, const char *fmt, va_list ap)
{
	char buf[1024];

	if (!log_enabled(level))
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_json_new(level, request_id, buf, NULL);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, NULL, fmt, ap);
	va_end(ap);
}

/* Appends `s` as a JSON string body (no quotes) to buf[*o..cap), truncating safely. */
static void
put_escaped(char *buf, size_t cap, size_t *o, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s != '\0' && *o + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			buf[(*o)++] = '\\';
			buf[(*o)++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			memcpy(buf + *o, "\\u00", 4);
			buf[*o + 4] = hex[c >> 4];
			buf[*o + 5] = hex[c & 15];
			*o += 6;
		} else {
			buf[(*o)++] = (char)c;
		}
	}
}

void
log_access(const char *request_id, const char *method, const char *path, int status,
    unsigned long long duration_us, const char *remote, bool completed)
{
	char buf[2048], ts[64];
	size_t o;

	if (!log_enabled(RS_LOG_INFO))
		return;
	timestamp(ts);
	o = (size_t)snprintf(buf, sizeof(buf),
	    "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\","
	    "\"request_id\":\"",
	    ts);
	put_escaped(buf, sizeof(buf) - 256, &o, request_id);
	memcpy(buf + o, "\",\"method\":\"", 12);
	o += 12;
	put_escaped(buf, sizeof(buf) - 256, &o, method);
	memcpy(buf + o, "\",\"path\":\"", 10);
	o += 10;
	put_escaped(buf, sizeof(buf) - 256, &o, path);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o,
	    "\",\"status\":%d,\"duration_us\":%llu,\"remote\":\"", status, duration_us);
	put_escaped(buf, sizeof(buf) - 32, &o, remote);
	o += (size_t)snprintf(
	    buf + o, sizeof(buf) - o, "\",\"completed\":%s}\n", completed ? "true" : "false");
	if (write(STDERR_FILENO, buf, o) < 0) {
		/* nowhere left to report it */
	}
}
