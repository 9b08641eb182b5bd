/*
 * mail transports: `file:DIR` (one .eml per mail, written atomically: a temp
 * file in DIR, fsync, rename, fsync of DIR) and `smtp://` / `smtps://` through
 * libcurl (one easy handle per transport, so its connection is reused by the
 * one thread that owns it). The envelope comes only from mail_address_ascii's
 * output: libcurl 7.88 would pass a CR or LF in an address into the SMTP
 * command. Outcomes: SENT; RETRY for anything that may pass (refused or timed
 * out connections, SMTP 4xx, TLS and login failures, disk errors); REFUSED for
 * an SMTP 5xx answer to the mail or an address we will not send to.
 */
#include "mail/mail.h"
#include "xmalloc.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SMTP_CONNECT_TIMEOUT_S 10L
#define SMTP_TOTAL_TIMEOUT_S   30L

enum kind { KIND_FILE, KIND_SMTP };

struct mail_transport {
	enum kind kind;
	char dir[PATH_MAX];
	CURL *curl;
	char *base;        /* scheme://host:port, no user information */
	char *user, *pass; /* decoded; pass wiped on close */
	bool tls_required;
	char last_reply[256]; /* the server's last answer line, for `detail` */
};

/* snprintf whose truncation is expected: a detail or path is cut, never overrun. */
static void __attribute__((format(printf, 3, 4))) fmt(char *out, size_t size, const char *f, ...)
{
	va_list ap;

	va_start(ap, f);
	vsnprintf(out, size, f, ap);
	va_end(ap);
}

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void
global_init(void)
{
	/* libcurl's global state (OpenSSL's too): once, before any thread uses a handle. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		abort();
}

void
mail_init(void)
{
	pthread_once(&init_once, global_init);
}

/* mkdir -p; 0 or -1 with errno. */
static int
make_dirs(const char *dir)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(path, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char c = path[i];

		path[i] = '\0';
		if (mkdir(path, 0750) != 0 && errno != EEXIST)
			return -1;
		path[i] = c;
	}
	return 0;
}

static void
file_send(struct mail_transport *t, const char *msg, size_t len, struct mail_result *out)
{
	char tmp[PATH_MAX + 64], final[PATH_MAX + 64], rnd[17];
	unsigned char r[8];
	struct timespec now;
	struct tm tm;
	size_t done = 0;
	int fd = -1, dfd = -1;
	const char *what = "create";

	randombytes_buf(r, sizeof(r));
	sodium_bin2hex(rnd, sizeof(rnd), r, sizeof(r));
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	fmt(tmp, sizeof(tmp), "%s/.tmp-%s.eml", t->dir, rnd);
	fmt(final, sizeof(final), "%s/%04d%02d%02dT%02d%02d%02d.%06ldZ-%s.eml", t->dir,
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    now.tv_nsec / 1000, rnd);
	if (make_dirs(t->dir) != 0) {
		what = "create the directory";
		goto fail;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		goto fail;
	what = "write";
	while (done < len) {
		ssize_t n = write(fd, msg + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		done += (size_t)n;
	}
	if (fsync(fd) != 0)
		goto fail;
	what = "close";
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	what = "rename";
	if (rename(tmp, final) != 0)
		goto fail;
	dfd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		(void)fsync(dfd); /* the rename itself durable; the file is complete either way */
		close(dfd);
	}
	out->outcome = MAIL_SENT;
	fmt(out->detail, sizeof(out->detail), "%s", final);
	return;
fail:
	out->outcome = MAIL_RETRY;
	fmt(out->detail, sizeof(out->detail), "cannot %s %s: %s", what,
	    strcmp(what, "create the directory") == 0 ? t->dir : tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
}

/* SMTP */

struct reader {
	const char *p;
	size_t left;
};

static size_t
read_cb(char *dst, size_t size, size_t n, void *arg)
{
	struct reader *r = arg;
	size_t k = size * n < r->left ? size * n : r->left;

	memcpy(dst, r->p, k);
	r->p += k;
	r->left -= k;
	return k;
}

/* libcurl hands each server answer line of SMTP to the header callback: keep the last one. */
static size_t
header_cb(char *line, size_t size, size_t n, void *arg)
{
	struct mail_transport *t = arg;
	size_t len = size * n, k = 0;

	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	/* The answer to the QUIT libcurl sends after a failure would hide the failure's answer. */
	if (len == 0 ||
	    (len >= 4 && memcmp(line, "221", 3) == 0 && (line[3] == ' ' || line[3] == '-')))
		return size * n;
	for (size_t i = 0; i < len && k + 1 < sizeof(t->last_reply); i++) /* printable only */
		t->last_reply[k++] =
		    (unsigned char)line[i] >= 0x20 && line[i] != 0x7f ? line[i] : '?';
	t->last_reply[k] = '\0';
	return size * n;
}

static enum mail_outcome
smtp_outcome(CURLcode rc, long code)
{
	if (rc == CURLE_OK)
		return MAIL_SENT;
	if (code >= 500 && code <= 599 && rc != CURLE_LOGIN_DENIED)
		return MAIL_REFUSED; /* the server refuses this mail for good */
	/* 4xx, no connection, a timeout, TLS or credentials: may pass later (or once fixed). */
	return MAIL_RETRY;
}

static void
smtp_send(struct mail_transport *t, const struct mail_message *m, const char *msg, size_t len,
    struct mail_result *out)
{
	char from[260], to[260], ascii[256], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *rcpt = NULL;
	struct reader r = {msg, len};
	CURL *c = t->curl;
	CURLcode rc;
	long code = 0;

	/* mail_render accepted both, so these succeed; the envelope is built from them only. */
	if (!mail_address_ascii(m->from, ascii, sizeof(ascii)))
		goto refused;
	fmt(from, sizeof(from), "<%s>", ascii);
	if (!mail_address_ascii(m->to, ascii, sizeof(ascii)))
		goto refused;
	fmt(to, sizeof(to), "<%s>", ascii);
	rcpt = curl_slist_append(NULL, to);
	t->last_reply[0] = '\0';
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, t->base);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, SMTP_CONNECT_TIMEOUT_S);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, SMTP_TOTAL_TIMEOUT_S);
	curl_easy_setopt(
	    c, CURLOPT_USE_SSL, t->tls_required ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
	if (t->user != NULL) {
		curl_easy_setopt(c, CURLOPT_USERNAME, t->user);
		curl_easy_setopt(c, CURLOPT_PASSWORD, t->pass != NULL ? t->pass : "");
	}
	curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
	curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
	curl_easy_setopt(c, CURLOPT_READDATA, &r);
	curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	out->outcome = smtp_outcome(rc, code);
	if (rc == CURLE_USE_SSL_FAILED && t->tls_required)
		fmt(out->detail, sizeof(out->detail),
		    "not sent: the server offers no STARTTLS and the URL says starttls=required");
	else if (rc == CURLE_OK)
		fmt(out->detail, sizeof(out->detail), "%s", t->last_reply);
	else if (t->last_reply[0] != '\0')
		fmt(out->detail, sizeof(out->detail), "%s (%s)", t->last_reply,
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	else
		fmt(out->detail, sizeof(out->detail), "%s",
		    errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	curl_slist_free_all(rcpt);
	return;
refused:
	out->outcome = MAIL_REFUSED;
	fmt(out->detail, sizeof(out->detail), "address refused");
}

static int
smtp_open(struct mail_transport *t, const char *url, char *err, size_t errlen)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *user = NULL, *pass = NULL, *query = NULL;
	CURLU *u = curl_url();
	int ret = -1;

	if (u == NULL || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		fmt(err, errlen, "not a valid smtp:// or smtps:// URL");
		goto out;
	}
	curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
	if (curl_url_get(u, CURLUPART_USER, &user, CURLU_URLDECODE) == CURLUE_OK)
		t->user = xstrdup(user);
	if (curl_url_get(u, CURLUPART_PASSWORD, &pass, CURLU_URLDECODE) == CURLUE_OK)
		t->pass = xstrdup(pass);
	t->tls_required = curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK &&
	                  strcmp(query, "starttls=required") == 0;
	size_t n = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + 8;

	t->base = xmalloc(n);
	fmt(t->base, n, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "");
	t->curl = curl_easy_init();
	if (t->curl == NULL) {
		fmt(err, errlen, "cannot make a libcurl handle");
		goto out;
	}
	ret = 0;
out:
	if (pass != NULL)
		sodium_memzero(pass, strlen(pass));
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(user);
	curl_free(pass);
	curl_free(query);
	curl_url_cleanup(u);
	return ret;
}

struct mail_transport *
mail_transport_open(const char *url, char *err, size_t errlen)
{
	const char *problem = mail_url_problem(url);
	struct mail_transport *t;

	if (problem != NULL) {
		fmt(err, errlen, "%s", problem);
		return NULL;
	}
	mail_init();
	t = xcalloc(1, sizeof(*t));
	if (strncmp(url, "file:", 5) == 0) {
		t->kind = KIND_FILE;
		if (strlen(url + 5) >= sizeof(t->dir)) {
			fmt(err, errlen, "file: directory name too long");
			goto fail;
		}
		strcpy(t->dir, url + 5);
		return t;
	}
	t->kind = KIND_SMTP;
	if (smtp_open(t, url, err, errlen) == 0)
		return t;
fail:
	mail_transport_close(t);
	return NULL;
}

void
mail_transport_close(struct mail_transport *t)
{
	if (t == NULL)
		return;
	if (t->curl != NULL)
		curl_easy_cleanup(t->curl);
	if (t->pass != NULL)
		sodium_memzero(t->pass, strlen(t->pass));
	free(t->pass);
	free(t->user);
	free(t->base);
	free(t);
}

void
mail_send(struct mail_transport *t, const struct mail_message *m, struct mail_result *out)
{
	size_t len = 0;
	char *msg = mail_render(m, &len);

	out->detail[0] = '\0';
	if (msg == NULL) {
		out->outcome = MAIL_REFUSED;
		fmt(out->detail, sizeof(out->detail), "not sent: %s address refused",
		    m != NULL && !mail_address_ok(m->from) ? "the sender" : "the recipient");
		return;
	}
	if (t->kind == KIND_FILE)
		file_send(t, msg, len, out);
	else
		smtp_send(t, m, msg, len, out);
	free(msg);
}
