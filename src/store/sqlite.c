/*
 * SQLite backend: WAL, busy_timeout, BEGIN IMMEDIATE for every write,
 * synchronous=FULL so a committed account survives power loss. One connection
 * per thread; statements are prepared once per connection and reused. Several
 * processes may share one file: the write lock serialises them, the unique
 * indexes decide every race.
 */
#include "backend.h"
#include "log.h"

#include <errno.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 5000
#define TX_ATTEMPTS 3

enum stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_PING,
	ST_HAS_MIGRATIONS,
	ST_APPLIED_VERSION,
	ST_KEYS_TAKEN,
	ST_USER_INSERT,
	ST_PROFILE_INSERT,
	ST_COUNT_
};

/* The one statement table of this backend. */
static const char *const sql_text[ST_COUNT_] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_PING] = "SELECT 1",
	[ST_HAS_MIGRATIONS] =
	    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
	[ST_APPLIED_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
	[ST_KEYS_TAKEN] = "SELECT EXISTS (SELECT 1 FROM users WHERE username_key = ?1),"
			  " EXISTS (SELECT 1 FROM users WHERE email_key = ?2)",
	[ST_USER_INSERT] = "INSERT INTO users (username, username_key, email, email_key,"
			   " password_hash, is_admin, date_joined) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_PROFILE_INSERT] = "INSERT INTO profiles (user_id, role, bio, can_invite_teachers)"
			      " VALUES (?1, ?2, ?3, ?4)",
};

/* Migration bookkeeping, run inside the migration's own transaction. */
static const char sql_migrations_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at TEXT NOT NULL)";
static const char sql_migration_applied[] = "SELECT 1 FROM schema_migrations WHERE version = ?1";
static const char sql_migration_record[] =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";

struct sqlite_store {
	struct store base;
	sqlite3 *db;
	sqlite3_stmt *stmts[ST_COUNT_];
};

static struct sqlite_store *
from(struct store *s)
{
	return (struct sqlite_store *)s;
}

/* Translates a driver result; logs what is not the caller's problem. */
static enum store_status
map_rc(struct sqlite_store *s, int rc)
{
	const char *msg = sqlite3_errmsg(s->db);

	switch (rc & 0xff) {	/* extended result codes are on: map by the primary code */
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return STORE_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_BUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE) {
			if (strstr(msg, "users.username_key") != NULL)
				return STORE_CONFLICT_USERNAME;
			if (strstr(msg, "users.email_key") != NULL)
				return STORE_CONFLICT_EMAIL;
		}
		log_msg(LOG_ERROR, "sqlite constraint: %s", msg);
		return STORE_ERROR;
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_NOTADB:
	case SQLITE_READONLY:
		log_msg(LOG_ERROR, "sqlite unavailable: %s", msg);
		return STORE_UNAVAILABLE;
	default:
		log_msg(LOG_ERROR, "sqlite error %d: %s", rc, msg);
		return STORE_ERROR;
	}
}

/* The cached statement `id`, reset and unbound; NULL (logged) when it cannot compile. */
static sqlite3_stmt *
stmt(struct sqlite_store *s, enum stmt id)
{
	sqlite3_stmt **st = &s->stmts[id];

	if (*st == NULL) {
		if (sqlite3_prepare_v3(s->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, st, NULL) !=
		    SQLITE_OK) {
			log_msg(LOG_ERROR, "sqlite prepare: %s", sqlite3_errmsg(s->db));
			return NULL;
		}
	} else {
		sqlite3_reset(*st);
		sqlite3_clear_bindings(*st);
	}
	return *st;
}

/* Runs a statement with no result rows to completion. */
static enum store_status
exec_stmt(struct sqlite_store *s, enum stmt id)
{
	sqlite3_stmt *st = stmt(s, id);
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

/*
 * Runs `body` inside BEGIN IMMEDIATE ... COMMIT, retrying the whole
 * transaction when the database stays locked past busy_timeout.
 */
static enum store_status
in_tx(struct sqlite_store *s, enum store_status (*body)(struct sqlite_store *, void *), void *arg)
{
	enum store_status st = STORE_BUSY;

	for (int attempt = 0; attempt < TX_ATTEMPTS && st == STORE_BUSY; attempt++) {
		st = exec_stmt(s, ST_BEGIN);
		if (st != STORE_OK)
			continue;
		st = body(s, arg);
		if (st == STORE_OK)
			st = exec_stmt(s, ST_COMMIT);
		if (st != STORE_OK && !sqlite3_get_autocommit(s->db) &&
		    exec_stmt(s, ST_ROLLBACK) != STORE_OK)
			log_msg(LOG_ERROR, "sqlite rollback failed");
	}
	return st;
}

static void
now_rfc3339(char out[64])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static void sqlite_close(struct store *base);

/* Creates the database's directory (one level) when a migration creates the file. */
static void
make_parent_dir(const char *path)
{
	char *copy = strdup(path);

	if (copy != NULL && mkdir(dirname(copy), 0750) != 0 && errno != EEXIST)
		log_msg(LOG_WARNING, "cannot create the directory of %s: %s", path, strerror(errno));
	free(copy);
}

static enum store_status
sqlite_open(const char *path, enum store_open_mode mode, struct store **out)
{
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
	struct sqlite_store *s = calloc(1, sizeof(*s));
	char *err = NULL;
	int rc;

	if (s == NULL)
		return STORE_ERROR;
	s->base.ops = &store_sqlite_ops;
	if (mode == STORE_OPEN_CREATE) {
		flags |= SQLITE_OPEN_CREATE;
		make_parent_dir(path);
	}
	rc = sqlite3_open_v2(path, &s->db, flags, NULL);
	if (rc != SQLITE_OK) {
		log_msg(LOG_ERROR, "cannot open sqlite database %s: %s", path,
		    s->db != NULL ? sqlite3_errmsg(s->db) : "out of memory");
		sqlite_close(&s->base);
		return STORE_UNAVAILABLE;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	rc = sqlite3_exec(s->db,
	    "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;", NULL,
	    NULL, &err);
	if (rc != SQLITE_OK) {
		log_msg(LOG_ERROR, "cannot configure sqlite database %s: %s", path,
		    err != NULL ? err : "?");
		sqlite3_free(err);
		sqlite_close(&s->base);
		return rc == SQLITE_BUSY ? STORE_BUSY : STORE_UNAVAILABLE;
	}
	*out = &s->base;
	return STORE_OK;
}

static void
sqlite_close(struct store *base)
{
	struct sqlite_store *s = from(base);

	for (int i = 0; i < ST_COUNT_; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close_v2(s->db);
	free(s);
}

/* Runs a one-row, one-integer query; `*out` gets the value. */
static enum store_status
query_int(struct sqlite_store *s, enum stmt id, int *out)
{
	sqlite3_stmt *st = stmt(s, id);
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? STORE_OK : map_rc(s, rc);
}

static enum store_status
sqlite_ping(struct store *base)
{
	int one = 0;

	return query_int(from(base), ST_PING, &one);
}

static enum store_status
sqlite_applied_version(struct store *base, int *out)
{
	struct sqlite_store *s = from(base);
	enum store_status st;
	int has = 0;

	*out = 0;
	st = query_int(s, ST_HAS_MIGRATIONS, &has);
	if (st != STORE_OK || has == 0)
		return st;
	return query_int(s, ST_APPLIED_VERSION, out);
}

struct apply_args {
	const struct store_migration *m;
	bool did;
};

/* Runs a one-off statement (migration bookkeeping) with an int and two text binds. */
static int
run_once(struct sqlite_store *s, const char *sql, int v, const char *a, const char *b)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		sqlite3_bind_int(st, 1, v);
		if (a != NULL)
			sqlite3_bind_text(st, 2, a, -1, SQLITE_STATIC);
		if (b != NULL)
			sqlite3_bind_text(st, 3, b, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	return rc;
}

static enum store_status
apply_body(struct sqlite_store *s, void *arg)
{
	struct apply_args *a = arg;
	char now[64];
	int rc;

	a->did = false;
	rc = sqlite3_exec(s->db, sql_migrations_table, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return map_rc(s, rc);
	rc = run_once(s, sql_migration_applied, a->m->version, NULL, NULL);
	if (rc == SQLITE_ROW)
		return STORE_OK;	/* another process got there first */
	if (rc != SQLITE_DONE)
		return map_rc(s, rc);
	rc = sqlite3_exec(s->db, a->m->sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return map_rc(s, rc);
	now_rfc3339(now);
	rc = run_once(s, sql_migration_record, a->m->version, a->m->name, now);
	if (rc != SQLITE_DONE)
		return map_rc(s, rc);
	a->did = true;
	return STORE_OK;
}

static enum store_status
sqlite_apply(struct store *base, const struct store_migration *m, bool *did)
{
	struct apply_args a = { m, false };
	enum store_status st = in_tx(from(base), apply_body, &a);

	*did = st == STORE_OK && a.did;
	return st;
}

static enum store_status
sqlite_user_keys_taken(struct store *base, const char *username_key, const char *email_key)
{
	struct sqlite_store *s = from(base);
	sqlite3_stmt *st = stmt(s, ST_KEYS_TAKEN);
	enum store_status res;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_text(st, 1, username_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		res = map_rc(s, rc);
	else if (sqlite3_column_int(st, 0) != 0)
		res = STORE_CONFLICT_USERNAME;
	else if (sqlite3_column_int(st, 1) != 0)
		res = STORE_CONFLICT_EMAIL;
	else
		res = STORE_OK;
	sqlite3_reset(st);
	return res;
}

struct create_args {
	const struct store_new_user *in;
	char joined[64];
	int64_t id;
};

static enum store_status
create_body(struct sqlite_store *s, void *arg)
{
	struct create_args *a = arg;
	sqlite3_stmt *st = stmt(s, ST_USER_INSERT);
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_text(st, 1, a->in->username, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->in->username_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->in->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, a->in->email_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->in->password_hash, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 6, a->in->is_admin);
	sqlite3_bind_text(st, 7, a->joined, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return map_rc(s, rc);
	a->id = sqlite3_last_insert_rowid(s->db);

	st = stmt(s, ST_PROFILE_INSERT);
	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(st, 1, a->id);
	sqlite3_bind_text(st, 2, a->in->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, a->in->bio, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, a->in->can_invite_teachers);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : map_rc(s, rc);
}

static enum store_status
sqlite_user_create(struct store *base, const struct store_new_user *in, struct store_user *out)
{
	struct create_args a = { .in = in };
	enum store_status st;

	now_rfc3339(a.joined);
	st = in_tx(from(base), create_body, &a);
	if (st != STORE_OK)
		return st;
	out->id = a.id;
	out->username = strdup(in->username);
	out->email = strdup(in->email);
	out->role = strdup(in->role);
	out->date_joined = strdup(a.joined);
	if (out->username == NULL || out->email == NULL || out->role == NULL ||
	    out->date_joined == NULL) {
		store_user_clear(out);
		return STORE_ERROR;	/* committed, but we cannot say so: the client retries */
	}
	return STORE_OK;
}

const struct store_ops store_sqlite_ops = {
	.scheme = "sqlite:",
	.migrations = store_migrations_sqlite,
	.open = sqlite_open,
	.close = sqlite_close,
	.ping = sqlite_ping,
	.applied_version = sqlite_applied_version,
	.apply = sqlite_apply,
	.user_keys_taken = sqlite_user_keys_taken,
	.user_create = sqlite_user_create,
};
