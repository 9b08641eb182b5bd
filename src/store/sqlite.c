/*
 * SQLite backend: WAL, busy_timeout, BEGIN IMMEDIATE for every write,
 * synchronous=FULL so a committed account survives power loss. One connection
 * per thread; statements are prepared once per connection and reused. Several
 * processes may share one file: the write lock serialises them, the unique
 * indexes decide every race.
 */
#include "store/sqlite_int.h"
#include "log.h"
#include "metrics.h"

#include <errno.h>
#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 5000
#define TX_ATTEMPTS     3

#define USER_COLS                                                                                  \
	"SELECT u.id, u.username, u.email, u.date_joined, u.last_login, u.is_active, u.is_admin,"  \
	" p.role, p.bio, p.can_invite_teachers, u.password_hash"                                   \
	" FROM users u JOIN profiles p ON p.user_id = u.id"
#define INV_COLS                                                                                   \
	"SELECT i.id, i.inviter_id, u.username, i.email,"                                          \
	" CASE WHEN i.status = 'pending' AND i.expires_at <= ?2 THEN 'expired' ELSE i.status END," \
	" i.created_at, i.expires_at, i.accepted_at"                                               \
	" FROM teacher_invitations i JOIN users u ON u.id = i.inviter_id"

/* The one statement table of this backend. Times are RFC 3339 UTC text of one
 * fixed width, so they compare correctly as strings. */
static const char *const sql_text[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HAS_MIGRATIONS] =
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
    [ST_APPLIED_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [ST_KEYS_TAKEN] = "SELECT EXISTS (SELECT 1 FROM users WHERE username_key = ?1),"
                      " EXISTS (SELECT 1 FROM users WHERE email_key = ?2)",
    [ST_USER_INSERT] = "INSERT INTO users (username, username_key, email, email_key,"
                       " password_hash, is_admin, date_joined) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_PROFILE_INSERT] = "INSERT INTO profiles (user_id, role, bio, can_invite_teachers)"
                          " VALUES (?1, ?2, ?3, ?4)",
    [ST_USER_BY_ID] = USER_COLS " WHERE u.id = ?1",
    [ST_USER_BY_USERNAME] = USER_COLS " WHERE u.username_key = ?1",
    [ST_USER_BY_EMAIL] = USER_COLS " WHERE u.email_key = ?1",
    [ST_USER_ALL] = USER_COLS " ORDER BY u.id",
    [ST_SET_BIO] = "UPDATE profiles SET bio = ?2 WHERE user_id = ?1",
    [ST_SET_ROLE] = "UPDATE profiles SET role = ?2 WHERE user_id = ?1",
    [ST_SET_CAN_INVITE] = "UPDATE profiles SET can_invite_teachers = ?2 WHERE user_id = ?1",
    [ST_SET_ACTIVE] = "UPDATE users SET is_active = ?2 WHERE id = ?1",
    [ST_SET_ADMIN] = "UPDATE users SET is_admin = ?2 WHERE id = ?1",
    [ST_SET_PASSWORD] = "UPDATE users SET password_hash = ?2 WHERE id = ?1",
    [ST_REHASH] = "UPDATE users SET password_hash = ?2 WHERE id = ?1 AND password_hash = ?3",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = ?1",
    [ST_TOKEN_INSERT] = "INSERT INTO auth_tokens (user_id, token_hash, created_at, expires_at)"
                        " VALUES (?1, ?2, ?3, ?4)",
    [ST_TOKENS_PURGE] = "DELETE FROM auth_tokens WHERE user_id = ?1 AND expires_at <= ?2",
    [ST_TOKENS_REVOKE_USER] = "DELETE FROM auth_tokens WHERE user_id = ?1",
    [ST_SET_LAST_LOGIN] = "UPDATE users SET last_login = ?2 WHERE id = ?1",
    [ST_TOKEN_USER] =
        USER_COLS " JOIN auth_tokens t ON t.user_id = u.id"
                  " WHERE t.token_hash = ?1 AND t.expires_at > ?2 AND u.is_active = 1",
    [ST_TOKEN_DELETE] = "DELETE FROM auth_tokens WHERE token_hash = ?1",
    [ST_INV_EXPIRE_EMAIL] = "UPDATE teacher_invitations SET status = 'expired'"
                            " WHERE email_key = ?1 AND status = 'pending' AND expires_at <= ?2",
    [ST_EMAIL_HAS_ACCOUNT] = "SELECT EXISTS (SELECT 1 FROM users WHERE email_key = ?1)",
    [ST_INV_INSERT] = "INSERT INTO teacher_invitations (inviter_id, email, email_key, token_hash,"
                      " status, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?6)",
    [ST_INV_BY_ID] = INV_COLS " WHERE i.id = ?1",
    [ST_INV_LIST] = INV_COLS " WHERE ?1 = 0 OR i.inviter_id = ?1 ORDER BY i.id DESC LIMIT 1000",
    [ST_INV_RESEND] = "UPDATE teacher_invitations SET token_hash = ?2, status = 'pending',"
                      " expires_at = ?3 WHERE id = ?1 AND status IN ('pending', 'expired')",
    [ST_INV_REVOKE] = "UPDATE teacher_invitations SET status = 'revoked'"
                      " WHERE id = ?1 AND status = 'pending' AND expires_at > ?2",
    [ST_INV_BY_TOKEN] = "SELECT status, expires_at, email_key FROM teacher_invitations"
                        " WHERE token_hash = ?1",
    [ST_INV_ACCEPT] = "UPDATE teacher_invitations SET status = 'accepted', accepted_at = ?3,"
                      " accepted_by = ?2 WHERE token_hash = ?1 AND status = 'pending'"
                      " AND expires_at > ?3 AND email_key = ?4",
    [ST_PROFILE_TEACHER] = "UPDATE profiles SET role = 'teacher', can_invite_teachers = 0"
                           " WHERE user_id = ?1",
    [ST_INV_EMAIL_KEY] = "SELECT email_key FROM teacher_invitations WHERE id = ?1",
    [ST_USER_EMAIL_KEY] = "SELECT email_key FROM users WHERE id = ?1",
    [ST_RATE_HIT] = "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, ?3)"
                    " ON CONFLICT (key) DO UPDATE SET"
                    " count = CASE WHEN window_start = excluded.window_start"
                    " THEN count + excluded.count ELSE excluded.count END,"
                    " window_start = excluded.window_start RETURNING count",
    [ST_RATE_READ] = "SELECT coalesce((SELECT count FROM rate_limits"
                     " WHERE key = ?1 AND window_start = ?2), 0)",
};

/* Migration bookkeeping, run inside the migration's own transaction. */
static const char sql_migrations_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL, applied_at TEXT NOT NULL)";
static const char sql_migration_applied[] = "SELECT 1 FROM schema_migrations WHERE version = ?1";
static const char sql_migration_record[] =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)";

/* Translates a driver result; logs what is not the caller's problem. */
enum store_status
store_sq_map(struct sqlite_store *s, int rc)
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
			if (strstr(msg, "users.username_key") != NULL)
				return STORE_CONFLICT_USERNAME;
			if (strstr(msg, "users.email_key") != NULL)
				return STORE_CONFLICT_EMAIL;
			if (strstr(msg, "teacher_invitations.email_key") != NULL)
				return STORE_CONFLICT_PENDING;
		}
		log_msg(RS_LOG_ERROR, "sqlite constraint: %s", msg);
		return STORE_ERROR;
	case SQLITE_CANTOPEN:
	case SQLITE_FULL:
	case SQLITE_IOERR:
	case SQLITE_NOTADB:
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

/* The cached statement `id`, reset and unbound; NULL (logged) when it cannot compile. */
sqlite3_stmt *
store_sq_stmt(struct sqlite_store *s, enum stmt id)
{
	sqlite3_stmt **st = &s->stmts[id];

	if (*st == NULL) {
		if (sqlite3_prepare_v3(s->db, sql_text[id], -1, SQLITE_PREPARE_PERSISTENT, st,
		        NULL) != SQLITE_OK) {
			log_msg(RS_LOG_ERROR, "sqlite prepare: %s", sqlite3_errmsg(s->db));
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
	sqlite3_stmt *st = store_sq_stmt(s, id);
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sq_map(s, rc);
}

/*
 * Runs `body` inside BEGIN IMMEDIATE ... COMMIT, retrying the whole
 * transaction when the database stays locked past busy_timeout.
 */
enum store_status
store_sq_tx(
    struct sqlite_store *s, enum store_status (*body)(struct sqlite_store *, void *), void *arg)
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
			log_msg(RS_LOG_ERROR, "sqlite rollback failed");
	}
	return st;
}

static void sqlite_close(struct store *base);

/* Creates the database's directory (one level) when a migration creates the file. */
static void
make_parent_dir(const char *path)
{
	char *copy = strdup(path);

	if (copy != NULL && mkdir(dirname(copy), 0750) != 0 && errno != EEXIST)
		log_msg(
		    RS_LOG_WARNING, "cannot create the directory of %s: %s", path, strerror(errno));
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
		log_msg(RS_LOG_ERROR, "cannot open sqlite database %s: %s", path,
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
		log_msg(RS_LOG_ERROR, "cannot configure sqlite database %s: %s", path,
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
	struct sqlite_store *s = store_sq_from(base);

	for (int i = 0; i < ST_COUNT_; i++)
		sqlite3_finalize(s->stmts[i]);
	sqlite3_close_v2(s->db);
	free(s);
}

/* Runs a one-row, one-integer query; `*out` gets the value. */
static enum store_status
query_int(struct sqlite_store *s, enum stmt id, int *out)
{
	sqlite3_stmt *st = store_sq_stmt(s, id);
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int(st, 0);
	sqlite3_reset(st);
	return rc == SQLITE_ROW ? STORE_OK : store_sq_map(s, rc);
}

static enum store_status
sqlite_applied_version(struct store *base, int *out)
{
	struct sqlite_store *s = store_sq_from(base);
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
		return store_sq_map(s, rc);
	rc = run_once(s, sql_migration_applied, a->m->version, NULL, NULL);
	if (rc == SQLITE_ROW)
		return STORE_OK; /* another process got there first */
	if (rc != SQLITE_DONE)
		return store_sq_map(s, rc);
	rc = sqlite3_exec(s->db, a->m->sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_sq_map(s, rc);
	store_time_rfc3339(0, now);
	rc = run_once(s, sql_migration_record, a->m->version, a->m->name, now);
	if (rc != SQLITE_DONE)
		return store_sq_map(s, rc);
	a->did = true;
	return STORE_OK;
}

static enum store_status
sqlite_apply(struct store *base, const struct store_migration *m, bool *did)
{
	struct apply_args a = {m, false};
	enum store_status st = store_sq_tx(store_sq_from(base), apply_body, &a);

	*did = st == STORE_OK && a.did;
	return st;
}

static enum store_status
sqlite_user_keys_taken(struct store *base, const char *username_key, const char *email_key)
{
	struct sqlite_store *s = store_sq_from(base);
	sqlite3_stmt *st = store_sq_stmt(s, ST_KEYS_TAKEN);
	enum store_status res;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_text(st, 1, username_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, email_key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		res = store_sq_map(s, rc);
	else if (sqlite3_column_int(st, 0) != 0)
		res = STORE_CONFLICT_USERNAME;
	else if (sqlite3_column_int(st, 1) != 0)
		res = STORE_CONFLICT_EMAIL;
	else
		res = STORE_OK;
	sqlite3_reset(st);
	return res;
}

/* Steps a write statement whose binds are set; STORE_OK when it ran to completion. */
enum store_status
store_sq_done(struct sqlite_store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sq_map(s, rc);
}

/* A write keyed by one id and one optional text value. `changed` gets sqlite3_changes. */
enum store_status
store_sq_exec_id(struct sqlite_store *s, enum stmt id, int64_t key, const char *text, int *changed)
{
	sqlite3_stmt *st = store_sq_stmt(s, id);
	enum store_status res;

	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(st, 1, key);
	if (text != NULL)
		sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
	res = store_sq_done(s, st);
	if (changed != NULL)
		*changed = sqlite3_changes(s->db);
	return res;
}

static enum store_status
exec_id_int(struct sqlite_store *s, enum stmt id, int64_t key, int value)
{
	sqlite3_stmt *st = store_sq_stmt(s, id);

	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(st, 1, key);
	sqlite3_bind_int(st, 2, value);
	return store_sq_done(s, st);
}

/* Reads a USER_COLS row; the hash only when `hash` is not NULL. */
static enum store_status
read_user(sqlite3_stmt *st, struct store_user *u, char **hash)
{
	u->id = sqlite3_column_int64(st, 0);
	u->username = store_sq_dup(st, 1);
	u->email = store_sq_dup(st, 2);
	u->date_joined = store_sq_dup(st, 3);
	u->last_login = store_sq_dup(st, 4);
	u->is_active = sqlite3_column_int(st, 5) != 0;
	u->is_admin = sqlite3_column_int(st, 6) != 0;
	u->role = store_sq_dup(st, 7);
	u->bio = store_sq_dup(st, 8);
	u->can_invite_teachers = sqlite3_column_int(st, 9) != 0;
	if (hash != NULL)
		*hash = store_sq_dup(st, 10);
	if (u->username == NULL || u->email == NULL || u->date_joined == NULL || u->role == NULL ||
	    u->bio == NULL || (hash != NULL && *hash == NULL))
		return STORE_ERROR;
	return STORE_OK;
}

static enum store_status
user_get_locked(
    struct sqlite_store *s, const struct store_user_ref *ref, struct store_user *out, char **hash)
{
	enum stmt id = ref->id > 0                 ? ST_USER_BY_ID
	               : ref->username_key != NULL ? ST_USER_BY_USERNAME
	                                           : ST_USER_BY_EMAIL;
	sqlite3_stmt *st = store_sq_stmt(s, id);
	enum store_status res;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	if (id == ST_USER_BY_ID)
		sqlite3_bind_int64(st, 1, ref->id);
	else
		store_sq_bind(
		    st, 1, id == ST_USER_BY_USERNAME ? ref->username_key : ref->email_key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		res = read_user(st, out, hash);
	else
		res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sq_map(s, rc);
	sqlite3_reset(st);
	return res;
}

static enum store_status
sqlite_user_get(
    struct store *base, const struct store_user_ref *ref, struct store_user *out, char **hash)
{
	struct sqlite_store *s = store_sq_from(base);
	enum store_status res = user_get_locked(s, ref, out, hash);

	/* By username first, then by email (login takes either). */
	if (res == STORE_NOT_FOUND && ref->id <= 0 && ref->username_key != NULL &&
	    ref->email_key != NULL) {
		struct store_user_ref by_email = {0, NULL, ref->email_key};

		res = user_get_locked(s, &by_email, out, hash);
	}
	if (res != STORE_OK) {
		store_user_clear(out);
		if (hash != NULL) {
			free(*hash);
			*hash = NULL;
		}
	}
	return res;
}

/* Makes room for item `n` of an array of `*cap` items, doubling; false on OOM. */
bool
store_sq_grow(void **items, size_t n, size_t *cap, size_t size)
{
	void *grown;

	if (n < *cap)
		return true;
	grown = realloc(*items, (*cap != 0 ? *cap * 2 : 16) * size);
	if (grown == NULL)
		return false;
	*items = grown;
	*cap = *cap != 0 ? *cap * 2 : 16;
	return true;
}

static enum store_status
sqlite_user_list(struct store *base, struct store_users *out)
{
	struct sqlite_store *s = store_sq_from(base);
	sqlite3_stmt *st = store_sq_stmt(s, ST_USER_ALL);
	enum store_status res = STORE_OK;
	size_t cap = 0;
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	while (res == STORE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!store_sq_grow((void **)&out->items, out->n, &cap, sizeof(out->items[0]))) {
			res = STORE_ERROR;
			break;
		}
		memset(&out->items[out->n], 0, sizeof(out->items[0]));
		res = read_user(st, &out->items[out->n++], NULL);
	}
	if (res == STORE_OK && rc != SQLITE_DONE)
		res = store_sq_map(s, rc);
	sqlite3_reset(st);
	if (res != STORE_OK)
		store_users_clear(out);
	return res;
}

struct create_args {
	const struct store_new_user *in;
	char joined[64];
	int64_t id;
	enum store_invite_why *why;
};

static enum store_status
create_body(struct sqlite_store *s, void *arg)
{
	struct create_args *a = arg;
	sqlite3_stmt *st = store_sq_stmt(s, ST_USER_INSERT);
	enum store_status res;

	if (st == NULL)
		return STORE_ERROR;
	store_sq_bind(st, 1, a->in->username);
	store_sq_bind(st, 2, a->in->username_key);
	store_sq_bind(st, 3, a->in->email);
	store_sq_bind(st, 4, a->in->email_key);
	store_sq_bind(st, 5, a->in->password_hash);
	sqlite3_bind_int(st, 6, a->in->is_admin);
	store_sq_bind(st, 7, a->joined);
	res = store_sq_done(s, st);
	if (res != STORE_OK)
		return res;
	a->id = sqlite3_last_insert_rowid(s->db);

	st = store_sq_stmt(s, ST_PROFILE_INSERT);
	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(st, 1, a->id);
	store_sq_bind(st, 2, a->in->role);
	store_sq_bind(st, 3, a->in->bio);
	sqlite3_bind_int(st, 4, a->in->can_invite_teachers);
	res = store_sq_done(s, st);
	if (res != STORE_OK || a->in->invitation_hash == NULL)
		return res;
	return store_sq_accept_locked(s, a->in->invitation_hash, a->id, a->in->email_key, a->why);
}

static enum store_status
sqlite_user_create(struct store *base, const struct store_new_user *in, struct store_user *out,
    enum store_invite_why *why)
{
	struct create_args a = {.in = in, .why = why};
	enum store_status st;

	store_time_rfc3339(0, a.joined);
	st = store_sq_tx(store_sq_from(base), create_body, &a);
	return st == STORE_OK ? store_user_from_new(in, a.id, a.joined, out) : st;
}

struct update_args {
	int64_t id;
	const struct store_user_update *u;
};

static enum store_status
update_body(struct sqlite_store *s, void *arg)
{
	struct update_args *a = arg;
	const struct store_user_update *u = a->u;
	struct store_user_ref ref = {a->id, NULL, NULL};
	struct store_user cur = {0};
	enum store_status res = user_get_locked(s, &ref, &cur, NULL);
	int changed = 0;

	store_user_clear(&cur);
	if (res == STORE_OK && u->bio != NULL)
		res = store_sq_exec_id(s, ST_SET_BIO, a->id, u->bio, NULL);
	if (res == STORE_OK && u->role != NULL)
		res = store_sq_exec_id(s, ST_SET_ROLE, a->id, u->role, NULL);
	if (res == STORE_OK && u->can_invite_teachers >= 0)
		res = exec_id_int(s, ST_SET_CAN_INVITE, a->id, u->can_invite_teachers);
	if (res == STORE_OK && u->is_admin >= 0)
		res = exec_id_int(s, ST_SET_ADMIN, a->id, u->is_admin);
	if (res == STORE_OK && u->is_active >= 0)
		res = exec_id_int(s, ST_SET_ACTIVE, a->id, u->is_active);
	if (res == STORE_OK && u->password_hash != NULL && u->expect_hash != NULL) {
		sqlite3_stmt *st = store_sq_stmt(s, ST_REHASH);

		if (st == NULL)
			return STORE_ERROR;
		sqlite3_bind_int64(st, 1, a->id);
		store_sq_bind(st, 2, u->password_hash);
		store_sq_bind(st, 3, u->expect_hash);
		res = store_sq_done(s, st);
		if (res == STORE_OK && sqlite3_changes(s->db) != 1)
			res = STORE_CONFLICT;
	} else if (res == STORE_OK && u->password_hash != NULL) {
		res = store_sq_exec_id(s, ST_SET_PASSWORD, a->id, u->password_hash, &changed);
	}
	/* A new password or a deactivation ends every session. */
	if (res == STORE_OK &&
	    ((u->password_hash != NULL && u->expect_hash == NULL) || u->is_active == 0))
		res = store_sq_exec_id(s, ST_TOKENS_REVOKE_USER, a->id, NULL, NULL);
	return res;
}

static enum store_status
sqlite_user_update(struct store *base, int64_t id, const struct store_user_update *u)
{
	struct update_args a = {id, u};

	return store_sq_tx(store_sq_from(base), update_body, &a);
}

static enum store_status
delete_body(struct sqlite_store *s, void *arg)
{
	int changed = 0;
	enum store_status res =
	    store_sq_exec_id(s, ST_USER_DELETE, *(int64_t *)arg, NULL, &changed);

	return res == STORE_OK && changed == 0 ? STORE_NOT_FOUND : res;
}

static enum store_status
sqlite_user_delete(struct store *base, int64_t id)
{
	return store_sq_tx(store_sq_from(base), delete_body, &id);
}

struct token_args {
	int64_t user_id;
	const char *token_hash;
	char now[64];
	char *expires;
};

static enum store_status
token_body(struct sqlite_store *s, void *arg)
{
	struct token_args *a = arg;
	sqlite3_stmt *st = store_sq_stmt(s, ST_TOKENS_PURGE);
	enum store_status res;

	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(st, 1, a->user_id);
	store_sq_bind(st, 2, a->now);
	res = store_sq_done(s, st);
	st = res == STORE_OK ? store_sq_stmt(s, ST_TOKEN_INSERT) : NULL;
	if (st == NULL)
		return res == STORE_OK ? STORE_ERROR : res;
	sqlite3_bind_int64(st, 1, a->user_id);
	store_sq_bind(st, 2, a->token_hash);
	store_sq_bind(st, 3, a->now);
	store_sq_bind(st, 4, a->expires);
	res = store_sq_done(s, st);
	if (res != STORE_OK)
		return res;
	return store_sq_exec_id(s, ST_SET_LAST_LOGIN, a->user_id, a->now, NULL);
}

static enum store_status
sqlite_token_create(struct store *base, int64_t user_id, const char *token_hash, long long ttl_s,
    char expires_at[64])
{
	struct token_args a = {.user_id = user_id, .token_hash = token_hash, .expires = expires_at};

	store_time_rfc3339(0, a.now);
	store_time_rfc3339(ttl_s, expires_at);
	return store_sq_tx(store_sq_from(base), token_body, &a);
}

static enum store_status
sqlite_token_user(struct store *base, const char *token_hash, struct store_user *out)
{
	struct sqlite_store *s = store_sq_from(base);
	sqlite3_stmt *st = store_sq_stmt(s, ST_TOKEN_USER);
	enum store_status res;
	char now[64];
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	store_time_rfc3339(0, now);
	store_sq_bind(st, 1, token_hash);
	store_sq_bind(st, 2, now);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		res = read_user(st, out, NULL);
	else
		res = rc == SQLITE_DONE ? STORE_NOT_FOUND : store_sq_map(s, rc);
	sqlite3_reset(st);
	return res;
}

static enum store_status
revoke_token_body(struct sqlite_store *s, void *arg)
{
	sqlite3_stmt *st = store_sq_stmt(s, ST_TOKEN_DELETE);

	if (st == NULL)
		return STORE_ERROR;
	store_sq_bind(st, 1, arg);
	return store_sq_done(s, st);
}

static enum store_status
sqlite_token_revoke(struct store *base, const char *token_hash)
{
	return store_sq_tx(store_sq_from(base), revoke_token_body, (void *)token_hash);
}

/* One text column of the row `id`, by a one-parameter statement; NOT_FOUND when none. */
enum store_status
store_sq_text_by_id(struct sqlite_store *s, enum stmt id, int64_t key, char **out)
{
	sqlite3_stmt *st = store_sq_stmt(s, id);
	int rc;

	*out = NULL;
	if (st == NULL)
		return STORE_ERROR;
	sqlite3_bind_int64(st, 1, key);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*out = store_sq_dup(st, 0);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return store_sq_map(s, rc);
	return *out != NULL ? STORE_OK : STORE_ERROR;
}

struct rate_args {
	const char *key;
	long long start;
	int add;
	long long *count;
};

static enum store_status
rate_body(struct sqlite_store *s, void *arg)
{
	struct rate_args *a = arg;
	sqlite3_stmt *st = store_sq_stmt(s, a->add > 0 ? ST_RATE_HIT : ST_RATE_READ);
	int rc;

	if (st == NULL)
		return STORE_ERROR;
	store_sq_bind(st, 1, a->key);
	sqlite3_bind_int64(st, 2, a->start);
	if (a->add > 0)
		sqlite3_bind_int(st, 3, a->add);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*a->count = sqlite3_column_int64(st, 0);
	if (rc == SQLITE_ROW)
		rc = sqlite3_step(st); /* RETURNING: run the statement to completion */
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? STORE_OK : store_sq_map(s, rc);
}

static enum store_status
sqlite_rate_count(struct store *base, const char *key, long long start, int add, long long *count)
{
	struct rate_args a = {key, start, add, count};

	/* A read needs no write lock; a hit is one upsert in its own transaction. */
	return add > 0 ? store_sq_tx(store_sq_from(base), rate_body, &a)
	               : rate_body(store_sq_from(base), &a);
}

const struct store_ops store_sqlite_ops = {
    .scheme = "sqlite:",
    .migrations = store_migrations_sqlite,
    .open = sqlite_open,
    .close = sqlite_close,
    .applied_version = sqlite_applied_version,
    .apply = sqlite_apply,
    .user_keys_taken = sqlite_user_keys_taken,
    .user_create = sqlite_user_create,
    .user_get = sqlite_user_get,
    .user_list = sqlite_user_list,
    .user_update = sqlite_user_update,
    .user_delete = sqlite_user_delete,
    .token_create = sqlite_token_create,
    .token_user = sqlite_token_user,
    .token_revoke = sqlite_token_revoke,
    .invite_create = store_sq_invite_create,
    .invite_list = store_sq_invite_list,
    .invite_resend = store_sq_invite_resend,
    .invite_revoke = store_sq_invite_revoke,
    .invite_accept = store_sq_invite_accept,
    .rate_count = sqlite_rate_count,
};
