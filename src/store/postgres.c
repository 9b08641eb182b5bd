/*
 * PostgreSQL driver (libpq): one connection per thread, statements prepared
 * on first use, READ COMMITTED transactions. Every round trip is sent
 * asynchronously and waited for with poll() up to a deadline; past it the
 * connection is dropped (STORE_UNAVAILABLE), so a frozen server or network
 * costs a thread at most the deadline. A handle may be disconnected (lost,
 * or never connected with STORE_OPEN_LAZY): it reconnects on a later call,
 * no sooner than a backoff of 50 ms doubling to 2 s. A COMMIT whose answer is
 * lost is reported as unavailable, never as success.
 */
#include "store/driver.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#include <assert.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STATEMENT_TIMEOUT_MS 5000 /* server side: ends the query, keeps the connection */
#define DEADLINE_MS          5000 /* client side: a round trip unanswered this long drops it */
#define BACKOFF_MIN_MS       50
#define BACKOFF_MAX_MS       2000
#define MAX_ARGS             14 /* STMT_IMPORT_USER_UPSERT */
#define RS_STR_(x)           #x
#define RS_STR(x)            RS_STR_(x)

/* Added to the URL unless it sets them: bounded connects, dead peers noticed. */
static const char *const url_defaults[][2] = {
    {"connect_timeout", "2"},
    {"tcp_user_timeout", "5000"},
    {"keepalives", "1"},
    {"keepalives_idle", "5"},
    {"keepalives_interval", "2"},
    {"keepalives_count", "3"},
};

/* Timestamps leave the database as fixed-width RFC 3339 UTC text, as in SQLite. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

const char *const store_pg_sql[] = {
    [STMT_BEGIN] = "BEGIN",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_HAS_MIGRATIONS] =
        "SELECT (SELECT count(*) FROM pg_catalog.pg_tables"
        " WHERE schemaname = current_schema() AND tablename = 'schema_migrations'),"
        " (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = 'schema_migrations' AND column_name = 'compat')",
    [STMT_MIGRATIONS_TABLE] = "CREATE TABLE IF NOT EXISTS schema_migrations"
                              " (version integer PRIMARY KEY, name text NOT NULL,"
                              " applied_at timestamptz NOT NULL, compat integer)",
    [STMT_MIGRATIONS_COMPAT] = "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS"
                               " compat integer",
    [STMT_MIGRATION_LOCK] = "SELECT pg_advisory_xact_lock(7263001)",
    [STMT_INTEGRITY] = "SELECT 'ok'", /* the server checksums its pages itself */
    [STMT_RATE_SWEEP] = "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits"
                        " WHERE window_start <= $1 AND substr(key, 1, $3) = $2 LIMIT $4"
                        " FOR UPDATE SKIP LOCKED)",
    [STMT_TOKENS_SWEEP] = "DELETE FROM auth_tokens WHERE id IN (SELECT id FROM auth_tokens"
                          " WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    /* import (issue 13): ids are kept, and the identity sequences moved past them. */
    [STMT_IMPORT_USER_UPSERT] = SQL_IMPORT_USER_UPSERT("OVERRIDING SYSTEM VALUE"),
    [STMT_IMPORT_INV_UPSERT] = SQL_IMPORT_INV_UPSERT("OVERRIDING SYSTEM VALUE"),
    [STMT_IMPORT_SEQUENCES] = "SELECT setval(pg_get_serial_sequence('users', 'id'),"
                              " greatest((SELECT max(id) FROM users), 1)),"
                              " setval(pg_get_serial_sequence('teacher_invitations', 'id'),"
                              " greatest((SELECT max(id) FROM teacher_invitations), 1))",
    [STMT_MAIL_CLAIM] = SQL_MAIL_CLAIM_WHERE " FOR UPDATE SKIP LOCKED)" SQL_MAIL_CLAIMED,
    [STMT_MAIL_SWEEP] = "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox"
                        " WHERE (status = 'sent' AND sent_at <= $1)"
                        " OR (status = 'failed' AND created_at <= $1) LIMIT $2"
                        " FOR UPDATE SKIP LOCKED)",
    [STMT_OTK_SWEEP] = "DELETE FROM one_time_tokens WHERE id IN (SELECT id FROM one_time_tokens"
                       " WHERE expires_at <= $1 OR used_at <= $2 LIMIT $3"
                       " FOR UPDATE SKIP LOCKED)",
    SQL_COMMON,
    [STMT_AUDIT_SWEEP] = "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events"
                         " WHERE ts < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
    SQL_AUDIT,
};
static_assert(sizeof(store_pg_sql) / sizeof(store_pg_sql[0]) == STMT_COUNT_,
    "store_pg_sql has one text per enum store_stmt");

struct pg_store {
	struct store base;
	PGconn *conn; /* NULL while disconnected */
	char *url;
	bool prepared[STMT_COUNT_];
	struct timespec retry_at; /* no connection attempt before this */
	unsigned backoff_ms;      /* 0 after a success */
	unsigned failures;        /* attempts failed since the last success */
	bool ever_connected;
	bool no_database; /* the last attempt: the server said the database does not exist */
	bool no_retry;    /* the last failure is not worth another run (statement timeout) */
	char *secrets[2]; /* the URL's password, decoded and as written: scrubbed from messages */
};

static struct pg_store *
from(struct store *s)
{
	return (struct pg_store *)s;
}

static long long
ms_until(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

static struct timespec
ms_from_now(unsigned ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	t.tv_sec += t.tv_nsec / 1000000000L;
	t.tv_nsec %= 1000000000L;
	return t;
}

/* Every occurrence of `secret` in `msg` (of `size` bytes) becomes "***". */
static void
scrub(char *msg, size_t size, const char *secret)
{
	size_t n = secret != NULL ? strlen(secret) : 0, len = 0;
	char *out, *p = msg, *at;

	if (n == 0 || strstr(msg, secret) == NULL)
		return;
	out = xmalloc(size);
	while ((at = strstr(p, secret)) != NULL) {
		len += (size_t)snprintf(out + len, size - len, "%.*s***", (int)(at - p), p);
		if (len >= size - 1)
			break;
		p = at + n;
	}
	if (len < size - 1)
		snprintf(out + len, size - len, "%s", p);
	memcpy(msg, out, size);
	msg[size - 1] = '\0';
	free(out);
}

/* `text` on one line, without the URL's password (libpq's messages are never passed on as is). */
static void
one_line_of(const struct pg_store *s, char *msg, size_t size, const char *text)
{
	snprintf(msg, size, "%s", text != NULL ? text : "out of memory");
	msg[strcspn(msg, "\n")] = '\0';
	for (size_t i = 0; s != NULL && i < sizeof(s->secrets) / sizeof(s->secrets[0]); i++)
		scrub(msg, size, s->secrets[i]);
}

/* The value libpq parsed for `key`, or NULL. */
static const char *
opt_val(const PQconninfoOption *o, const char *key)
{
	for (; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val != NULL && o->val[0] != '\0' ? o->val : NULL;
	return NULL;
}

/*
 * Why libpq's parse of `url` cannot be trusted, or NULL. libpq takes the
 * credentials up to the first '@' or '/': an unescaped '@' or '/' in a
 * password leaves part of it in the host, port or database name, which its
 * messages (and ours) would print. Such a URL is refused, never echoed.
 */
static const char *
parsed_problem(const PQconninfoOption *o)
{
	static const char *const where[] = {"host", "hostaddr", "port", "dbname", "user"};
	const char *port = opt_val(o, "port");

	if (o == NULL)
		return "libpq cannot parse the PostgreSQL URL (a '%' not followed by two hex "
		       "digits, an unclosed '[', ...): percent-encode special characters of the "
		       "user name and password (% as %25, / as %2F, @ as %40, [ as %5B)";
	for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
		const char *v = opt_val(o, where[i]);

		if (v != NULL && strchr(v, '@') != NULL)
			return "the PostgreSQL URL has an unescaped '@' or '/' in its user name or "
			       "password (libpq would take part of it for the host, port or "
			       "database): write '@' as %40 and '/' as %2F";
	}
	if (port != NULL && port[strspn(port, "0123456789,")] != '\0')
		return "the port of the PostgreSQL URL is not a number (an unescaped '/' or ':' "
		       "in the password?): percent-encode it";
	return NULL;
}

static const char *
pgd_url_problem(const char *url)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(url, &err);
	const char *why = parsed_problem(o);

	PQfreemem(err); /* it may quote the URL: never shown */
	PQconninfoFree(o);
	return why;
}

/*
 * `url` for logs, rebuilt from what libpq parsed (never edited as a string):
 * user, host, port and database, the password as "***". A URL that cannot be
 * trusted is not shown at all.
 */
static void
pgd_url_redacted(const char *url, char *out, size_t size)
{
	char *err = NULL;
	PQconninfoOption *o = PQconninfoParse(url, &err);
	const char *user = opt_val(o, "user"), *host = opt_val(o, "host"),
	           *port = opt_val(o, "port"), *db = opt_val(o, "dbname");

	PQfreemem(err);
	if (parsed_problem(o) != NULL)
		snprintf(out, size, "postgresql://(not shown: a URL libpq cannot parse safely)");
	else
		snprintf(out, size, "postgresql://%s%s%s%s%s%s/%s", user != NULL ? user : "",
		    opt_val(o, "password") != NULL ? ":***" : "",
		    user != NULL || opt_val(o, "password") != NULL ? "@" : "",
		    host != NULL ? host
		                 : (opt_val(o, "hostaddr") != NULL ? opt_val(o, "hostaddr") : ""),
		    port != NULL ? ":" : "", port != NULL ? port : "", db != NULL ? db : "");
	PQconninfoFree(o);
}

/* The password of `url` as parsed, and as written between ':' and '@' (when it is). */
static void
keep_secrets(struct pg_store *s, const char *url)
{
	PQconninfoOption *o = PQconninfoParse(url, NULL);
	const char *pw = opt_val(o, "password"), *auth = strstr(url, "://"), *at, *colon;

	if (pw != NULL)
		s->secrets[0] = xstrdup(pw);
	if (auth != NULL && (at = strpbrk(auth + 3, "@/")) != NULL && *at == '@' &&
	    (colon = memchr(auth + 3, ':', (size_t)(at - auth - 3))) != NULL && at > colon + 1) {
		size_t n = (size_t)(at - colon - 1);

		s->secrets[1] = xmalloc(n + 1);
		memcpy(s->secrets[1], colon + 1, n);
		s->secrets[1][n] = '\0';
	}
	PQconninfoFree(o);
}

/* Server notices ("relation already exists, skipping") go to the JSON log. */
static void
on_notice(void *arg, const char *message)
{
	char msg[256];

	one_line_of(arg, msg, sizeof(msg), message);
	log_msg(RS_LOG_DEBUG, "postgresql notice: %s", msg);
}

static void
drop(struct pg_store *s)
{
	PQfinish(s->conn);
	s->conn = NULL;
	memset(s->prepared, 0, sizeof(s->prepared));
}

/* Gives up on the connection; the next call reconnects after the first backoff step. */
static enum store_status
lost(struct pg_store *s, const char *why)
{
	log_msg(RS_LOG_WARNING, "postgresql connection lost: %s", why);
	metrics_db(METRICS_DB_UNAVAILABLE);
	drop(s);
	s->backoff_ms = BACKOFF_MIN_MS;
	s->retry_at = ms_from_now(s->backoff_ms);
	return STORE_UNAVAILABLE;
}

/* Waits for `events` on the socket until `end`: 1 ready, 0 deadline passed, -1 error. */
static int
wait_socket(struct pg_store *s, short events, const struct timespec *end)
{
	struct pollfd p = {.fd = PQsocket(s->conn), .events = events};
	long long left;
	int rc;

	do {
		left = ms_until(end);
		if (left < 0)
			return 0;
		rc = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
	} while ((rc < 0 && errno == EINTR) || (rc == 0 && ms_until(end) > 0));
	return rc < 0 ? -1 : rc > 0;
}

/*
 * Flushes what was sent and collects its results within the deadline: the
 * first failed result, else the last one. STORE_UNAVAILABLE (connection
 * dropped) when the server does not answer in time or the socket fails.
 */
static enum store_status
await(struct pg_store *s, PGresult **out)
{
	struct timespec end =
	    ms_from_now(s->base.deadline_ms != 0 ? s->base.deadline_ms : DEADLINE_MS);
	PGresult *r, *keep = NULL;
	int fl, w = 1;

	*out = NULL;
	while (w > 0 && (fl = PQflush(s->conn)) != 0) {
		if (fl < 0)
			w = -1;
		else if ((w = wait_socket(s, POLLIN | POLLOUT, &end)) > 0 &&
		         !PQconsumeInput(s->conn))
			w = -1;
	}
	for (;;) {
		while (w > 0 && PQisBusy(s->conn))
			if ((w = wait_socket(s, POLLIN, &end)) > 0 && !PQconsumeInput(s->conn))
				w = -1;
		if (w <= 0 || (r = PQgetResult(s->conn)) == NULL)
			break;
		if (keep == NULL || (PQresultStatus(r) == PGRES_FATAL_ERROR &&
		                        PQresultStatus(keep) != PGRES_FATAL_ERROR)) {
			PQclear(keep);
			keep = r;
		} else {
			PQclear(r);
		}
	}
	if (w <= 0) {
		PQclear(keep);
		return lost(s, w == 0 ? "no answer within the deadline" : "socket error");
	}
	*out = keep;
	return STORE_OK;
}

/* Sends `sql` (no parameters) and waits for its results; for setup and migrations. */
static enum store_status
send_simple(struct pg_store *s, const char *sql, PGresult **out)
{
	*out = NULL;
	if (!PQsendQuery(s->conn, sql))
		return lost(s, "cannot send");
	return await(s, out);
}

/* Translates a result; logs what is not the caller's problem. */
static enum store_status
classify(struct pg_store *s, const PGresult *r)
{
	ExecStatusType es = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *cons = r != NULL ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
	char msg[256];

	if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK)
		return STORE_OK;
	if (PQstatus(s->conn) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0)
		return lost(s, state != NULL ? state : "no result");
	if (strcmp(state, "23505") == 0 && cons != NULL) {
		if (strcmp(cons, "users_username_key") == 0 ||
		    strcmp(cons, "users_username_skeleton") == 0 ||
		    strcmp(cons, "users_username_skeleton_cased") == 0)
			return STORE_CONFLICT_USERNAME;
		if (strcmp(cons, "users_email_key") == 0)
			return STORE_CONFLICT_EMAIL;
		if (strcmp(cons, "teacher_invitations_pending_email") == 0)
			return STORE_CONFLICT_PENDING;
	}
	if (strcmp(state, "XX001") == 0 || strcmp(state, "XX002") == 0) {
		one_line_of(s, msg, sizeof(msg), PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		store_mark_damaged(msg);
		metrics_db(METRICS_DB_UNAVAILABLE);
		return STORE_UNAVAILABLE;
	}
	/* A database that refuses writes (read-only transaction: a standby, or
	 * default_transaction_read_only), a full disk, exhausted resources: an
	 * outage, 503, not a bug of the request. */
	if (strcmp(state, "25006") == 0 || strncmp(state, "53", 2) == 0) {
		one_line_of(s, msg, sizeof(msg), PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
		log_msg(RS_LOG_WARNING, "postgresql unavailable %s: %s", state, msg);
		metrics_db(METRICS_DB_UNAVAILABLE);
		return STORE_UNAVAILABLE;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
		s->no_retry = strcmp(state, "57014") == 0; /* a timeout would time out again */
		metrics_db(METRICS_DB_BUSY);
		return STORE_BUSY; /* serialization, deadlock, lock or statement timeout */
	}
	one_line_of(s, msg, sizeof(msg), PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY));
	log_msg(RS_LOG_ERROR, "postgresql error %s: %s", state, msg);
	metrics_db(METRICS_DB_ERROR);
	return STORE_ERROR;
}

/* A new connection's settings, within the deadline. */
static bool
set_up(struct pg_store *s)
{
	PGresult *r = NULL;
	enum store_status st;

	PQsetNoticeProcessor(s->conn, on_notice, s);
	if (PQsetnonblocking(s->conn, 1) != 0)
		return false;
	st = send_simple(s, "SET statement_timeout = " RS_STR(STATEMENT_TIMEOUT_MS), &r);
	if (st == STORE_OK)
		st = classify(s, r);
	PQclear(r);
	return st == STORE_OK && s->conn != NULL;
}

/* A failed attempt: the next one waits twice as long; logged once per backoff step. */
static void
backoff(struct pg_store *s)
{
	unsigned prev = s->backoff_ms;
	char msg[256];

	s->failures++;
	s->backoff_ms = prev == 0 ? BACKOFF_MIN_MS : prev * 2;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->retry_at = ms_from_now(s->backoff_ms);
	if (s->backoff_ms != prev) {
		one_line_of(s, msg, sizeof(msg),
		    s->conn != NULL ? PQerrorMessage(s->conn) : "no answer to the session setup");
		log_msg(RS_LOG_WARNING, "postgresql unreachable: %s (attempt %u; next in %u ms%s)",
		    msg, s->failures, s->backoff_ms,
		    s->backoff_ms == BACKOFF_MAX_MS ? ", then every 2 s unlogged" : "");
	}
	/* libpq gives no SQLSTATE for a failed connection: the server's 3D000
	 * message is the only sign that waiting will not help. */
	s->no_database =
	    s->conn != NULL && strstr(PQerrorMessage(s->conn), "does not exist") != NULL;
	drop(s);
}

/* (Re)connects when needed, no more often than the backoff allows. */
static bool
connected(struct pg_store *s)
{
	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return true;
	drop(s);
	if (s->backoff_ms != 0 && ms_until(&s->retry_at) > 0)
		return false;
	metrics_db(METRICS_DB_CONNECT_ATTEMPT);
	s->conn = PQconnectdb(s->url);
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK || !set_up(s)) {
		backoff(s);
		return false;
	}
	if (s->failures != 0 || s->ever_connected) {
		log_msg(RS_LOG_INFO, "postgresql connection established after %u failed attempt(s)",
		    s->failures);
		metrics_db(METRICS_DB_RECONNECT);
	}
	s->ever_connected = true;
	s->backoff_ms = 0;
	s->failures = 0;
	return true;
}

/* Prepares statement `id` as `name` once per connection (the caller is connected). */
static enum store_status
prepared(struct pg_store *s, enum store_stmt id, const char *name)
{
	PGresult *r = NULL;
	enum store_status st;

	if (s->prepared[id])
		return STORE_OK;
	if (!PQsendPrepare(s->conn, name, store_pg_sql[id], 0, NULL))
		return lost(s, "cannot send");
	st = await(s, &r);
	if (st == STORE_OK)
		st = classify(s, r);
	PQclear(r);
	s->prepared[id] = st == STORE_OK;
	return st;
}

static enum store_status
pgd_prepare(struct store *base, enum store_stmt id)
{
	struct pg_store *s = from(base);
	char name[16];

	if (!connected(s))
		return STORE_UNAVAILABLE;
	snprintf(name, sizeof(name), "s%d", (int)id);
	return prepared(s, id, name);
}

/* Runs statement `id`; `*out` gets its result (PQclear it) on STORE_OK. */
static enum store_status
run(struct pg_store *s, enum store_stmt id, const struct store_arg *args, int n, PGresult **out)
{
	char name[16], ints[MAX_ARGS][24];
	const char *values[MAX_ARGS];
	PGresult *r = NULL;
	enum store_status st;

	assert(n <= MAX_ARGS);
	*out = NULL;
	if (!connected(s))
		return STORE_UNAVAILABLE;
	snprintf(name, sizeof(name), "s%d", (int)id);
	st = prepared(s, id, name);
	if (st != STORE_OK)
		return st;
	for (int i = 0; i < n; i++) {
		values[i] = args[i].type == ARG_TEXT ? args[i].text : ints[i];
		if (args[i].type == ARG_INT)
			snprintf(ints[i], sizeof(ints[i]), "%lld", (long long)args[i].i);
		else if (args[i].type == ARG_BOOL)
			snprintf(ints[i], sizeof(ints[i]), "%s", args[i].i ? "true" : "false");
		else if (args[i].type == ARG_NULL)
			values[i] = NULL;
	}
	if (!PQsendQueryPrepared(s->conn, name, n, values, NULL, NULL, 0))
		return lost(s, "cannot send");
	st = await(s, &r);
	if (st == STORE_OK)
		st = classify(s, r);
	if (st != STORE_OK)
		PQclear(r);
	else
		*out = r;
	return st;
}

static enum store_status
pgd_query(struct store *base, enum store_stmt id, const struct store_arg *args, int n,
    store_row_fn fn, void *arg)
{
	PGresult *r = NULL;
	enum store_status st = run(from(base), id, args, n, &r);
	struct store_row row = {&store_pg_driver, r, 0};

	for (; st == STORE_OK && row.index < PQntuples(r); row.index++)
		st = fn(&row, arg);
	PQclear(r);
	return st;
}

static enum store_status
pgd_exec(
    struct store *base, enum store_stmt id, const struct store_arg *args, int n, int64_t *changed)
{
	PGresult *r = NULL;
	enum store_status st = run(from(base), id, args, n, &r);

	if (st == STORE_OK && changed != NULL)
		*changed = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return st;
}

static enum store_status
pgd_script(struct store *base, const char *sql)
{
	struct pg_store *s = from(base);
	PGresult *r = NULL;
	enum store_status st = connected(s) ? send_simple(s, sql, &r) : STORE_UNAVAILABLE;

	if (st == STORE_OK)
		st = classify(s, r);
	PQclear(r);
	return st;
}

static enum store_status
pgd_begin(struct store *base)
{
	from(base)->no_retry = false;
	return pgd_exec(base, STMT_BEGIN, NULL, 0, NULL);
}

/* COMMIT of a transaction that failed answers "ROLLBACK": never report that as success. */
static enum store_status
pgd_commit(struct store *base)
{
	PGresult *r = NULL;
	enum store_status st = run(from(base), STMT_COMMIT, NULL, 0, &r);

	if (st == STORE_OK && strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		log_msg(RS_LOG_ERROR, "postgresql: COMMIT answered %s", PQcmdStatus(r));
		st = STORE_ERROR;
	}
	PQclear(r);
	return st;
}

static void
pgd_rollback(struct store *base)
{
	struct pg_store *s = from(base);

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK &&
	    PQtransactionStatus(s->conn) != PQTRANS_IDLE &&
	    pgd_exec(base, STMT_ROLLBACK, NULL, 0, NULL) != STORE_OK)
		log_msg(RS_LOG_ERROR, "postgresql rollback failed");
}

/* Serialization failures, deadlocks and lock timeouts: the transaction runs again. */
static bool
pgd_retryable(struct store *base, enum store_status st)
{
	return st == STORE_BUSY && !from(base)->no_retry;
}

static const char *
pgd_text(const struct store_row *r, int col)
{
	return PQgetisnull(r->res, r->index, col) ? NULL : PQgetvalue(r->res, r->index, col);
}

static int64_t
pgd_int64(const struct store_row *r, int col)
{
	return strtoll(PQgetvalue(r->res, r->index, col), NULL, 10);
}

static bool
pgd_boolean(const struct store_row *r, int col)
{
	const char *v = PQgetvalue(r->res, r->index, col);

	return v[0] == 't' || (v[0] >= '1' && v[0] <= '9');
}

static bool
has_param(const char *url, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = strchr(url, '?'); p != NULL; p = strchr(p + 1, '&'))
		if (strncmp(p + 1, key, n) == 0 && p[1 + n] == '=')
			return true;
	return false;
}

/* "postgresql:" + `rest` + each of url_defaults the URL does not set. */
static char *
full_url(const char *rest)
{
	size_t size = strlen("postgresql:") + strlen(rest) + 1, len;
	char *url;

	for (size_t i = 0; i < sizeof(url_defaults) / sizeof(url_defaults[0]); i++)
		size += strlen(url_defaults[i][0]) + strlen(url_defaults[i][1]) + 2;
	url = xmalloc(size);
	len = (size_t)snprintf(url, size, "postgresql:%s", rest);
	for (size_t i = 0; i < sizeof(url_defaults) / sizeof(url_defaults[0]); i++)
		if (!has_param(url, url_defaults[i][0]))
			len += (size_t)snprintf(url + len, size - len, "%c%s=%s",
			    strchr(url, '?') != NULL ? '&' : '?', url_defaults[i][0],
			    url_defaults[i][1]);
	return url;
}

static void
pgd_close(struct store *base)
{
	struct pg_store *s = from(base);

	PQfinish(s->conn);
	for (size_t i = 0; i < sizeof(s->secrets) / sizeof(s->secrets[0]); i++)
		if (s->secrets[i] != NULL) {
			explicit_bzero(s->secrets[i], strlen(s->secrets[i]));
			free(s->secrets[i]);
		}
	explicit_bzero(s->url, strlen(s->url));
	free(s->url);
	free(s);
}

static enum store_status
pgd_open(const char *rest, enum store_open_mode mode, struct store **out)
{
	struct pg_store *s = xcalloc(1, sizeof(*s));

	/* The database itself is made by its administrator: CREATE is EXISTING. */
	s->base.drv = &store_pg_driver;
	s->url = full_url(rest);
	keep_secrets(s, s->url);
	if (pgd_url_problem(s->url) != NULL) {
		log_msg(RS_LOG_ERROR, "%s (the URL is not shown: it may hold a password)",
		    pgd_url_problem(s->url));
		pgd_close(&s->base);
		return STORE_ERROR;
	}
	if (!connected(s) && mode != STORE_OPEN_LAZY) {
		bool missing = s->no_database;

		pgd_close(&s->base);
		return missing ? STORE_NOT_FOUND : STORE_UNAVAILABLE;
	}
	*out = &s->base;
	return STORE_OK;
}

const struct store_driver store_pg_driver = {
    .scheme = "postgresql:",
    .migrations = store_migrations_postgres,
    .url_problem = pgd_url_problem,
    .url_redacted = pgd_url_redacted,
    STORE_DRIVER_FNS(pgd),
};
