/* JSON-lines logging; see log.h. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

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

/* The longest valid UTF-8 sequence starting at `s` (1-4 bytes), or 0 for an invalid byte. */
static size_t
utf8_len(const unsigned char *s)
{
	utf8proc_int32_t cp;
	utf8proc_ssize_t n = utf8proc_iterate(s, s[0] < 0x80 ? 1 : -1, &cp);

	return n > 0 ? (size_t)n : 0;
}

/*
 * Appends `s` as a JSON string body (no quotes) to buf[*o..], writing at most
 * `budget` bytes: valid UTF-8 as it is, quotes and backslashes escaped,
 * control characters as \u00XX, and each byte that is not UTF-8 visibly as
 * the text \xHH (so `/café` logs as `/café`, and `\xff` is never mistaken
 * for a character). A value cut at its budget ends in "..." and never inside a
 * sequence, so every field gets its share of the line.
 */
static void
put_escaped(char *buf, size_t *o, const char *s, size_t budget)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t end = *o + budget;

	while (*p != '\0') {
		size_t n = utf8_len(p), need = n;

		if (n == 0 || *p < 0x20 || *p == 0x7f)
			need = 6; /* \\xHH is 5, \u00XX is 6 */
		else if (*p == '"' || *p == '\\')
			need = 2;

		if (*o + need + 3 > end) {
			memcpy(buf + *o, "...", 3);
			*o += 3;
			return;
		}
		if (n == 0) { /* not UTF-8: the text \xHH, its backslash escaped */
			memcpy(buf + *o, "\\\\x", 3);
			buf[*o + 3] = hex[*p >> 4];
			buf[*o + 4] = hex[*p & 15];
			*o += 5;
			p++;
		} else if (*p < 0x20 || *p == 0x7f) {
			memcpy(buf + *o, "\\u00", 4);
			buf[*o + 4] = hex[*p >> 4];
			buf[*o + 5] = hex[*p & 15];
			*o += 6;
			p++;
		} else if (*p == '"' || *p == '\\') {
			buf[(*o)++] = '\\';
			buf[(*o)++] = (char)*p++;
		} else {
			memcpy(buf + *o, p, n);
			*o += n;
			p += n;
		}
	}
}

void
log_access(const char *request_id, const char *method, const char *path, int status,
    unsigned long long duration_us, const char *remote, bool completed)
{
	/* Each field has its share of the line: a 3,000-byte method cannot crowd
	 * out the path. 200 + 96 + 96 + 1500 + 96 + the fixed text < 2048. */
	char buf[2048], ts[64];
	size_t o;

	if (!log_enabled(RS_LOG_INFO))
		return;
	timestamp(ts);
	o = (size_t)snprintf(buf, sizeof(buf),
	    "{\"ts\":\"%s\",\"level\":\"info\",\"msg\":\"request\","
	    "\"request_id\":\"",
	    ts);
	put_escaped(buf, &o, request_id, 96);
	memcpy(buf + o, "\",\"method\":\"", 12);
	o += 12;
	put_escaped(buf, &o, method, 96);
	memcpy(buf + o, "\",\"path\":\"", 10);
	o += 10;
	put_escaped(buf, &o, path, 1500);
	o += (size_t)snprintf(buf + o, sizeof(buf) - o,
	    "\",\"status\":%d,\"duration_us\":%llu,\"remote\":\"", status, duration_us);
	put_escaped(buf, &o, remote, 96);
	o += (size_t)snprintf(
	    buf + o, sizeof(buf) - o, "\",\"completed\":%s}\n", completed ? "true" : "false");
	if (write(STDERR_FILENO, buf, o) < 0) {
		/* nowhere left to report it */
	}
}
