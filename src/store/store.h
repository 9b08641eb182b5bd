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

#endif
