/*
 * The store's statements: one enum shared by every backend, and the SQL texts
 * the backends have in common. Each driver's table (store_sqlite_sql[],
 * store_pg_sql[]) is SQL_COMMON plus its own entries, indexed by this enum and
 * checked for length by a static_assert. Parameters are written $1..$n in
 * both dialects (the SQLite driver binds them by name). Private to src/store/.
 */
#ifndef ROSTER_STORE_SQL_H
#define ROSTER_STORE_SQL_H

enum store_stmt {
	/* Each driver's own text. */
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_HAS_MIGRATIONS, /* one row: schema_migrations tables, their compat columns (counts) */
	STMT_MIGRATIONS_TABLE,
	STMT_MIGRATIONS_COMPAT, /* adds the compat column to a table made before it existed */
	STMT_MIGRATION_LOCK,    /* serialises concurrent migrators inside the transaction */
	STMT_USER_BY_ID,        /* USER_COLS: timestamps leave as RFC 3339 text */
	STMT_USER_BY_USERNAME,
	STMT_USER_BY_EMAIL,
	STMT_USER_ALL,
	STMT_TOKEN_USER,
	STMT_INV_BY_ID, /* INV_COLS */
	STMT_INV_LIST,
	STMT_INV_BY_TOKEN_HASH, /* INV_COLS: the invitation a link names (pages) */
	STMT_INTEGRITY,  /* rows of text, "ok" alone when the file is sound (SQLite: quick_check) */
	STMT_RATE_SWEEP, /* janitor batches: PostgreSQL skips rows another instance locked */
	STMT_TOKENS_SWEEP,
	/* SQL_COMMON. */
	STMT_APPLIED_VERSION, /* a table without the compat column (made by an older binary) */
	STMT_APPLIED_COMPAT,  /* highest version and highest compat (NULL counts as its version) */
	STMT_MIGRATION_APPLIED,
	STMT_MIGRATION_RECORD,
	STMT_KEYS_TAKEN,
	STMT_USER_INSERT,
	STMT_PROFILE_INSERT,
	STMT_USER_EXISTS,
	STMT_USER_EMAIL_KEY,
	STMT_SET_BIO,
	STMT_SET_ROLE,
	STMT_SET_CAN_INVITE,
	STMT_SET_ACTIVE,
	STMT_SET_ADMIN,
	STMT_SET_PASSWORD,
	STMT_REHASH,
	STMT_USER_DELETE,
	STMT_TOKEN_INSERT,
	STMT_TOKENS_PURGE,
	STMT_TOKENS_REVOKE_USER,
	STMT_SET_LAST_LOGIN,
	STMT_TOKEN_DELETE,
	STMT_INV_EXPIRE_EMAIL,
	STMT_EMAIL_HAS_ACCOUNT,
	STMT_INV_INSERT,
	STMT_INV_RESEND,
	STMT_INV_REVOKE,
	STMT_INV_BY_TOKEN,
	STMT_INV_ACCEPT,
	STMT_PROFILE_TEACHER,
	STMT_INV_EMAIL_KEY,
	STMT_RATE_HIT,
	STMT_RATE_READ,
	STMT_WRITE_PROBE,
	STMT_RATE_PURGE,
	STMT_SECRET_INSERT,
	STMT_SECRET_READ,
	STMT_USER_CLASHES,
	STMT_FILL_USERS, /* accounts without a confusable key, oldest first */
	STMT_SKELETON_TAKEN,
	STMT_SKELETON_CASED_TAKEN,
	STMT_EMAIL_KEY_TAKEN,
	STMT_SET_SKELETON,
	STMT_SET_SKELETON_CASED,
	STMT_SET_EMAIL_KEY,
	STMT_FILL_INVITES,
	STMT_PENDING_KEY_TAKEN,
	STMT_INV_SET_EMAIL_KEY,
	STMT_COUNT_
};

/* Every driver's table, indexed by enum store_stmt (tests check no entry is NULL). */
extern const char *const store_sqlite_sql[];
extern const char *const store_pg_sql[];

/*
 * Column lists of an account and of an invitation, for the drivers' tables:
 * TS(col) is each driver's RFC 3339 formatting of a timestamp column, and the
 * invitation's status is computed ('expired' once a pending one has run out,
 * `now` being $2).
 */
#define SQL_USER_COLS                                                                              \
	"SELECT u.id, u.username, u.email, " TS("u.date_joined") ", " TS(                          \
	    "u.last_login") ", u.is_active, u.is_admin, p.role, p.bio, p.can_invite_teachers,"     \
	                    " u.password_hash FROM users u JOIN profiles p ON p.user_id = u.id"
#define SQL_INV_COLS                                                                               \
	"SELECT i.id, i.inviter_id, u.username, i.email,"                                          \
	" CASE WHEN i.status = 'pending' AND i.expires_at <= $2 THEN 'expired' ELSE i.status END," \
	" " TS("i.created_at") ", " TS("i.expires_at") ", " TS(                                    \
	    "i.accepted_at") " FROM teacher_invitations i JOIN users u ON u.id = i.inviter_id"

/* The USER_COLS / INV_COLS entries, with the driver's TS(). */
#define SQL_COLS_ENTRIES                                                                           \
	[STMT_USER_BY_ID] = SQL_USER_COLS " WHERE u.id = $1",                                      \
	[STMT_USER_BY_USERNAME] = SQL_USER_COLS " WHERE u.username_key = $1",                      \
	[STMT_USER_BY_EMAIL] = SQL_USER_COLS " WHERE u.email_key = $1",                            \
	[STMT_USER_ALL] = SQL_USER_COLS " ORDER BY u.id",                                          \
	[STMT_TOKEN_USER] = SQL_USER_COLS " JOIN auth_tokens t ON t.user_id = u.id"                \
	                                  " WHERE t.token_hash = $1 AND t.expires_at > $2"         \
	                                  " AND u.is_active",                                      \
	[STMT_INV_BY_ID] = SQL_INV_COLS " WHERE i.id = $1",                                        \
	[STMT_INV_LIST] = SQL_INV_COLS " WHERE CAST($1 AS bigint) = 0 OR i.inviter_id = $1"        \
	                               " ORDER BY i.id DESC LIMIT 1000",                           \
	[STMT_INV_BY_TOKEN_HASH] = SQL_INV_COLS " WHERE i.token_hash = $1"

/* Statements whose text both dialects accept. Times are bound as RFC 3339 text. */
#define SQL_COMMON                                                                                 \
	SQL_COLS_ENTRIES,                                                                          \
	    [STMT_APPLIED_VERSION] = "SELECT coalesce(max(version), 0), coalesce(max(version), 0)" \
	                             " FROM schema_migrations",                                    \
	    [STMT_APPLIED_COMPAT] = "SELECT coalesce(max(version), 0),"                            \
	                            " coalesce(max(coalesce(compat, version)), 0)"                 \
	                            " FROM schema_migrations",                                     \
	    [STMT_MIGRATION_APPLIED] = "SELECT 1 FROM schema_migrations WHERE version = $1",       \
	    [STMT_MIGRATION_RECORD] = "INSERT INTO schema_migrations (version, name, applied_at,"  \
	                              " compat) VALUES ($1, $2, $3, $4)",                          \
	    [STMT_KEYS_TAKEN] = "SELECT EXISTS (SELECT 1 FROM users WHERE username_key = $1"       \
	                        " OR email_key = $1)"                                              \
	                        " OR EXISTS (SELECT 1 FROM users WHERE username_skeleton = $4)"    \
	                        " OR EXISTS (SELECT 1 FROM users"                                  \
	                        " WHERE username_skeleton_cased = $5),"                            \
	                        " EXISTS (SELECT 1 FROM users WHERE email_key = $2"                \
	                        " OR username_key = $3)",                                          \
	    [STMT_USER_INSERT] = "INSERT INTO users (username, username_key, email, email_key,"    \
	                         " password_hash, is_admin, date_joined, username_skeleton,"       \
	                         " username_skeleton_cased)"                                       \
	                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",      \
	    [STMT_PROFILE_INSERT] = "INSERT INTO profiles (user_id, role, bio,"                    \
	                            " can_invite_teachers) VALUES ($1, $2, $3, $4)",               \
	    [STMT_USER_EXISTS] = "SELECT 1 FROM users WHERE id = $1",                              \
	    [STMT_USER_EMAIL_KEY] = "SELECT email_key FROM users WHERE id = $1",                   \
	    [STMT_SET_BIO] = "UPDATE profiles SET bio = $2 WHERE user_id = $1",                    \
	    [STMT_SET_ROLE] = "UPDATE profiles SET role = $2 WHERE user_id = $1",                  \
	    [STMT_SET_CAN_INVITE] = "UPDATE profiles SET can_invite_teachers = $2"                 \
	                            " WHERE user_id = $1",                                         \
	    [STMT_SET_ACTIVE] = "UPDATE users SET is_active = $2 WHERE id = $1",                   \
	    [STMT_SET_ADMIN] = "UPDATE users SET is_admin = $2 WHERE id = $1",                     \
	    [STMT_SET_PASSWORD] = "UPDATE users SET password_hash = $2 WHERE id = $1",             \
	    [STMT_REHASH] = "UPDATE users SET password_hash = $2 WHERE id = $1"                    \
	                    " AND password_hash = $3",                                             \
	    [STMT_USER_DELETE] = "DELETE FROM users WHERE id = $1",                                \
	    [STMT_TOKEN_INSERT] = "INSERT INTO auth_tokens (user_id, token_hash, created_at,"      \
	                          " expires_at) VALUES ($1, $2, $3, $4)",                          \
	    [STMT_TOKENS_PURGE] = "DELETE FROM auth_tokens WHERE user_id = $1"                     \
	                          " AND expires_at <= $2",                                         \
	    [STMT_TOKENS_REVOKE_USER] = "DELETE FROM auth_tokens WHERE user_id = $1",              \
	    [STMT_SET_LAST_LOGIN] = "UPDATE users SET last_login = $2 WHERE id = $1",              \
	    [STMT_TOKEN_DELETE] = "DELETE FROM auth_tokens WHERE token_hash = $1",                 \
	    [STMT_INV_EXPIRE_EMAIL] = "UPDATE teacher_invitations SET status = 'expired'"          \
	                              " WHERE email_key = $1 AND status = 'pending'"               \
	                              " AND expires_at <= $2",                                     \
	    [STMT_EMAIL_HAS_ACCOUNT] = "SELECT EXISTS (SELECT 1 FROM users WHERE email_key = $1)", \
	    [STMT_INV_INSERT] = "INSERT INTO teacher_invitations (inviter_id, email, email_key,"   \
	                        " token_hash, status, created_at, expires_at)"                     \
	                        " VALUES ($1, $2, $3, $4, 'pending', $5, $6) RETURNING id",        \
	    [STMT_INV_RESEND] = "UPDATE teacher_invitations SET token_hash = $2,"                  \
	                        " status = 'pending', expires_at = $3"                             \
	                        " WHERE id = $1 AND status IN ('pending', 'expired')",             \
	    [STMT_INV_REVOKE] = "UPDATE teacher_invitations SET status = 'revoked'"                \
	                        " WHERE id = $1 AND status = 'pending' AND expires_at > $2",       \
	    [STMT_INV_BY_TOKEN] = "SELECT status, expires_at <= $2, email_key"                     \
	                          " FROM teacher_invitations WHERE token_hash = $1",               \
	    [STMT_INV_ACCEPT] = "UPDATE teacher_invitations SET status = 'accepted',"              \
	                        " accepted_at = $3, accepted_by = $2 WHERE token_hash = $1"        \
	                        " AND status = 'pending' AND expires_at > $3 AND email_key = $4",  \
	    [STMT_PROFILE_TEACHER] = "UPDATE profiles SET role = 'teacher',"                       \
	                             " can_invite_teachers = false WHERE user_id = $1",            \
	    [STMT_INV_EMAIL_KEY] = "SELECT email_key FROM teacher_invitations WHERE id = $1",      \
	    [STMT_RATE_HIT] = "INSERT INTO rate_limits AS r (key, window_start, count)"            \
	                      " VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET"               \
	                      " count = CASE WHEN r.window_start = excluded.window_start"          \
	                      " THEN r.count + excluded.count ELSE excluded.count END,"            \
	                      " window_start = excluded.window_start RETURNING count",             \
	    [STMT_RATE_READ] = "SELECT coalesce((SELECT count FROM rate_limits"                    \
	                       " WHERE key = $1 AND window_start = $2), 0)",                       \
	    [STMT_WRITE_PROBE] = "INSERT INTO rate_limits AS r (key, window_start, count)"         \
	                         " VALUES ('roster:write_probe', $1, 0) ON CONFLICT (key)"         \
	                         " DO UPDATE SET window_start = excluded.window_start",            \
	    [STMT_RATE_PURGE] = "DELETE FROM rate_limits WHERE key IN (SELECT key"                 \
	                        " FROM rate_limits WHERE window_start < $1 LIMIT $2)",             \
	    [STMT_SECRET_INSERT] = "INSERT INTO server_secrets (name, value, created_at)"          \
	                           " VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",           \
	    [STMT_SECRET_READ] = "SELECT value FROM server_secrets WHERE name = $1",               \
	    [STMT_USER_CLASHES] = "SELECT u.id, e.id FROM users u JOIN users e"                    \
	                          " ON e.email_key = u.username_key AND e.id <> u.id"              \
	                          " ORDER BY u.id, e.id LIMIT $1",                                 \
	    [STMT_FILL_USERS] =                                                                    \
	        "SELECT id, username, email, email_key, username_skeleton IS NULL,"                \
	        " username_skeleton_cased IS NULL FROM users"                                      \
	        " WHERE username_skeleton IS NULL"                                                 \
	        " OR username_skeleton_cased IS NULL ORDER BY id",                                 \
	    [STMT_SKELETON_TAKEN] = "SELECT 1 FROM users WHERE username_skeleton = $1",            \
	    [STMT_SKELETON_CASED_TAKEN] = "SELECT 1 FROM users"                                    \
	                                  " WHERE username_skeleton_cased = $1",                   \
	    [STMT_EMAIL_KEY_TAKEN] = "SELECT 1 FROM users WHERE email_key = $1",                   \
	    [STMT_SET_SKELETON] = "UPDATE users SET username_skeleton = $2 WHERE id = $1",         \
	    [STMT_SET_SKELETON_CASED] = "UPDATE users SET username_skeleton_cased = $2"            \
	                                " WHERE id = $1",                                          \
	    [STMT_SET_EMAIL_KEY] = "UPDATE users SET email_key = $2 WHERE id = $1",                \
	    [STMT_FILL_INVITES] = "SELECT id, email, email_key FROM teacher_invitations"           \
	                          " WHERE status = 'pending' ORDER BY id",                         \
	    [STMT_PENDING_KEY_TAKEN] = "SELECT 1 FROM teacher_invitations WHERE email_key = $1"    \
	                               " AND status = 'pending'",                                  \
	    [STMT_INV_SET_EMAIL_KEY] = "UPDATE teacher_invitations SET email_key = $2"             \
	                               " WHERE id = $1"

#endif
