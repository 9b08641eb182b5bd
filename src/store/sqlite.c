/*
 * SQLite driver: WAL, busy_timeout, BEGIN IMMEDIATE for every write,
 * synchronous=FULL so a committed account survives power loss. One connection
 * per thread; statements are prepared on first use and reused, their $N
 * parameters bound by name. Several processes may share one file: the write
 * lock serialises them, the unique indexes decide every race.
 */
#include "store/driver.h"
#include "log.h"
#include "metrics.h"
#include "xmalloc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define BUSY_TIMEOUT_MS 5000

/* Times are RFC 3339 UTC text of one fixed width: they compare as strings. */
#define TS(col) col

const char *const store_sqlite_sql[] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_HAS_MIGRATIONS] =
        "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        " AND name = 'schema_migrations'),"
        " (SELECT count(*) FROM pragma_table_info('schema_migrations') WHERE name = 'compat')",
    [STMT_MIGRATIONS_TABLE] = "CREATE TABLE IF NOT EXISTS schema_migrations"
                              " (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                              " applied_at TEXT NOT NULL, compat INTEGER)",
    [STMT_MIGRATIONS_COMPAT] = "ALTER TABLE schema_migrations ADD COLUMN compat INTEGER",
    [STMT_MIGRATION_LOCK] = "SELECT 1", /* BEGIN IMMEDIATE already holds the write lock */
    [STMT_INTEGRITY] = "PRAGMA quick_check(1)",
    [STMT_RATE_SWEEP] = "DELETE FROM rate_limits WHERE key IN (SELECT key FROM rate_limits"
                        " WHERE window_start <= $1 AND substr(key, 1, $3) = $2 LIMIT $4)",
    [STMT_TOKENS_SWEEP] = "DELETE FROM auth_tokens WHERE id IN (SELECT id FROM auth_tokens"
                          " WHERE expires_at <= $1 LIMIT $2)",
    /* import (issue 13): ids are kept; INTEGER PRIMARY KEY continues past the highest. */
    [STMT_IMPORT_USER_UPSERT] = SQL_IMPORT_USER_UPSERT(""),
    [STMT_IMPORT_INV_UPSERT] = SQL_IMPORT_INV_UPSERT(""),
    [STMT_IMPORT_SEQUENCES] = "SELECT 1",
    [STMT_MAIL_CLAIM] = SQL_MAIL_CLAIM_WHERE ")" SQL_MAIL_CLAIMED,
    [STMT_MAIL_SWEEP] = "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox"
                        " WHERE (status = 'sent' AND sent_at <= $1)"
                        " OR (status = 'failed' AND created_at <= $1) LIMIT $2)",
    [STMT_OTK_SWEEP] = "DELETE FROM one_time_tokens WHERE id IN (SELECT id FROM one_time_tokens"
                       " WHERE expires_at <= $1 OR used_at <= $2 LIMIT $3)",
    SQL_COMMON,
    [STMT_AUDIT_SWEEP] = "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events"
                         " WHERE ts < $1 LIMIT $2)",
    SQL_AUDIT,
};
static_assert(sizeof(store_sqlite_sql) / sizeof(store_sqlite_sql[0]) == STMT_COUNT_,
    "store_sqlite_sql has one text per enum store_stmt");

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *stmts[STMT_COUNT_];
};

static struct sqlite_store *
from(struct store *s)
{
	return (struct sqlite_store *)s;
}

/* Translates a driver result; logs what is not the caller's problem. */
static enum store_status
classify(struct sqlite_store *s, int rc)
{
	const char *msg = sqlite3_errmsg(s->db);

	switch (rc & 0xff) { /* extended result codes are on: map by the primary code */
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return STORE_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		metrics_db(METRICS_DB_BUSY);
		return STORE_BUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE) {
			if (strstr(msg, "users.username_key") != NULL ||
			    strstr(msg, "users.username_skeleton") != NULL) /* and _cased */
				return STORE_CONFLICT_USERNAME;
			if (strstr(msg, "users.email_key") != NULL)
				return STORE_CONFLICT_EMAIL;
			if (strstr(msg, "teacher_invitations.email_key") != NULL)
				return STORE_CONFLICT_PENDING;
		}
		log_msg(RS_LOG_ERROR, "sqlite constraint: %s", msg);
		return STORE_ERROR;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		store_mark_damaged(msg); /* logged once; /readyz says so from now on */
		log_msg(RS_LOG_DEBUG, "sqlite damaged: %s", msg);
		metrics_db(METRICS_DB_UNAVAILABLE);
		return STORE_UNAVAILABLE;
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_READONLY:
		log_msg(RS_LOG_ERROR, "sqlite unavailable: %s", msg);
		metrics_db(METRICS_DB_UNAVAILABLE);
		return STORE_UNAVAILABLE;
	default:
		log_msg(RS_LOG_ERROR, "sqlite error %d: %s", rc, msg);
		metrics_db(METRICS_DB_ERROR);
		return STORE_ERROR;
	}
}

/* Compiles statement `id` once per connection; STORE_ERROR (logged) when it cannot. */
static enum store_status
prepared(struct sqlite_store *s, enum store_stmt id)
{
	sqlite3_stmt **st = &s->stmts[id];
	int rc;

	if (*st != NULL)
		return STORE_OK;
	rc = sqlite3_prepare_v3(
	    s->db, store_sqlite_sql[id], -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc == SQLITE_OK)
		return STORE_OK;
	if ((rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB ||
	    (rc & 0xff) == SQLITE_IOERR)
		return classify(s, rc); /* a damaged schema page, not a statement of ours */
	log_msg(RS_LOG_ERROR, "sqlite prepare: %s", sqlite3_errmsg(s->db));
	return (rc & 0xff) == SQLITE_BUSY ? STORE_BUSY : STORE_ERROR;
}

static enum store_status
sq_prepare(struct store *base, enum store_stmt id)
{
	return prepared(from(base), id);
}

/* The cached statement `id` with `args` bound to $1..$n; NULL (logged) when it cannot be. */
static sqlite3_stmt *
bound(struct sqlite_store *s, enum store_stmt id, const struct store_arg *args, int n)
{
	sqlite3_stmt **st = &s->stmts[id];
	char name[16];
	int rc = SQLITE_OK;

	if (prepared(s, id) != STORE_OK)
		return NULL;
	sqlite3_reset(*st);
	sqlite3_clear_bindings(*st);
	for (int i = 0; i < n && rc == SQLITE_OK; i++) {
		int at;

		snprintf(name, sizeof(name), "$%d", i + 1);
		at = sqlite3_bind_parameter_index(*st, name);
		if (at == 0)
			continue; /* an argument this dialect's text does not use */
		switch (args[i].type) {
		case ARG_TEXT:
			rc = sqlite3_bind_text(*st, at, args[i].text, -1, SQLITE_STATIC);
			break;
		case ARG_INT:
		case ARG_BOOL:
			rc = sqlite3_bind_int64(*st, at, args[i].i);
			break;
		case ARG_NULL:
			rc = sqlite3_bind_null(*st, at);
			break;
		}
	}
	if (rc != SQLITE_OK) {
		log_msg(RS_LOG_ERROR, "sqlite bind: %s", sqlite3_errmsg(s->db));
		return NULL;
	}
	return *st;
}

static enum store_status
sq_query(struct store *base, enum store_stmt id, const struct store_arg *args, int n,
    store_row_fn fn, void *arg)
{
	struct sqlite_store *s = from(base);
	sqlite3_stmt *st = bound(s, id, args, n);
	struct store_row row = {&store_sqlite_driver, st, 0};
	enum store_status res = STORE_OK;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	while (res == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (fn != NULL)
			res = fn(&row, arg);
		row.index++;
	}
	if (res == STORE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		res = classify(s, rc);
	sqlite3_reset(st);
	return res;
}

static enum store_status
sq_exec(
    struct store *base, enum store_stmt id, const struct store_arg *args, int n, int64_t *changed)
{
	enum store_status res = sq_query(base, id, args, n, NULL, NULL);

	if (res == STORE_OK && changed != NULL)
		*changed = sqlite3_changes64(from(base)->db);
	return res;
}

static enum store_status
sq_script(struct store *base, const char *sql)
{
	struct sqlite_store *s = from(base);
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? STORE_OK : classify(s, rc);
}

static enum store_status
sq_begin(struct store *s)
{
	return sq_exec(s, STMT_BEGIN, NULL, 0, NULL);
}

static enum store_status
sq_commit(struct store *s)
{
	return sq_exec(s, STMT_COMMIT, NULL, 0, NULL);
}

static void
sq_rollback(struct store *base)
{
	if (!sqlite3_get_autocommit(from(base)->db) &&
	    sq_exec(base, STMT_ROLLBACK, NULL, 0, NULL) != STORE_OK)
		log_msg(RS_LOG_ERROR, "sqlite rollback failed");
}

/* Still locked past busy_timeout: the whole transaction runs again. */
static bool
sq_retryable(struct store *s, enum store_status st)
{
	(void)s;
	return st == STORE_BUSY;
}

static const char *
sq_text(const struct store_row *r, int col)
{
	return (const char *)sqlite3_column_text(r->res, col);
}

static int64_t
sq_int64(const struct store_row *r, int col)
{
	return sqlite3_column_int64(r->res, col);
}

static bool
sq_boolean(const struct store_row *r, int col)
{
	return sqlite3_column_int64(r->res, col) != 0;
}

static void
sq_close(struct store *base)
{
	struct sqlite_store *s = from(base);

	for (int i = 0; i < STMT_COUNT_; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close_v2(s->db);
	free(s);
}

/* Creates the database's directory (one level) when a migration creates the file. */
static void
make_parent_dir(const char *path)
{
	char *copy = xstrdup(path);

	if (mkdir(dirname(copy), 0750) != 0 && errno != EEXIST)
		log_msg(
		    RS_LOG_WARNING, "cannot create the directory of %s: %s", path, strerror(errno));
	free(copy);
}

/*
 * A new database file is made 0600 whatever the umask: it holds password
 * hashes. SQLite gives its -wal and -shm files the mode of the database file,
 * so they follow. An existing file keeps the mode its operator chose.
 */
static void
create_private(const char *path)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

	if (fd >= 0)
		close(fd); /* an empty file is an empty SQLite database */
	else if (errno != EEXIST)
		log_msg(RS_LOG_WARNING, "cannot create %s: %s", path, strerror(errno));
}

/* STORE_OPEN_LAZY is STORE_OPEN_EXISTING: a local file has no outage to ride out. */
static enum store_status
sq_open(const char *path, enum store_open_mode mode, struct store **out)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	struct sqlite_store *s = xcalloc(1, sizeof(*s));
	enum store_status st = STORE_UNAVAILABLE;
	char *err = NULL;
	int rc;

	s->base.drv = &store_sqlite_driver;
	if (mode == STORE_OPEN_CREATE) {
		flags |= SQLITE_OPEN_CREATE;
		make_parent_dir(path);
		create_private(path);
	}
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		log_msg(RS_LOG_ERROR, "cannot open sqlite database %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		goto out;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(s->db,
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", NULL,
	    NULL, &err);
	if (rc != SQLITE_OK) {
		log_msg(RS_LOG_ERROR, "cannot configure sqlite database %s: %s", path,
		    err != NULL ? err : "?");
		st = rc == SQLITE_BUSY ? STORE_BUSY : STORE_UNAVAILABLE;
		goto out;
	}
	*out = &s->base;
	s = NULL;
	st = STORE_OK;
out:
	sqlite3_free(err);
	if (s != NULL)
		sq_close(&s->base);
	return st;
}

const struct store_driver store_sqlite_driver = {
    .scheme = "sqlite:",
    .migrations = store_migrations_sqlite,
    STORE_DRIVER_FNS(sq),
};
