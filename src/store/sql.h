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
	/* $1 an email key, $2 it as a username key (may be NULL), $3 the account changing. */
	STMT_EMAIL_CHANGE_TAKEN,
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
	/* The audit trail (audit.c): SQL_AUDIT, and each driver's own sweep. */
	STMT_AUDIT_INSERT,
	STMT_AUDIT_LIST,
	STMT_AUDIT_SWEEP,
	/* import (issue 13): names, and `roster import django` (store/import.c). */
	STMT_SET_FIRST_NAME,
	STMT_SET_LAST_NAME,
	STMT_IMPORT_USER_UPSERT, /* each driver's own (PostgreSQL: OVERRIDING SYSTEM VALUE) */
	STMT_IMPORT_INV_UPSERT,  /* each driver's own */
	STMT_IMPORT_SEQUENCES,   /* each driver's own: the id sequences past the highest id */
	STMT_IMPORT_PROFILE_UPSERT,
	STMT_IMPORT_TOKEN,
	STMT_IMPORT_MARK,
	STMT_IMPORT_MARK2, /* two rows in one round trip */
	STMT_IMPORT_UNMARK,
	STMT_IMPORT_ROWS,
	STMT_IMPORT_NATIVE,
	STMT_IMPORT_NATIVE_INVS,
	/* The account lifecycle by email (mail.c, otk.c). Each driver's own: */
	STMT_MAIL_CLAIM, /* PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: BEGIN IMMEDIATE holds the
	                    lock */
	STMT_MAIL_SWEEP,
	STMT_OTK_SWEEP,
	/* SQL_MAIL_COMMON: */
	STMT_MAIL_INSERT,
	STMT_MAIL_SENT,
	STMT_MAIL_RETRY,
	STMT_MAIL_FAIL,
	STMT_MAIL_REQUEUE,
	STMT_MAIL_BY_ID, /* MAIL_COLS */
	STMT_MAIL_LIST,
	STMT_MAIL_STATS,
	STMT_OTK_INSERT,
	STMT_OTK_USE,
	STMT_OTK_STATE,
	STMT_OTK_USE_OTHERS,
	STMT_OTK_DELETE_INV,
	STMT_INV_HASH_OF_MAIL_TOKEN,
	STMT_USER_VERIFIED,
	STMT_SET_VERIFIED,
	STMT_SET_EMAIL,
	STMT_TOKENS_REVOKE_OTHERS,
	STMT_USER_ACTIVE_BY_EMAIL,
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
	                    " u.password_hash, u.first_name, u.last_name"                          \
	                    " FROM users u JOIN profiles p ON p.user_id = u.id"
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

/*
 * `roster import django` (store/import.c). An account's row as the import
 * writes it: $1 id, $2 username, $3 username_key, $4 email, $5 email_key, $6
 * password_hash, $7 password_must_reset, $8 is_active, $9 is_admin, $10
 * date_joined, $11 last_login, $12 first_name, $13 last_name, $14 whether to
 * write the password ($6, $7) over the stored one. A changed username loses its
 * confusable keys until store_user_fill_keys gives them again. PREFIX is each
 * driver's text between the column list and VALUES.
 */
#define SQL_IMPORT_USER_UPSERT(PREFIX)                                                             \
	"INSERT INTO users (id, username, username_key, email, email_key, password_hash,"          \
	" password_must_reset, is_active, is_admin, date_joined, last_login, first_name,"          \
	" last_name) " PREFIX " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"   \
	" ON CONFLICT (id) DO UPDATE SET username = excluded.username,"                            \
	" username_key = excluded.username_key,"                                                   \
	" username_skeleton = CASE WHEN users.username = excluded.username"                        \
	" THEN users.username_skeleton END,"                                                       \
	" username_skeleton_cased = CASE WHEN users.username = excluded.username"                  \
	" THEN users.username_skeleton_cased END,"                                                 \
	" email = excluded.email, email_key = excluded.email_key,"                                 \
	" password_hash = CASE WHEN $14 THEN excluded.password_hash ELSE users.password_hash END," \
	" password_must_reset = CASE WHEN $14 THEN excluded.password_must_reset"                   \
	" ELSE users.password_must_reset END,"                                                     \
	" is_active = excluded.is_active, is_admin = excluded.is_admin,"                           \
	" date_joined = excluded.date_joined, last_login = excluded.last_login,"                   \
	" first_name = excluded.first_name, last_name = excluded.last_name"
#define SQL_IMPORT_INV_UPSERT(PREFIX)                                                              \
	"INSERT INTO teacher_invitations (id, inviter_id, email, email_key, token_hash, status,"   \
	" created_at, expires_at, accepted_at, accepted_by) " PREFIX                               \
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET"         \
	" inviter_id = excluded.inviter_id, email = excluded.email,"                               \
	" email_key = excluded.email_key, token_hash = excluded.token_hash,"                       \
	" status = excluded.status, created_at = excluded.created_at,"                             \
	" expires_at = excluded.expires_at, accepted_at = excluded.accepted_at,"                   \
	" accepted_by = excluded.accepted_by"
#define SQL_IMPORT_COMMON                                                                          \
	[STMT_IMPORT_PROFILE_UPSERT] =                                                             \
	    "INSERT INTO profiles (user_id, role, bio,"                                            \
	    " can_invite_teachers) VALUES ($1, $2, $3, $4)"                                        \
	    " ON CONFLICT (user_id) DO UPDATE SET role = excluded.role,"                           \
	    " bio = excluded.bio,"                                                                 \
	    " can_invite_teachers = excluded.can_invite_teachers",                                 \
	[STMT_IMPORT_TOKEN] = "INSERT INTO auth_tokens (user_id, token_hash, created_at,"          \
	                      " expires_at) VALUES ($1, $2, $3, $4)"                               \
	                      " ON CONFLICT (token_hash) DO NOTHING",                              \
	[STMT_IMPORT_MARK] = "INSERT INTO import_rows (tbl, source_id, digest, outcome,"           \
	                     " imported_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tbl,"         \
	                     " source_id) DO UPDATE SET digest = excluded.digest,"                 \
	                     " outcome = excluded.outcome, imported_at = excluded.imported_at",    \
	[STMT_IMPORT_MARK2] = "INSERT INTO import_rows (tbl, source_id, digest, outcome,"          \
	                      " imported_at) VALUES ($1, $2, $3, $4, $5), ($6, $7, $8, $9, $5)"    \
	                      " ON CONFLICT (tbl, source_id) DO UPDATE SET"                        \
	                      " digest = excluded.digest, outcome = excluded.outcome,"             \
	                      " imported_at = excluded.imported_at",                               \
	[STMT_IMPORT_UNMARK] = "DELETE FROM import_rows WHERE tbl = $1 AND source_id = $2",        \
	[STMT_IMPORT_ROWS] = "SELECT tbl, source_id, digest, outcome FROM import_rows"             \
	                     " ORDER BY tbl, source_id",                                           \
	[STMT_IMPORT_NATIVE] = "SELECT id, username_key, email_key FROM users WHERE id NOT IN"     \
	                       " (SELECT source_id FROM import_rows WHERE tbl = 'user')"           \
	                       " ORDER BY id",                                                     \
	[STMT_IMPORT_NATIVE_INVS] = "SELECT id FROM teacher_invitations WHERE id NOT IN"           \
	                            " (SELECT source_id FROM import_rows"                          \
	                            " WHERE tbl = 'invitation') ORDER BY id"
/* The outbox and one-time tokens (mail.c, otk.c); MAIL_COLS leave times as RFC 3339 text. */
#define SQL_MAIL_COLS                                                                              \
	"SELECT id, kind, to_addr, coalesce(user_id, 0), coalesce(invitation_id, 0), status,"      \
	" attempts, " TS("next_attempt_at") ", last_error, " TS("created_at") ", " TS(             \
	    "sent_at") ", payload FROM mail_outbox"
#define SQL_MAIL_CLAIMED                                                                           \
	" RETURNING id, kind, to_addr, coalesce(user_id, 0), coalesce(invitation_id, 0), status,"  \
	" attempts, " TS("next_attempt_at") ", last_error, " TS("created_at") ", " TS(             \
	    "sent_at") ", payload"
#define SQL_MAIL_CLAIM_WHERE                                                                       \
	"UPDATE mail_outbox SET status = 'sending', attempts = attempts + 1,"                      \
	" next_attempt_at = $2, claim = $3 WHERE id IN (SELECT id FROM mail_outbox"                \
	" WHERE status IN ('queued', 'sending') AND next_attempt_at <= $1"                         \
	" ORDER BY next_attempt_at LIMIT $4"
#define SQL_MAIL_COMMON                                                                            \
	[STMT_MAIL_INSERT] = "INSERT INTO mail_outbox (kind, to_addr, user_id, invitation_id,"     \
	                     " payload, status, next_attempt_at, created_at) VALUES ($1,"          \
	                     " coalesce($2, (SELECT email FROM users WHERE id = $3)), $3, $4, $5," \
	                     " 'queued', $6, $6) RETURNING id",                                    \
	[STMT_MAIL_SENT] = "UPDATE mail_outbox SET status = 'sent', sent_at = $3, claim = NULL,"   \
	                   " last_error = coalesce($4, last_error)"                                \
	                   " WHERE id = $1 AND claim = $2 AND status = 'sending'",                 \
	[STMT_MAIL_RETRY] = "UPDATE mail_outbox SET status = 'queued', next_attempt_at = $3,"      \
	                    " last_error = $4, claim = NULL"                                       \
	                    " WHERE id = $1 AND claim = $2 AND status = 'sending'",                \
	[STMT_MAIL_FAIL] = "UPDATE mail_outbox SET status = 'failed', last_error = $3,"            \
	                   " claim = NULL WHERE id = $1 AND claim = $2 AND status = 'sending'",    \
	[STMT_MAIL_REQUEUE] = "UPDATE mail_outbox SET status = 'queued', next_attempt_at = $2"     \
	                      " WHERE id = $1 AND status IN ('queued', 'failed')",                 \
	[STMT_MAIL_BY_ID] = SQL_MAIL_COLS " WHERE id = $1",                                        \
	[STMT_MAIL_LIST] = SQL_MAIL_COLS " WHERE $1 = '' OR status = $1"                           \
	                                 " OR ($1 = 'queued' AND status = 'sending')"              \
	                                 " ORDER BY id DESC LIMIT $2",                             \
	[STMT_MAIL_STATS] =                                                                        \
	    "SELECT status, count(*), " TS("min(created_at)") " FROM mail_outbox GROUP BY status", \
	[STMT_OTK_INSERT] = "INSERT INTO one_time_tokens (user_id, invitation_id, purpose,"        \
	                    " token_hash, new_email, new_email_key, created_at, expires_at)"       \
	                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",                            \
	[STMT_OTK_USE] = "UPDATE one_time_tokens SET used_at = $3 WHERE token_hash = $1"           \
	                 " AND purpose = $2 AND used_at IS NULL AND expires_at > $3"               \
	                 " RETURNING coalesce(user_id, 0), new_email, new_email_key",              \
	[STMT_OTK_STATE] = "SELECT purpose, used_at IS NOT NULL, expires_at <= $2,"                \
	                   " coalesce(user_id, 0)"                                                 \
	                   " FROM one_time_tokens WHERE token_hash = $1",                          \
	[STMT_OTK_USE_OTHERS] = "UPDATE one_time_tokens SET used_at = $3 WHERE user_id = $1"       \
	                        " AND purpose = $2 AND used_at IS NULL",                           \
	[STMT_OTK_DELETE_INV] = "DELETE FROM one_time_tokens WHERE invitation_id = $1",            \
	[STMT_INV_HASH_OF_MAIL_TOKEN] = "SELECT i.token_hash FROM one_time_tokens o"               \
	                                " JOIN teacher_invitations i ON i.id = o.invitation_id"    \
	                                " WHERE o.token_hash = $1 AND o.purpose = 'invitation'"    \
	                                " AND o.expires_at > $2",                                  \
	[STMT_USER_VERIFIED] = "SELECT email_verified FROM users WHERE id = $1",                   \
	[STMT_SET_VERIFIED] = "UPDATE users SET email_verified = true WHERE id = $1",              \
	[STMT_SET_EMAIL] = "UPDATE users SET email = $2, email_key = $3, email_verified = true"    \
	                   " WHERE id = $1",                                                       \
	[STMT_TOKENS_REVOKE_OTHERS] = "DELETE FROM auth_tokens WHERE user_id = $1"                 \
	                              " AND token_hash <> $2",                                     \
	[STMT_USER_ACTIVE_BY_EMAIL] = "SELECT id FROM users WHERE email_key = $1 AND is_active"

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
	    [STMT_SET_PASSWORD] = "UPDATE users SET password_hash = $2,"                           \
	                          " password_must_reset = false WHERE id = $1",                    \
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
	    [STMT_EMAIL_CHANGE_TAKEN] = "SELECT EXISTS (SELECT 1 FROM users WHERE email_key = $1"  \
	                                " OR (username_key = $2 AND id <> $3))",                   \
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
	                               " WHERE id = $1",                                           \
	    [STMT_SET_FIRST_NAME] = "UPDATE users SET first_name = $2 WHERE id = $1",              \
	    [STMT_SET_LAST_NAME] = "UPDATE users SET last_name = $2 WHERE id = $1",                \
	    SQL_IMPORT_COMMON, SQL_MAIL_COMMON

/*
 * The audit trail's statements both dialects accept (with the driver's TS()):
 * list filters are written so that each parameter's first use gives
 * PostgreSQL its type ($1 user id or 0, $2 event or NULL, $3 since or NULL).
 */
#define SQL_AUDIT                                                                                  \
	[STMT_AUDIT_INSERT] = "INSERT INTO audit_events (ts, event, user_id, actor, ip,"           \
	                      " request_id, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",          \
	[STMT_AUDIT_LIST] = "SELECT a.id, " TS(                                                    \
	    "a.ts") ", a.event, a.user_id, a.actor, a.ip,"                                         \
	            " a.request_id, a.detail FROM audit_events a"                                  \
	            " WHERE (a.user_id = $1 OR $1 = 0) AND (a.event = $2 OR $2 IS NULL)"           \
	            " AND (a.ts >= $3 OR $3 IS NULL) ORDER BY a.ts DESC, a.id DESC"                \
	            " LIMIT $4"

#endif
