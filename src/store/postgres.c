/*
 * PostgreSQL backend (libpq): one connection per thread, statements prepared
 * once per connection on first use, READ COMMITTED transactions. Unique
 * violations (23505) map to conflicts by constraint name; serialization
 * failures and deadlocks are retried; a lost connection is STORE_UNAVAILABLE
 * and is re-established with backoff on a later call, so the service recovers
 * without a restart. A COMMIT whose answer is lost is reported as unavailable,
 * never as success: an acknowledged write is always a committed one.
 */
#include "store/postgres_int.h"
#include "log.h"
#include "metrics.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TX_ATTEMPTS          3
#define STATEMENT_TIMEOUT_MS 5000
#define CONNECT_TIMEOUT_S    2
#define BACKOFF_MIN_MS       50
#define BACKOFF_MAX_MS       2000
#define MIGRATION_LOCK       7263001 /* pg_advisory_xact_lock key for migrations */
#define RS_STR_(x)           #x
#define RS_STR(x)            RS_STR_(x)

/* Timestamps leave the database as fixed-width RFC 3339 UTC text, as in SQLite. */
#define TS(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
#define USER_COLS                                                                                  \
	"SELECT u.id, u.username, u.email, " TS("u.date_joined") ", " TS(                          \
	    "u.last_login") ", u.is_active, u.is_admin, p.role, p.bio, p.can_invite_teachers, "    \
	                    "u.password_hash"                                                      \
	                    " FROM users u JOIN profiles p ON p.user_id = u.id"
#define INV_COLS                                                                                   \
	"SELECT i.id, i.inviter_id, u.username, i.email,"                                          \
	" CASE WHEN i.status = 'pending' AND i.expires_at <= $2 THEN 'expired' ELSE i.status END," \
	" " TS("i.created_at") ", " TS("i.expires_at") ", " TS(                                    \
	    "i.accepted_at") " FROM teacher_invitations i JOIN users u ON u.id = i.inviter_id"

/* The one statement table of this backend. */
static const char *const sql_text[ST_COUNT_] = {
    [ST_BEGIN] = "BEGIN",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_HAS_MIGRATIONS] =
        "SELECT count(*) FROM pg_catalog.pg_tables"
        " WHERE schemaname = current_schema() AND tablename = 'schema_migrations'",
    [ST_APPLIED_VERSION] = "SELECT coalesce(max(version), 0) FROM schema_migrations",
    [ST_KEYS_TAKEN] = "SELECT EXISTS (SELECT 1 FROM users WHERE username_key = $1)::int,"
                      " EXISTS (SELECT 1 FROM users WHERE email_key = $2)::int",
    [ST_USER_INSERT] = "INSERT INTO users (username, username_key, email, email_key,"
                       " password_hash, is_admin, date_joined) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                       " RETURNING id",
    [ST_PROFILE_INSERT] = "INSERT INTO profiles (user_id, role, bio, can_invite_teachers)"
                          " VALUES ($1, $2, $3, $4)",
    [ST_USER_BY_ID] = USER_COLS " WHERE u.id = $1",
    [ST_USER_BY_USERNAME] = USER_COLS " WHERE u.username_key = $1",
    [ST_USER_BY_EMAIL] = USER_COLS " WHERE u.email_key = $1",
    [ST_USER_ALL] = USER_COLS " ORDER BY u.id",
    [ST_SET_BIO] = "UPDATE profiles SET bio = $2 WHERE user_id = $1",
    [ST_SET_ROLE] = "UPDATE profiles SET role = $2 WHERE user_id = $1",
    [ST_SET_CAN_INVITE] = "UPDATE profiles SET can_invite_teachers = $2 WHERE user_id = $1",
    [ST_SET_ACTIVE] = "UPDATE users SET is_active = $2 WHERE id = $1",
    [ST_SET_ADMIN] = "UPDATE users SET is_admin = $2 WHERE id = $1",
    [ST_SET_PASSWORD] = "UPDATE users SET password_hash = $2 WHERE id = $1",
    [ST_REHASH] = "UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3",
    [ST_USER_DELETE] = "DELETE FROM users WHERE id = $1",
    [ST_TOKEN_INSERT] = "INSERT INTO auth_tokens (user_id, token_hash, created_at, expires_at)"
                        " VALUES ($1, $2, $3, $4)",
    [ST_TOKENS_PURGE] = "DELETE FROM auth_tokens WHERE user_id = $1 AND expires_at <= $2",
    [ST_TOKENS_REVOKE_USER] = "DELETE FROM auth_tokens WHERE user_id = $1",
    [ST_SET_LAST_LOGIN] = "UPDATE users SET last_login = $2 WHERE id = $1",
    [ST_TOKEN_USER] = USER_COLS " JOIN auth_tokens t ON t.user_id = u.id"
                                " WHERE t.token_hash = $1 AND t.expires_at > $2 AND u.is_active",
    [ST_TOKEN_DELETE] = "DELETE FROM auth_tokens WHERE token_hash = $1",
    [ST_INV_EXPIRE_EMAIL] = "UPDATE teacher_invitations SET status = 'expired'"
                            " WHERE email_key = $1 AND status = 'pending' AND expires_at <= $2",
    [ST_EMAIL_HAS_ACCOUNT] = "SELECT EXISTS (SELECT 1 FROM users WHERE email_key = $1)::int",
    [ST_INV_INSERT] = "INSERT INTO teacher_invitations (inviter_id, email, email_key, token_hash,"
                      " status, created_at, expires_at) VALUES ($1, $2, $3, $4, 'pending', $5, $6)"
                      " RETURNING id",
    [ST_INV_BY_ID] = INV_COLS " WHERE i.id = $1",
    [ST_INV_LIST] = INV_COLS " WHERE $1 = 0 OR i.inviter_id = $1 ORDER BY i.id DESC LIMIT 1000",
    [ST_INV_RESEND] = "UPDATE teacher_invitations SET token_hash = $2, status = 'pending',"
                      " expires_at = $3 WHERE id = $1 AND status IN ('pending', 'expired')",
    [ST_INV_REVOKE] = "UPDATE teacher_invitations SET status = 'revoked'"
                      " WHERE id = $1 AND status = 'pending' AND expires_at > $2",
    [ST_INV_BY_TOKEN] = "SELECT status, (expires_at <= $2)::int, email_key FROM teacher_invitations"
                        " WHERE token_hash = $1",
    [ST_INV_ACCEPT] = "UPDATE teacher_invitations SET status = 'accepted', accepted_at = $3,"
                      " accepted_by = $2 WHERE token_hash = $1 AND status = 'pending'"
                      " AND expires_at > $3 AND email_key = $4",
    [ST_PROFILE_TEACHER] = "UPDATE profiles SET role = 'teacher', can_invite_teachers = false"
                           " WHERE user_id = $1",
    [ST_INV_EMAIL_KEY] = "SELECT email_key FROM teacher_invitations WHERE id = $1",
    [ST_USER_EMAIL_KEY] = "SELECT email_key FROM users WHERE id = $1",
    [ST_RATE_HIT] = "INSERT INTO rate_limits AS r (key, window_start, count) VALUES ($1, $2, $3)"
                    " ON CONFLICT (key) DO UPDATE SET"
                    " count = CASE WHEN r.window_start = excluded.window_start"
                    " THEN r.count + excluded.count ELSE excluded.count END,"
                    " window_start = excluded.window_start RETURNING count",
    [ST_RATE_READ] = "SELECT coalesce((SELECT count FROM rate_limits"
                     " WHERE key = $1 AND window_start = $2), 0)",
    [ST_MIGRATION_LOCK] = "SELECT pg_advisory_xact_lock(" RS_STR(MIGRATION_LOCK) ")",
    [ST_MIGRATION_APPLIED] = "SELECT 1 FROM schema_migrations WHERE version = $1",
    [ST_MIGRATION_RECORD] = "INSERT INTO schema_migrations (version, name, applied_at)"
                            " VALUES ($1, $2, now())",
};

static const char sql_migrations_table[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
    " name text NOT NULL, applied_at timestamptz NOT NULL)";

static bool
before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static void
log_unreachable(const PGconn *conn)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", conn != NULL ? PQerrorMessage(conn) : "out of memory");
	msg[strcspn(msg, "\n")] = '\0';
	log_msg(RS_LOG_WARNING, "postgresql unreachable: %s", msg);
}

/* Server notices ("relation already exists, skipping") go to the JSON log. */
static void
on_notice(void *arg, const char *message)
{
	char msg[256];

	(void)arg;
	snprintf(msg, sizeof(msg), "%s", message);
	msg[strcspn(msg, "\n")] = '\0';
	log_msg(RS_LOG_DEBUG, "postgresql notice: %s", msg);
}

/* (Re)connects when needed, no more often than the backoff allows. */
static bool
connected(struct pg_store *s)
{
	struct timespec now;
	PGresult *r;

	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK)
		return true;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (s->conn != NULL && before(&now, &s->retry_at))
		return false;
	PQfinish(s->conn);
	memset(s->prepared, 0, sizeof(s->prepared));
	s->conn = PQconnectdb(s->url);
	if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
		PQsetNoticeProcessor(s->conn, on_notice, NULL);
		r = PQexec(s->conn, "SET statement_timeout = " RS_STR(STATEMENT_TIMEOUT_MS));
		PQclear(r);
		if (s->backoff_ms != 0 || s->ever_connected) {
			log_msg(RS_LOG_INFO, "postgresql connection re-established");
			metrics_db(METRICS_DB_RECONNECT);
		}
		s->ever_connected = true;
		s->backoff_ms = 0;
		return true;
	}
	s->backoff_ms = s->backoff_ms == 0 ? BACKOFF_MIN_MS : s->backoff_ms * 2;
	if (s->backoff_ms > BACKOFF_MAX_MS)
		s->backoff_ms = BACKOFF_MAX_MS;
	s->retry_at = now;
	s->retry_at.tv_nsec += (long)(s->backoff_ms % 1000) * 1000000L;
	s->retry_at.tv_sec += s->backoff_ms / 1000 + s->retry_at.tv_nsec / 1000000000L;
	s->retry_at.tv_nsec %= 1000000000L;
	log_unreachable(s->conn);
	return false;
}

/* Translates a result; logs what is not the caller's problem. */
static enum store_status
map_res(struct pg_store *s, const PGresult *r)
{
	ExecStatusType es = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *cons = r != NULL ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;

	if (es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK)
		return STORE_OK;
	if (PQstatus(s->conn) != CONNECTION_OK || state == NULL || strncmp(state, "08", 2) == 0 ||
	    strncmp(state, "57P", 3) == 0) {
		log_msg(RS_LOG_WARNING, "postgresql connection lost");
		metrics_db(METRICS_DB_UNAVAILABLE);
		return STORE_UNAVAILABLE;
	}
	if (strcmp(state, "23505") == 0 && cons != NULL) {
		if (strcmp(cons, "users_username_key") == 0)
			return STORE_CONFLICT_USERNAME;
		if (strcmp(cons, "users_email_key") == 0)
			return STORE_CONFLICT_EMAIL;
		if (strcmp(cons, "teacher_invitations_pending_email") == 0)
			return STORE_CONFLICT_PENDING;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	    strcmp(state, "55P03") == 0 || strcmp(state, "57014") == 0) {
		metrics_db(METRICS_DB_BUSY);
		return STORE_BUSY; /* serialization, deadlock, lock or statement timeout */
	}
	cons = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
	log_msg(RS_LOG_ERROR, "postgresql error %s: %s", state, cons != NULL ? cons : "?");
	metrics_db(METRICS_DB_ERROR);
	return STORE_ERROR;
}

/*
 * Runs statement `id` with text parameters; `*out` gets the result (free with
 * PQclear) when STORE_OK.
 */
enum store_status
store_pg_run(struct pg_store *s, enum stmt id, int n, const char *const *params, PGresult **out)
{
	char name[16];
	PGresult *r;
	enum store_status st;

	*out = NULL;
	if (!connected(s))
		return STORE_UNAVAILABLE;
	snprintf(name, sizeof(name), "s%d", (int)id);
	if (!s->prepared[id]) {
		r = PQprepare(s->conn, name, sql_text[id], 0, NULL);
		st = map_res(s, r);
		PQclear(r);
		if (st != STORE_OK)
			return st;
		s->prepared[id] = true;
	}
	r = PQexecPrepared(s->conn, name, n, params, NULL, NULL, 0);
	st = map_res(s, r);
	if (st != STORE_OK) {
		PQclear(r);
		return st;
	}
	*out = r;
	return STORE_OK;
}

/* Runs a statement whose result is not needed; `*changed` gets the row count. */
enum store_status
store_pg_exec(struct pg_store *s, enum stmt id, int n, const char *const *params, int *changed)
{
	PGresult *r = NULL;
	enum store_status st = store_pg_run(s, id, n, params, &r);

	if (st == STORE_OK && changed != NULL)
		*changed = atoi(PQcmdTuples(r));
	PQclear(r);
	return st;
}

/* Runs `body` in a transaction, retrying serialization failures and deadlocks. */
enum store_status
store_pg_tx(struct pg_store *s, enum store_status (*body)(struct pg_store *, void *), void *arg)
{
	enum store_status st = STORE_BUSY;

	for (int attempt = 0; attempt < TX_ATTEMPTS && st == STORE_BUSY; attempt++) {
		st = store_pg_exec(s, ST_BEGIN, 0, NULL, NULL);
		if (st != STORE_OK)
			continue;
		st = body(s, arg);
		if (st == STORE_OK)
			st = store_pg_exec(s, ST_COMMIT, 0, NULL, NULL);
		if (st != STORE_OK && PQstatus(s->conn) == CONNECTION_OK &&
		    PQtransactionStatus(s->conn) != PQTRANS_IDLE &&
		    store_pg_exec(s, ST_ROLLBACK, 0, NULL, NULL) != STORE_OK)
			log_msg(RS_LOG_ERROR, "postgresql rollback failed");
	}
	return st;
}

static void pg_close(struct store *base);

static enum store_status
pg_open(const char *rest, enum store_open_mode mode, struct store **out)
{
	struct pg_store *s = calloc(1, sizeof(*s));
	/* Connecting blocks the calling thread (an I/O thread for /readyz and
	 * token checks): bound it unless the URL says otherwise. */
	const char *bound = strstr(rest, "connect_timeout=") != NULL ? ""
	                    : strchr(rest, '?') != NULL
	                        ? "&connect_timeout=" RS_STR(CONNECT_TIMEOUT_S)
	                        : "?connect_timeout=" RS_STR(CONNECT_TIMEOUT_S);
	size_t n = strlen("postgresql:") + strlen(rest) + strlen(bound) + 1;

	(void)mode; /* the database itself is made by its administrator */
	if (s == NULL || (s->url = malloc(n)) == NULL) {
		free(s);
		return STORE_ERROR;
	}
	snprintf(s->url, n, "postgresql:%s%s", rest, bound);
	s->base.ops = &store_postgres_ops;
	if (!connected(s)) {
		pg_close(&s->base);
		return STORE_UNAVAILABLE;
	}
	*out = &s->base;
	return STORE_OK;
}

static void
pg_close(struct store *base)
{
	struct pg_store *s = store_pg_from(base);

	PQfinish(s->conn);
	free(s->url);
	free(s);
}

/* A one-row, one-integer query. */
enum store_status
store_pg_query_int(struct pg_store *s, enum stmt id, int n, const char *const *params, int *out)
{
	PGresult *r = NULL;
	enum store_status st = store_pg_run(s, id, n, params, &r);

	if (st == STORE_OK) {
		if (PQntuples(r) == 1)
			*out = atoi(PQgetvalue(r, 0, 0));
		else
			st = STORE_NOT_FOUND;
	}
	PQclear(r);
	return st;
}

static enum store_status
pg_applied_version(struct store *base, int *out)
{
	struct pg_store *s = store_pg_from(base);
	enum store_status st;
	int has = 0;

	*out = 0;
	st = store_pg_query_int(s, ST_HAS_MIGRATIONS, 0, NULL, &has);
	if (st != STORE_OK || has == 0)
		return st;
	return store_pg_query_int(s, ST_APPLIED_VERSION, 0, NULL, out);
}

struct apply_args {
	const struct store_migration *m;
	bool did;
};

/* Migrations run one transaction each under an advisory lock, so two
 * processes migrating at once apply each version exactly once. */
static enum store_status
apply_body(struct pg_store *s, void *arg)
{
	struct apply_args *a = arg;
	char ver[24];
	const char *params[2] = {ver, a->m->name};
	enum store_status st = store_pg_exec(s, ST_MIGRATION_LOCK, 0, NULL, NULL);
	PGresult *r;
	int seen = 0;

	a->did = false;
	store_pg_fmt_id(ver, a->m->version);
	if (st != STORE_OK)
		return st;
	r = PQexec(s->conn, sql_migrations_table);
	st = map_res(s, r);
	PQclear(r);
	if (st != STORE_OK)
		return st;
	st = store_pg_query_int(s, ST_MIGRATION_APPLIED, 1, params, &seen);
	if (st == STORE_OK)
		return STORE_OK; /* another process got there first */
	if (st != STORE_NOT_FOUND)
		return st;
	r = PQexec(s->conn, a->m->sql);
	st = map_res(s, r);
	PQclear(r);
	if (st == STORE_OK)
		st = store_pg_exec(s, ST_MIGRATION_RECORD, 2, params, NULL);
	a->did = st == STORE_OK;
	return st;
}

static enum store_status
pg_apply(struct store *base, const struct store_migration *m, bool *did)
{
	struct apply_args a = {m, false};
	enum store_status st = store_pg_tx(store_pg_from(base), apply_body, &a);

	*did = st == STORE_OK && a.did;
	return st;
}

static enum store_status
pg_user_keys_taken(struct store *base, const char *username_key, const char *email_key)
{
	const char *params[2] = {username_key, email_key};
	PGresult *r = NULL;
	enum store_status st = store_pg_run(store_pg_from(base), ST_KEYS_TAKEN, 2, params, &r);

	if (st == STORE_OK && PQntuples(r) == 1) {
		if (atoi(PQgetvalue(r, 0, 0)) != 0)
			st = STORE_CONFLICT_USERNAME;
		else if (atoi(PQgetvalue(r, 0, 1)) != 0)
			st = STORE_CONFLICT_EMAIL;
	}
	PQclear(r);
	return st;
}

static bool
val_bool(const PGresult *r, int row, int col)
{
	return PQgetvalue(r, row, col)[0] == 't';
}

/* Reads a USER_COLS row; the hash only when `hash` is not NULL. */
static enum store_status
read_user(const PGresult *r, int row, struct store_user *u, char **hash)
{
	u->id = strtoll(PQgetvalue(r, row, 0), NULL, 10);
	u->username = store_pg_dup(r, row, 1);
	u->email = store_pg_dup(r, row, 2);
	u->date_joined = store_pg_dup(r, row, 3);
	u->last_login = store_pg_dup(r, row, 4);
	u->is_active = val_bool(r, row, 5);
	u->is_admin = val_bool(r, row, 6);
	u->role = store_pg_dup(r, row, 7);
	u->bio = store_pg_dup(r, row, 8);
	u->can_invite_teachers = val_bool(r, row, 9);
	if (hash != NULL)
		*hash = store_pg_dup(r, row, 10);
	if (u->username == NULL || u->email == NULL || u->date_joined == NULL || u->role == NULL ||
	    u->bio == NULL || (hash != NULL && *hash == NULL))
		return STORE_ERROR;
	return STORE_OK;
}

static enum store_status
user_get_one(struct pg_store *s, enum stmt id, const char *key, struct store_user *out, char **hash)
{
	PGresult *r = NULL;
	enum store_status st = store_pg_run(s, id, 1, &key, &r);

	if (st == STORE_OK)
		st = PQntuples(r) == 1 ? read_user(r, 0, out, hash) : STORE_NOT_FOUND;
	PQclear(r);
	return st;
}

static enum store_status
pg_user_get(
    struct store *base, const struct store_user_ref *ref, struct store_user *out, char **hash)
{
	struct pg_store *s = store_pg_from(base);
	enum store_status st;
	char id[24];

	store_pg_fmt_id(id, ref->id);
	if (ref->id > 0)
		st = user_get_one(s, ST_USER_BY_ID, id, out, hash);
	else if (ref->username_key != NULL)
		st = user_get_one(s, ST_USER_BY_USERNAME, ref->username_key, out, hash);
	else
		st = STORE_NOT_FOUND;
	/* By username first, then by email (login takes either). */
	if (st == STORE_NOT_FOUND && ref->id <= 0 && ref->email_key != NULL)
		st = user_get_one(s, ST_USER_BY_EMAIL, ref->email_key, out, hash);
	if (st != STORE_OK) {
		store_user_clear(out);
		if (hash != NULL) {
			free(*hash);
			*hash = NULL;
		}
	}
	return st;
}

static enum store_status
pg_user_list(struct store *base, struct store_users *out)
{
	PGresult *r = NULL;
	enum store_status st = store_pg_run(store_pg_from(base), ST_USER_ALL, 0, NULL, &r);
	int rows = st == STORE_OK ? PQntuples(r) : 0;

	if (st == STORE_OK && rows > 0) {
		out->items = calloc((size_t)rows, sizeof(*out->items));
		if (out->items == NULL)
			st = STORE_ERROR;
	}
	for (int i = 0; st == STORE_OK && i < rows; i++) {
		out->n++;
		st = read_user(r, i, &out->items[i], NULL);
	}
	PQclear(r);
	if (st != STORE_OK)
		store_users_clear(out);
	return st;
}

struct create_args {
	const struct store_new_user *in;
	char joined[64];
	int64_t id;
	enum store_invite_why *why;
};

static enum store_status
create_body(struct pg_store *s, void *arg)
{
	struct create_args *a = arg;
	const struct store_new_user *in = a->in;
	const char *user[7] = {in->username, in->username_key, in->email, in->email_key,
	    in->password_hash, in->is_admin ? "true" : "false", a->joined};
	char id[24];
	const char *profile[4] = {
	    id, in->role, in->bio, in->can_invite_teachers ? "true" : "false"};
	PGresult *r = NULL;
	enum store_status st = store_pg_run(s, ST_USER_INSERT, 7, user, &r);

	if (st == STORE_OK)
		a->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	if (st != STORE_OK)
		return st;
	store_pg_fmt_id(id, a->id);
	st = store_pg_exec(s, ST_PROFILE_INSERT, 4, profile, NULL);
	if (st != STORE_OK || in->invitation_hash == NULL)
		return st;
	return store_pg_accept_locked(s, in->invitation_hash, a->id, in->email_key, a->why);
}

static enum store_status
pg_user_create(struct store *base, const struct store_new_user *in, struct store_user *out,
    enum store_invite_why *why)
{
	struct create_args a = {.in = in, .why = why};
	enum store_status st;

	store_time_rfc3339(0, a.joined);
	st = store_pg_tx(store_pg_from(base), create_body, &a);
	return st == STORE_OK ? store_user_from_new(in, a.id, a.joined, out) : st;
}

struct update_args {
	int64_t id;
	const struct store_user_update *u;
};

static enum store_status
set_field(struct pg_store *s, enum stmt id, const char *key, const char *value)
{
	const char *params[2] = {key, value};

	return store_pg_exec(s, id, 2, params, NULL);
}

static enum store_status
update_body(struct pg_store *s, void *arg)
{
	struct update_args *a = arg;
	const struct store_user_update *u = a->u;
	char id[24];
	const char *params[3] = {id, u->password_hash, u->expect_hash};
	int found = 0, changed = 0;
	enum store_status st;

	store_pg_fmt_id(id, a->id);
	st = store_pg_query_int(s, ST_USER_EMAIL_KEY, 1, params, &found); /* exists? */
	if (st == STORE_OK && u->bio != NULL)
		st = set_field(s, ST_SET_BIO, id, u->bio);
	if (st == STORE_OK && u->role != NULL)
		st = set_field(s, ST_SET_ROLE, id, u->role);
	if (st == STORE_OK && u->can_invite_teachers >= 0)
		st = set_field(s, ST_SET_CAN_INVITE, id, u->can_invite_teachers ? "true" : "false");
	if (st == STORE_OK && u->is_admin >= 0)
		st = set_field(s, ST_SET_ADMIN, id, u->is_admin ? "true" : "false");
	if (st == STORE_OK && u->is_active >= 0)
		st = set_field(s, ST_SET_ACTIVE, id, u->is_active ? "true" : "false");
	if (st == STORE_OK && u->password_hash != NULL && u->expect_hash != NULL) {
		st = store_pg_exec(s, ST_REHASH, 3, params, &changed);
		if (st == STORE_OK && changed != 1)
			st = STORE_CONFLICT;
	} else if (st == STORE_OK && u->password_hash != NULL) {
		st = set_field(s, ST_SET_PASSWORD, id, u->password_hash);
	}
	/* A new password or a deactivation ends every session. */
	if (st == STORE_OK &&
	    ((u->password_hash != NULL && u->expect_hash == NULL) || u->is_active == 0))
		st = store_pg_exec(s, ST_TOKENS_REVOKE_USER, 1, params, NULL);
	return st;
}

static enum store_status
pg_user_update(struct store *base, int64_t id, const struct store_user_update *u)
{
	struct update_args a = {id, u};

	return store_pg_tx(store_pg_from(base), update_body, &a);
}

static enum store_status
delete_body(struct pg_store *s, void *arg)
{
	char id[24];
	const char *params[1] = {id};
	int changed = 0;
	enum store_status st;

	store_pg_fmt_id(id, *(int64_t *)arg);
	st = store_pg_exec(s, ST_USER_DELETE, 1, params, &changed);
	return st == STORE_OK && changed == 0 ? STORE_NOT_FOUND : st;
}

static enum store_status
pg_user_delete(struct store *base, int64_t id)
{
	return store_pg_tx(store_pg_from(base), delete_body, &id);
}

struct token_args {
	int64_t user_id;
	const char *token_hash;
	char now[64];
	char *expires;
};

static enum store_status
token_body(struct pg_store *s, void *arg)
{
	struct token_args *a = arg;
	char id[24];
	const char *purge[2] = {id, a->now};
	const char *insert[4] = {id, a->token_hash, a->now, a->expires};
	enum store_status st;

	store_pg_fmt_id(id, a->user_id);
	st = store_pg_exec(s, ST_TOKENS_PURGE, 2, purge, NULL);
	if (st == STORE_OK)
		st = store_pg_exec(s, ST_TOKEN_INSERT, 4, insert, NULL);
	if (st == STORE_OK)
		st = store_pg_exec(s, ST_SET_LAST_LOGIN, 2, purge, NULL);
	return st;
}

static enum store_status
pg_token_create(struct store *base, int64_t user_id, const char *token_hash, long long ttl_s,
    char expires_at[64])
{
	struct token_args a = {.user_id = user_id, .token_hash = token_hash, .expires = expires_at};

	store_time_rfc3339(0, a.now);
	store_time_rfc3339(ttl_s, expires_at);
	return store_pg_tx(store_pg_from(base), token_body, &a);
}

static enum store_status
pg_token_user(struct store *base, const char *token_hash, struct store_user *out)
{
	char now[64];
	const char *params[2] = {token_hash, now};
	PGresult *r = NULL;
	enum store_status st;

	store_time_rfc3339(0, now);
	st = store_pg_run(store_pg_from(base), ST_TOKEN_USER, 2, params, &r);
	if (st == STORE_OK)
		st = PQntuples(r) == 1 ? read_user(r, 0, out, NULL) : STORE_NOT_FOUND;
	PQclear(r);
	return st;
}

static enum store_status
pg_token_revoke(struct store *base, const char *token_hash)
{
	/* One statement is its own transaction. */
	return store_pg_exec(store_pg_from(base), ST_TOKEN_DELETE, 1, &token_hash, NULL);
}

static enum store_status
pg_rate_count(struct store *base, const char *key, long long start, int add, long long *count)
{
	char window[24], n[24];
	const char *params[3] = {key, window, n};
	PGresult *r = NULL;
	enum store_status st;

	store_pg_fmt_id(window, start);
	store_pg_fmt_id(n, add);
	/* One statement is its own transaction; the upsert is atomic. */
	st = store_pg_run(
	    store_pg_from(base), add > 0 ? ST_RATE_HIT : ST_RATE_READ, add > 0 ? 3 : 2, params, &r);
	if (st == STORE_OK && PQntuples(r) == 1)
		*count = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return st;
}

const struct store_ops store_postgres_ops = {
    .scheme = "postgresql:",
    .migrations = store_migrations_postgres,
    .open = pg_open,
    .close = pg_close,
    .applied_version = pg_applied_version,
    .apply = pg_apply,
    .user_keys_taken = pg_user_keys_taken,
    .user_create = pg_user_create,
    .user_get = pg_user_get,
    .user_list = pg_user_list,
    .user_update = pg_user_update,
    .user_delete = pg_user_delete,
    .token_create = pg_token_create,
    .token_user = pg_token_user,
    .token_revoke = pg_token_revoke,
    .invite_create = store_pg_invite_create,
    .invite_list = store_pg_invite_list,
    .invite_resend = store_pg_invite_resend,
    .invite_revoke = store_pg_invite_revoke,
    .invite_accept = store_pg_invite_accept,
    .rate_count = pg_rate_count,
};
