/*
 * store: the only database interface. A `struct store` is one connection,
 * used by one thread at a time. Each operation is one transaction, written
 * once (users.c, tokens.c, invites.c, limits.c, migrate.c) over a driver per
 * backend (sqlite.c, postgres.c) that translates driver errors into enum
 * store_status; nothing above this header sees SQL or a driver type.
 */
#ifndef ROSTER_STORE_H
#define ROSTER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RS_MUSTCHECK __attribute__((warn_unused_result))

enum store_status {
	STORE_OK = 0,
	STORE_NOT_FOUND,
	STORE_CONFLICT_USERNAME, /* unique key hit: the caller's problem */
	STORE_CONFLICT_EMAIL,
	STORE_CONFLICT,         /* a conditional update found the row changed */
	STORE_CONFLICT_PENDING, /* an invitation is already pending for that email */
	STORE_BUSY,             /* still locked after retries: 503 */
	STORE_UNAVAILABLE,      /* database unreachable: 503 */
	STORE_ERROR,            /* anything else; already logged */
};

/* A short English name of a status, for logs. */
const char *store_status_str(enum store_status st);

struct store;

enum store_open_mode {
	STORE_OPEN_EXISTING, /* the database must exist (serve, check) */
	STORE_OPEN_CREATE,   /* create it when missing (migrate) */
	/* serve's workers: a handle even while the database is unreachable;
	 * operations answer STORE_UNAVAILABLE and reconnect with backoff. */
	STORE_OPEN_LAZY,
};

/*
 * Opens a connection to `url` ("sqlite:PATH" or "postgresql://...").
 * STORE_UNAVAILABLE when the database cannot be reached (or the SQLite file
 * does not exist), STORE_NOT_FOUND when the PostgreSQL server answered that the
 * database does not exist, STORE_ERROR for a URL no backend takes; `*out` is
 * NULL then. With
 * STORE_OPEN_LAZY a PostgreSQL store is returned even when unreachable: its
 * operations answer STORE_UNAVAILABLE until a reconnect succeeds, attempted
 * at most every 50 ms doubling to 2 s (SQLite: as STORE_OPEN_EXISTING).
 * PostgreSQL URLs get connect_timeout, tcp_user_timeout and TCP keepalives
 * unless they set them.
 */
RS_MUSTCHECK enum store_status store_open(const char *url, enum store_open_mode mode,
    /* OUT: */ struct store **out);

void store_close(struct store *s);

/*
 * The longest one statement may wait for the server's answer (PostgreSQL;
 * default 5000 ms, 0: the default). Past it the connection is dropped and the
 * operation answers STORE_UNAVAILABLE, so a frozen connection costs its
 * thread at most this long.
 */
void store_set_deadline_ms(struct store *s, unsigned ms);

/*
 * For tests: the `n`-th driver call from now (1: the next; 0 disarms) fails
 * with `st` without reaching the database. store_fault_fired says whether
 * it did since it was armed.
 */
void store_fault_after(struct store *s, unsigned n, enum store_status st);
bool store_fault_fired(const struct store *s);

/* True when a backend takes this URL and store_url_problem finds none (configuration time). */
bool store_url_valid(const char *url);

/*
 * True when `url` names a database server (PostgreSQL), whose outage a server
 * rides out; false for a local file, which an outage does not explain.
 */
bool store_url_remote(const char *url);

/*
 * Why `url` cannot be used, as one sentence that never quotes it (it may hold
 * a password), or NULL. PostgreSQL: libpq cannot parse it, or its parse shows
 * an unescaped '@' or '/' of the password in the host, port or database name.
 */
const char *store_url_problem(const char *url);

/*
 * `url` fit for logs. PostgreSQL: rebuilt from libpq's parse of it (user,
 * host, port, database; a password as "***"), never edited as a string; a URL
 * store_url_problem refuses is not shown at all.
 */
void store_url_redacted(const char *url, char *out, size_t size);

/* What to do when `url` cannot be opened, as one sentence for the operator. */
const char *store_open_hint(const char *url);

/*
 * One embedded migration; the generated tables end with a zero version.
 * `compat` comes from the file's `-- roster-compat: N` line: binaries that
 * know schema version N or later can serve the schema this migration leaves
 * (N = version: only binaries that carry it). migrate records it with the
 * version in schema_migrations.
 */
struct store_migration {
	int version;
	const char *name;
	int compat;
	const char *sql;
};

/* Schema state: versions applied and known to this binary. */
struct store_schema {
	int applied;  /* highest applied version, 0 for an empty database */
	int latest;   /* highest version this binary carries */
	int required; /* the highest compat recorded: binaries from this version on can serve it */
};

/*
 * Reads the schema state. Rows recorded before compat versions existed count
 * as needing their own version.
 */
RS_MUSTCHECK enum store_status store_schema(struct store *s, /* OUT: */ struct store_schema *out);

/* What a binary can do with a schema. */
enum store_schema_fit {
	STORE_SCHEMA_CURRENT,      /* applied == latest: serve */
	STORE_SCHEMA_PENDING,      /* behind the binary: `roster migrate` first */
	STORE_SCHEMA_NEWER,        /* a newer binary migrated it, compatibly: serve */
	STORE_SCHEMA_INCOMPATIBLE, /* a newer binary migrated it and this one cannot serve it */
};

enum store_schema_fit store_schema_fit(const struct store_schema *sc);

/* True for the schemas a binary serves: current, or newer and compatible. */
bool store_schema_servable(const struct store_schema *sc);

/*
 * Compiles every statement of the backend's table against the database, as
 * their first use would (serve prepares lazily): STORE_OK, or the failure of
 * the first that does not compile, with its number in `*failed` (logged). For
 * `roster check`: a schema that differs from the binary's shows before serving.
 */
RS_MUSTCHECK enum store_status store_check_statements(struct store *s, /* OUT: */ int *failed);

/*
 * Applies every pending migration, each in its own transaction; safe when
 * several processes migrate at once. `*applied` counts what this call did.
 * A newer compatible schema needs nothing (STORE_OK); an incompatible one is
 * STORE_ERROR, logged. A schema_migrations table made before compat versions
 * gets its compat column here.
 */
RS_MUSTCHECK enum store_status store_migrate(struct store *s, /* OUT: */ int *applied);

/* Why an invitation could not be used (with STORE_CONFLICT). */
enum store_invite_why {
	STORE_INVITE_OK = 0,
	STORE_INVITE_UNKNOWN, /* no invitation has that token */
	STORE_INVITE_EXPIRED,
	STORE_INVITE_USED,
	STORE_INVITE_REVOKED,
	STORE_INVITE_EMAIL_MISMATCH,
};

/* A new account: strings borrowed, all already validated and normalised. */
struct store_new_user {
	const char *username;
	const char *username_key;
	/* Confusable keys (acct_username_skeletons); NULL only in tests. */
	const char *username_skeleton;
	const char *username_skeleton_cased;
	const char *email;
	const char *email_key;
	const char *email_username_key; /* the email keyed as a username; NULL: none */
	const char *password_hash;
	const char *role;
	const char *bio;
	bool can_invite_teachers;
	bool is_admin;
	/* SHA-256 hex of an invitation token to accept in the same transaction
	 * (the account is then a teacher who cannot invite), or NULL. */
	const char *invitation_hash;
	/* A mail queued in the same transaction to the new account (its user_id is set), or NULL.
	 */
	const struct store_mail_new *mail;
};

/* An account with its profile: strings owned, released by store_user_clear. */
struct store_user {
	int64_t id;
	char *username;
	char *email;
	char *date_joined; /* RFC 3339, UTC */
	char *last_login;  /* NULL: never */
	bool is_active;
	bool is_admin;
	char *role;
	char *bio;
	bool can_invite_teachers;
	char *first_name; /* Django's, kept by the import; "" when none */
	char *last_name;
};

void store_user_clear(struct store_user *u);

/*
 * A fast pre-check that saves hashing for keys already taken: STORE_OK when
 * all are free, else STORE_CONFLICT_USERNAME or STORE_CONFLICT_EMAIL (the
 * username first). The username is taken by its key or one of its confusable
 * keys (which may be NULL); a key is taken when any account has it in either
 * role: a username equal to another account's email key, or an email whose
 * username form (`email_username_key`, may be NULL) is another account's
 * username key. Only advisory: store_user_create decides.
 */
RS_MUSTCHECK enum store_status store_user_keys_taken(struct store *s, const char *username_key,
    const char *username_skeleton, const char *username_skeleton_cased, const char *email_key,
    const char *email_username_key);

/*
 * Creates the user and its profile (and accepts the invitation, when given)
 * in ONE transaction. STORE_CONFLICT_USERNAME or STORE_CONFLICT_EMAIL when a
 * key is taken, by the unique indexes (a username confusable with another one
 * is taken) or, across the two roles, as store_user_keys_taken says (checked
 * inside the transaction: no identifier may name two accounts, one by username
 * and one by email); STORE_CONFLICT with `*why` when the invitation cannot be
 * used; nothing is written then. On STORE_OK `*out` holds the account.
 */
RS_MUSTCHECK enum store_status store_user_create(struct store *s, const struct store_new_user *in,
    /* OUT: */ struct store_user *out, enum store_invite_why *why);

/*
 * Gives every account without confusable keys (made before migration 0004,
 * or since by an older binary) its username's skeletons, oldest first, and
 * re-keys its email_key, and those of pending invitations, into the current
 * form (IDNA A-label domain). An account whose skeleton or new email key an
 * older one already holds keeps NULL or its old key: both accounts keep
 * working, and no new look-alike of either can register. `*filled` counts
 * skeletons set, `*kept` those left NULL (each logged).
 * `roster migrate` runs it inside migration 0004; `roster serve` at start.
 */
RS_MUSTCHECK enum store_status store_user_fill_keys(
    struct store *s, /* OUT: */ int *filled, int *kept);

/*
 * How to find one account: by exactly one of its id (> 0), its username_key
 * or its email_key. There is no fallback from one to the other here: a
 * caller that tries both (login) says in which order, and why.
 */
struct store_user_ref {
	int64_t id;
	const char *username_key;
	const char *email_key;
};

/*
 * Reads one account with its profile; STORE_NOT_FOUND when none matches,
 * STORE_ERROR (logged) for a reference with no key or more than one.
 */
RS_MUSTCHECK enum store_status store_user_get(struct store *s, const struct store_user_ref *ref,
    /* OUT: */ struct store_user *out);

/*
 * The stored password hash of an account (for login), owned by the caller.
 * STORE_NOT_FOUND when none matches; inactive accounts are found too.
 */
RS_MUSTCHECK enum store_status store_user_credentials(struct store *s,
    const struct store_user_ref *ref, /* OUT: */ struct store_user *user, char **password_hash);

/* An account whose username key is another account's email key. */
struct store_clash {
	int64_t username_id;
	int64_t email_id;
};

/*
 * Up to `max` accounts whose username is another account's email (imported
 * from Django, or made before roster refused such usernames), by id; `*n`
 * says how many. For `roster check`: login gives such a name to the email's
 * account, and the admin CLI refuses it as a bare USER.
 */
RS_MUSTCHECK enum store_status store_user_clashes(
    struct store *s, size_t max, /* OUT: */ struct store_clash *out, size_t *n);

/* Every account, oldest first; release with store_users_clear. */
struct store_users {
	struct store_user *items;
	size_t n;
};

RS_MUSTCHECK enum store_status store_user_list(struct store *s, /* OUT: */ struct store_users *out);
void store_users_clear(struct store_users *list);

/* Changes to an account: NULL / negative members are left as they are. */
struct store_user_update {
	const char *bio;
	const char *first_name;
	const char *last_name;
	const char *role;
	int is_active; /* -1: unchanged; 0 also revokes every token */
	int is_admin;
	int can_invite_teachers;
	const char *password_hash; /* also revokes every token */
	const char *expect_hash;   /* with password_hash: only if the stored one is this (rehash) */
};

/* Applies `u` in one transaction; STORE_NOT_FOUND, or STORE_CONFLICT when expect_hash differs. */
RS_MUSTCHECK enum store_status store_user_update(
    struct store *s, int64_t id, const struct store_user_update *u);

/* Deletes an account, its profile, tokens and invitations. */
RS_MUSTCHECK enum store_status store_user_delete(struct store *s, int64_t id);

/*
 * Records a login: stores the token's SHA-256 hex, valid `ttl_s` seconds,
 * and sets last_login, in one transaction. `expires_at` gets RFC 3339.
 */
RS_MUSTCHECK enum store_status store_token_create(struct store *s, int64_t user_id,
    const char *token_hash, long long ttl_s, /* OUT: */ char expires_at[64]);

/*
 * The active account (with its profile) holding an unexpired token, in one
 * query: STORE_NOT_FOUND for an unknown, expired or revoked token or an
 * inactive account. `*out` is released with store_user_clear.
 */
RS_MUSTCHECK enum store_status store_token_user(struct store *s, const char *token_hash,
    /* OUT: */ struct store_user *out);

/* Revokes one token (logout). STORE_OK even when it was already gone. */
RS_MUSTCHECK enum store_status store_token_revoke(struct store *s, const char *token_hash);

/* An invitation: strings owned, released by store_invitation_clear. */
struct store_invitation {
	int64_t id;
	int64_t inviter_id;
	char *inviter; /* username */
	char *email;
	char status[16]; /* pending, accepted, expired, revoked (computed) */
	char *created_at;
	char *expires_at;
	char *accepted_at; /* NULL unless accepted */
};

void store_invitation_clear(struct store_invitation *inv);

struct store_invitations {
	struct store_invitation *items;
	size_t n;
};

void store_invitations_clear(struct store_invitations *list);

/*
 * Creates a pending invitation valid `ttl_s` seconds. STORE_CONFLICT_EMAIL
 * when an account has that email; STORE_CONFLICT_PENDING when one is already
 * pending for it (by anyone).
 */
RS_MUSTCHECK enum store_status store_invite_create(struct store *s, int64_t inviter_id,
    const char *email, const char *email_key, const char *token_hash, long long ttl_s,
    /* OUT: */ struct store_invitation *out);

/* Invitations of one inviter (or all when inviter_id is 0), newest first. */
RS_MUSTCHECK enum store_status store_invite_list(struct store *s, int64_t inviter_id,
    /* OUT: */ struct store_invitations *out);

/*
 * New token and expiry for a pending or expired invitation of `inviter_id`
 * (0: any). STORE_NOT_FOUND; STORE_CONFLICT when accepted or revoked;
 * STORE_CONFLICT_PENDING when another invitation is now pending for the email.
 */
RS_MUSTCHECK enum store_status store_invite_resend(struct store *s, int64_t id, int64_t inviter_id,
    const char *token_hash, long long ttl_s,
    /* OUT: */ struct store_invitation *out);

/* Revokes a pending, unexpired invitation of `inviter_id` (0: any): NOT_FOUND or CONFLICT. */
RS_MUSTCHECK enum store_status store_invite_revoke(struct store *s, int64_t id, int64_t inviter_id);

/*
 * Accepts an invitation for the account `user_id`: a conditional update
 * (pending, unexpired, same email_key) checked by affected rows, and the
 * profile becomes teacher without can_invite_teachers, in one transaction.
 * STORE_CONFLICT with `*why` when it cannot be used. STORE_NOT_FOUND when
 * the account `user_id` no longer exists (deleted since its caller
 * authenticated): nothing is written and the invitation stays pending; the
 * caller answers as for an ended session (401), not as for an unknown
 * invitation.
 */
RS_MUSTCHECK enum store_status store_invite_accept(struct store *s, const char *token_hash,
    int64_t user_id, /* OUT: */ enum store_invite_why *why);

/* Pages (src/pages/): what a page shows or ends beside the API's operations. */

/* The invitation whose token has `token_hash` (anyone's), for the page a link opens; reads only. */
RS_MUSTCHECK enum store_status store_invite_by_token(struct store *s, const char *token_hash,
    /* OUT: */ struct store_invitation *out);

/* Revokes every token of the account (log out everywhere). STORE_OK also when it had none. */
RS_MUSTCHECK enum store_status store_tokens_revoke_user(struct store *s, int64_t user_id);

/*
 * A write probe for readiness: one committed upsert of a fixed row (key
 * "roster:write_probe" in rate_limits), so a database that answers reads but
 * refuses writes (a read-only SQLite file, a full disk, a read-only
 * PostgreSQL database or standby) answers STORE_UNAVAILABLE or STORE_BUSY.
 * One row whatever the number of calls; callers bound how often they probe.
 */
RS_MUSTCHECK enum store_status store_write_probe(struct store *s);

/*
 * Reads the whole database for damage (SQLite: PRAGMA quick_check, seconds
 * per GB; PostgreSQL: nothing to do). STORE_OK with `*problem` NULL when
 * sound, or owned text naming the first problem; STORE_UNAVAILABLE when the
 * damage stops the check itself (store_damaged() then says so).
 */
RS_MUSTCHECK enum store_status store_integrity(struct store *s, /* OUT: */ char **problem);

/*
 * True once any connection of this process met a damaged database (SQLite:
 * SQLITE_CORRUPT or SQLITE_NOTADB, "database disk image is malformed";
 * PostgreSQL: SQLSTATE XX001/XX002). Logged once, as "database damaged";
 * it stays set until the process restarts.
 */
bool store_damaged(void);

/*
 * A fixed-window rate-limit counter shared by every instance: the count of
 * `key` in the current window of `window_s` seconds, after adding `add` (0:
 * only read). `*retry_after_s` gets the seconds left in the window.
 */
RS_MUSTCHECK enum store_status store_rate_count(struct store *s, const char *key,
    long long window_s, int add, /* OUT: */ long long *count, long long *retry_after_s);

/*
 * Deletes at most `max` rate-limit counters whose window started more than
 * `age_s` seconds ago (no limit's window may be longer); `*deleted` counts them.
 */
RS_MUSTCHECK enum store_status store_rate_purge(
    struct store *s, long long age_s, int max, /* OUT: */ int64_t *deleted);

/*
 * One janitor batch (api/janitor.c), one short transaction: deletes at most
 * `max` counters whose key starts with `prefix` and whose window of
 * `window_s` seconds ended at least `grace_s` seconds ago. Several processes
 * may sweep at once: a row another one is deleting is skipped (PostgreSQL)
 * or waited for (SQLite's write lock), never an error. `*deleted` counts them.
 */
RS_MUSTCHECK enum store_status store_rate_sweep(struct store *s, const char *prefix,
    long long window_s, long long grace_s, int max, /* OUT: */ int64_t *deleted);

/*
 * One janitor batch: deletes at most `max` login tokens that have expired
 * (logout already deletes its token: there is no revoked row to keep), in one
 * short transaction; `*deleted` counts them.
 */
RS_MUSTCHECK enum store_status store_tokens_sweep(
    struct store *s, int max, /* OUT: */ int64_t *deleted);

#define STORE_SECRET_MAX 128 /* bytes of a stored secret, with its NUL */

/*
 * A secret of this database, shared by every process that uses it: the value
 * stored under `name`, copied into `out`. When there is none yet, `candidate`
 * (NULL: only read, STORE_NOT_FOUND) is stored first, in one transaction; of
 * processes racing to store one, one wins and all read its value.
 */
RS_MUSTCHECK enum store_status store_secret(struct store *s, const char *name,
    const char *candidate, /* OUT: */ char out[STORE_SECRET_MAX]);

/* ---- the audit trail (audit.c; docs/security.md "Audit trail") ----
 *
 * How an operation records its event: the caller arms one event on the
 * connection right before the write operation (store_audit_arm), and the
 * operation's transaction (store_tx) inserts the row just before COMMIT, so
 * the row commits with the change or not at all: an operation that fails
 * and rolls back leaves no row. Every store_tx consumes the armed event,
 * whatever its outcome; a read-only call does not, so arm immediately before
 * the one write it describes. An operation that creates the account (user
 * create) fills user_id itself when the event leaves it 0. Side effects the
 * store performs are recorded by the store in the same transaction with the
 * armed event's actor, ip and request id: `tokens_revoked` (a new password,
 * a deactivation) and `invitation_accepted` (registration with an
 * invitation). roster_audit_events_total{event} counts rows at COMMIT.
 * A later work (mail flows, import) adds no new mechanism: arm one of the
 * events below before its operation, or record it alone (store_audit_record).
 */
enum store_audit_event {
	STORE_AUDIT_REGISTER,            /* register: an account made over HTTP */
	STORE_AUDIT_LOGIN,               /* login: a token issued */
	STORE_AUDIT_LOGIN_FAILED,        /* login_failed: with the failure counter */
	STORE_AUDIT_LOGOUT,              /* logout: the token presented revoked */
	STORE_AUDIT_TOKENS_REVOKED,      /* tokens_revoked: every token of an account */
	STORE_AUDIT_PROFILE_UPDATED,     /* profile_updated: PATCH /users/me/ */
	STORE_AUDIT_INVITATION_CREATED,  /* invitation_created */
	STORE_AUDIT_INVITATION_RESENT,   /* invitation_resent */
	STORE_AUDIT_INVITATION_REVOKED,  /* invitation_revoked */
	STORE_AUDIT_INVITATION_ACCEPTED, /* invitation_accepted */
	STORE_AUDIT_USER_CREATED,        /* user_created: roster user create */
	STORE_AUDIT_USER_UPDATED,        /* user_updated: roster user set */
	STORE_AUDIT_USER_DELETED,        /* user_deleted: roster user delete */
	STORE_AUDIT_PASSWORD_SET,        /* password_set: roster user set-password */
	/* For the lifecycle and import work, recorded once it lands. */
	STORE_AUDIT_EMAIL_VERIFIED,           /* email_verified */
	STORE_AUDIT_PASSWORD_RESET_REQUESTED, /* password_reset_requested */
	STORE_AUDIT_PASSWORD_RESET,           /* password_reset */
	STORE_AUDIT_PASSWORD_CHANGED,         /* password_changed */
	STORE_AUDIT_EMAIL_CHANGE_REQUESTED,   /* email_change_requested */
	STORE_AUDIT_EMAIL_CHANGED,            /* email_changed */
	STORE_AUDIT_IMPORT,                   /* import */
	STORE_AUDIT_COUNT_
};

/* The stored name of an event ("login_failed"); NULL past the last. */
const char *store_audit_event_name(enum store_audit_event e);

/* The event named `name`; false when there is none. */
bool store_audit_event_parse(const char *name, /* OUT: */ enum store_audit_event *out);

/*
 * One event to record; strings borrowed (store_audit_arm copies them). Never
 * a password, token or hash in any of them.
 */
struct store_audit {
	enum store_audit_event event;
	int64_t user_id;        /* the account it is about; 0: none (or the one the op creates) */
	const char *actor;      /* "user:<id>", "anonymous", "cli:<unix user>", "system" */
	const char *ip;         /* the client address; NULL: none (CLI) */
	const char *request_id; /* X-Request-ID; NULL: none (CLI) */
	const char *detail;     /* a small JSON object as text; NULL: {} */
};

/* Arms `a` for the next transaction of `s` (copied; replaces one armed before). */
void store_audit_arm(struct store *s, const struct store_audit *a);

/* Drops an armed event that no transaction consumed. */
void store_audit_disarm(struct store *s);

/* True while an event is armed and no transaction has consumed it. */
bool store_audit_armed(const struct store *s);

/* Records the armed event alone, in a transaction of its own; STORE_OK when none is armed. */
RS_MUSTCHECK enum store_status store_audit_flush(struct store *s);

/* Records `a` alone, in a transaction of its own (an event with no write of its own). */
RS_MUSTCHECK enum store_status store_audit_record(struct store *s, const struct store_audit *a);

/* One row of the trail: strings owned, released by store_audit_rows_clear. */
struct store_audit_row {
	int64_t id;
	char *ts; /* RFC 3339, UTC */
	char *event;
	int64_t user_id; /* 0: none */
	char *actor;
	char *ip;         /* NULL: none */
	char *request_id; /* NULL: none */
	char *detail;     /* JSON text */
};

struct store_audit_rows {
	struct store_audit_row *items;
	size_t n;
};

void store_audit_rows_clear(struct store_audit_rows *rows);

/* What store_audit_list selects: 0 / NULL members do not filter. */
struct store_audit_filter {
	int64_t user_id;
	const char *event;
	long long since; /* seconds since the epoch: rows at or after it; 0: any */
	int limit;       /* rows at most, 1..STORE_AUDIT_LIST_MAX */
};

#define STORE_AUDIT_LIST_MAX 100000

/* The rows `f` selects, newest first. */
RS_MUSTCHECK enum store_status store_audit_list(
    struct store *s, const struct store_audit_filter *f, /* OUT: */ struct store_audit_rows *out);

/*
 * One janitor batch: deletes at most `max` rows older than `age_s` seconds
 * in one short transaction; several processes may sweep at once (PostgreSQL
 * skips rows another one locked; SQLite's write lock serialises). `*deleted`
 * counts them.
 */
RS_MUSTCHECK enum store_status store_audit_sweep(
    struct store *s, long long age_s, int max, /* OUT: */ int64_t *deleted);
/* ---- `roster import django` (issue 13; store/import.c) ---- */

/*
 * One source account as the import writes it, with its profile; strings
 * borrowed. Its id is the Django id. `email_key` NULL: an account without an
 * email (`email` ""). `set_password`: write `password_hash` and
 * `password_must_reset` (a new account, or a password changed in Django since
 * the last run); otherwise the stored ones stay (a login may have rehashed it).
 */
struct store_import_user {
	int64_t id;
	const char *username, *username_key, *email, *email_key, *password_hash;
	bool password_must_reset, set_password;
	bool is_active, is_admin;
	const char *date_joined, *last_login, *first_name, *last_name; /* last_login may be NULL */
	const char *role, *bio;
	bool can_invite_teachers;
	const char *token_hash;     /* SHA-256 hex of the DRF key to add, or NULL */
	const char *old_token_hash; /* a token an earlier run added, to remove first, or NULL */
};

/* One invitation, id kept; strings borrowed (accepted_at NULL, accepted_by 0: none). */
struct store_import_invitation {
	int64_t id, inviter_id, accepted_by;
	const char *email, *email_key, *token_hash, *status;
	const char *created_at, *expires_at, *accepted_at;
};

/* A row of import_rows to write (`digest` NULL: forget the row). */
struct store_import_mark {
	const char *tbl; /* user, password, token, invitation */
	int64_t source_id;
	const char *digest;
	const char *outcome;
};

/*
 * One batch, one transaction: the accounts `remove` (an earlier run's accounts
 * now merged away) deleted, the accounts upserted with their profiles and
 * tokens (valid `token_ttl_s` from now), the invitations upserted, the marks
 * written, and the id sequences moved past the highest id. STORE_OK, or the
 * first failure (nothing of the batch is written then).
 */
struct store_import_batch {
	const int64_t *remove;
	size_t n_remove;
	const struct store_import_user *users;
	size_t n_users;
	const struct store_import_invitation *invs;
	size_t n_invs;
	const struct store_import_mark *marks;
	size_t n_marks;
	long long token_ttl_s;
};

RS_MUSTCHECK enum store_status store_import_apply(
    struct store *s, const struct store_import_batch *b);

/* What a roster database holds of earlier imports, and its own accounts. */
struct store_import_row {
	char tbl[16];
	int64_t source_id;
	char digest[72];
	char outcome[16];
};

struct store_native_user {
	int64_t id;
	char *username_key, *email_key; /* email_key NULL: none */
};

struct store_import_state {
	struct store_import_row *rows; /* by tbl, then source_id */
	size_t n_rows;
	struct store_native_user *native; /* accounts no import made, by id */
	size_t n_native;
	int64_t *native_invs; /* invitations no import made, by id */
	size_t n_native_invs;
};

/* Reads the state in one transaction; release with store_import_state_clear. */
RS_MUSTCHECK enum store_status store_import_state(
    struct store *s, /* OUT: */ struct store_import_state *out);
void store_import_state_clear(struct store_import_state *st);
/* ---- The account lifecycle by email: the outbox and one-time tokens (outbox.c, lifecycle.c) ----
 */

/*
 * A mail to queue in the same transaction as the change that promises it
 * (DESIGN.md I7). It never holds a token: the delivery loop mints one when it
 * sends the mail. Strings borrowed.
 */
struct store_mail_new {
	const char *kind;      /* verify, reset, reset_unknown, password_changed, ... */
	const char *to;        /* NULL: the account's current address */
	int64_t user_id;       /* 0: none (reset_unknown) */
	int64_t invitation_id; /* 0: none */
	const char
	    *payload; /* JSON object text of what the message needs besides the account; NULL: {} */
};

/* A row of the outbox: strings owned, released by store_mail_clear. */
struct store_mail {
	int64_t id;
	char kind[32];
	char status[16]; /* queued, sending, sent, failed */
	char *to;
	int64_t user_id, invitation_id;
	int attempts;
	char *next_attempt_at; /* for `sending`: the lease's end */
	char *last_error;      /* NULL: none */
	char *created_at;
	char *sent_at; /* NULL: not sent */
	char *payload;
};

struct store_mails {
	struct store_mail *items;
	size_t n;
};

void store_mail_clear(struct store_mail *m);
void store_mails_clear(struct store_mails *list);

/* Queues one mail in a transaction of its own; `*id` (may be NULL) its row. */
RS_MUSTCHECK enum store_status store_mail_enqueue(
    struct store *s, const struct store_mail_new *m, /* OUT: */ int64_t *id);

/*
 * Claims at most `max` due mails (queued and due, or `sending` whose lease
 * has run out) for `lease_s` seconds under `claim` (a random name of this
 * claimer), counting an attempt each: one transaction, PostgreSQL skipping
 * rows another instance is claiming, SQLite under its write lock. Nobody else
 * claims them until the lease ends.
 */
RS_MUSTCHECK enum store_status store_mail_claim(struct store *s, int max, long long lease_s,
    const char *claim, /* OUT: */ struct store_mails *out);

enum store_mail_outcome { STORE_MAIL_SENT, STORE_MAIL_RETRY, STORE_MAIL_FAILED };

/*
 * Settles a claimed mail: sent; queued again in `delay_s` seconds keeping
 * `error`; or failed for good with `error`. STORE_CONFLICT when the claim was
 * lost (the lease ran out and another claimer took it).
 */
RS_MUSTCHECK enum store_status store_mail_settle(struct store *s, int64_t id, const char *claim,
    enum store_mail_outcome outcome, long long delay_s, const char *error);

/* Newest first, at most `max`; `status` "" for all ("queued" includes `sending`). */
RS_MUSTCHECK enum store_status store_mail_list(
    struct store *s, const char *status, int max, /* OUT: */ struct store_mails *out);
RS_MUSTCHECK enum store_status store_mail_get(
    struct store *s, int64_t id, /* OUT: */ struct store_mail *out);

/* A failed or queued mail due now (`roster mail retry`): STORE_NOT_FOUND, or STORE_CONFLICT when
 * sent or being sent. */
RS_MUSTCHECK enum store_status store_mail_requeue(struct store *s, int64_t id);

/* Outbox depth by status and the oldest queued mail, for the metrics. */
struct store_mail_stats {
	int64_t queued, sending, sent, failed;
	char oldest_queued[64]; /* RFC 3339; "" when nothing is queued or sending */
};

RS_MUSTCHECK enum store_status store_mail_stats(
    struct store *s, /* OUT: */ struct store_mail_stats *out);

/* Janitor batches: sent (and failed) mails older than `retention_s`; expired one-time tokens and
 * those used a day ago. */
RS_MUSTCHECK enum store_status store_mail_sweep(
    struct store *s, long long retention_s, int max, /* OUT: */ int64_t *deleted);
RS_MUSTCHECK enum store_status store_otk_sweep(
    struct store *s, int max, /* OUT: */ int64_t *deleted);

/* Purposes of one-time tokens. */
#define STORE_OTK_VERIFY       "verify"
#define STORE_OTK_RESET        "reset"
#define STORE_OTK_EMAIL_CHANGE "email_change"
#define STORE_OTK_INVITATION   "invitation"

/*
 * Stores a new one-time token (its SHA-256 hex) for the mail being sent:
 * for an invitation (`invitation_id`), valid as long as the invitation and
 * only while it is pending (STORE_NOT_FOUND otherwise); else for the account
 * `user_id`, valid `ttl_s` seconds, with the new address for an email change.
 */
RS_MUSTCHECK enum store_status store_otk_mint(struct store *s, const char *purpose, int64_t user_id,
    int64_t invitation_id, const char *token_hash, long long ttl_s, const char *new_email,
    const char *new_email_key);

/* Why a one-time token was refused (with STORE_CONFLICT). */
enum store_otk_why { STORE_OTK_OK = 0, STORE_OTK_UNKNOWN, STORE_OTK_EXPIRED, STORE_OTK_USED };

/* Whether a token of `purpose` would be accepted now (reset confirm, before hashing); reads only.
 */
RS_MUSTCHECK enum store_status store_otk_check(struct store *s, const char *purpose,
    const char *token_hash, /* OUT: */ enum store_otk_why *why, int64_t *user_id);

/* Consumes a verification token and marks the account's email verified. */
RS_MUSTCHECK enum store_status store_email_verify(
    struct store *s, const char *token_hash, /* OUT: */ enum store_otk_why *why);

/* Whether the account's email is verified. */
RS_MUSTCHECK enum store_status store_user_email_verified(
    struct store *s, int64_t user_id, /* OUT: */ bool *verified);

/*
 * A reset request in one transaction, the same work for every address: the
 * active account with `email_key` gets a `reset` mail, any other address a
 * `reset_unknown` one (to `email`), never sent unless configured.
 */
RS_MUSTCHECK enum store_status store_reset_request(
    struct store *s, const char *email, const char *email_key);

/*
 * Consumes a reset token: sets `password_hash`, marks the email verified,
 * revokes every login token, uses up every other reset token of the account
 * and queues a `password_changed` notice, in one transaction.
 */
RS_MUSTCHECK enum store_status store_reset_confirm(struct store *s, const char *token_hash,
    const char *password_hash, /* OUT: */ enum store_otk_why *why);

/*
 * A password change by the account itself: the new hash, every other login
 * token revoked (`keep_token_hash` stays), a `password_changed` notice; or
 * STORE_CONFLICT when the stored hash is no longer `expect_hash`.
 */
RS_MUSTCHECK enum store_status store_password_change(struct store *s, int64_t user_id,
    const char *expect_hash, const char *password_hash, const char *keep_token_hash);

/*
 * An email change request: STORE_CONFLICT_EMAIL when an account has the new
 * address now, or another account's username is it (`new_email_username_key`,
 * the address keyed as a username; may be NULL: only imported usernames can
 * be email-shaped); else an `email_change` mail to the new address and an
 * `email_change_notice` to the current one. The address changes at confirm.
 */
RS_MUSTCHECK enum store_status store_email_change_request(struct store *s, int64_t user_id,
    const char *new_email, const char *new_email_key, const char *new_email_username_key);

/*
 * Consumes an email-change token and sets the new address (verified): the
 * unique index decides a race (STORE_CONFLICT_EMAIL, nothing written, the
 * token unused). `*user_id` gets the account.
 */
RS_MUSTCHECK enum store_status store_email_change_confirm(struct store *s, const char *token_hash,
    /* OUT: */ int64_t *user_id, enum store_otk_why *why);

/*
 * store_invite_create and store_invite_resend that also queue the invitation
 * mail (`mail_payload`: JSON object text, e.g. the inviter's name) in the same
 * transaction, and drop the mail tokens minted for it before (a resend
 * replaces the invitation's token: the old links stop working with it). The
 * mail's token, minted when it is sent, is accepted wherever the returned one
 * is (store_invite_accept, registration), by the same conditional update.
 */
RS_MUSTCHECK enum store_status store_invite_create_mailed(struct store *s, int64_t inviter_id,
    const char *email, const char *email_key, const char *token_hash, long long ttl_s,
    const char *mail_payload, /* OUT: */ struct store_invitation *out);
RS_MUSTCHECK enum store_status store_invite_resend_mailed(struct store *s, int64_t id,
    int64_t inviter_id, const char *token_hash, long long ttl_s, const char *mail_payload,
    /* OUT: */ struct store_invitation *out);

#endif
