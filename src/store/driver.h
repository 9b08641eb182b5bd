/*
 * The contract between the store's operations (users.c, tokens.c, invites.c,
 * limits.c, migrate.c: written once) and a backend driver (sqlite.c,
 * postgres.c): connect, run one statement of enum store_stmt with typed
 * arguments, read its rows, delimit a transaction, classify driver errors.
 * Operations call the driver only through the store_db_* wrappers below,
 * which count calls for fault injection. Private to src/store/.
 */
#ifndef ROSTER_STORE_DRIVER_H
#define ROSTER_STORE_DRIVER_H

#include "store/sql.h"
#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A typed statement argument: $1 is args[0]. */
struct store_arg {
	enum store_arg_type { ARG_TEXT, ARG_INT, ARG_BOOL, ARG_NULL } type;
	const char *text;
	int64_t i; /* ARG_INT; ARG_BOOL: 0 or 1 */
};

#define ARG_T(v) ((struct store_arg){.type = (v) != NULL ? ARG_TEXT : ARG_NULL, .text = (v)})
#define ARG_I(v) ((struct store_arg){.type = ARG_INT, .i = (int64_t)(v)})
#define ARG_B(v) ((struct store_arg){.type = ARG_BOOL, .i = (v) ? 1 : 0})
#define NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* One result row, valid only during the row callback. */
struct store_row {
	const struct store_driver *drv;
	void *res; /* the driver's statement or result */
	int index; /* row number within `res` */
};

typedef enum store_status (*store_row_fn)(const struct store_row *row, void *arg);
typedef enum store_status (*store_tx_body)(struct store *s, void *arg);

struct store_driver {
	const char *scheme; /* URL prefix, e.g. "sqlite:" */
	const struct store_migration *migrations;
	/* Optional: why `url` (with the scheme) is unusable, never quoting it; NULL: usable. */
	const char *(*url_problem)(const char *url);
	/* Optional: `url` fit for logs, built from its parsed parts; NULL: shown as it is. */
	void (*url_redacted)(const char *url, char *out, size_t size);
	/* `url` without the scheme. */
	enum store_status (*open)(const char *url, enum store_open_mode mode, struct store **out);
	void (*close)(struct store *s);
	/* BEGIN; COMMIT; ROLLBACK when a transaction is open (never fails the caller). */
	enum store_status (*begin)(struct store *s);
	enum store_status (*commit)(struct store *s);
	void (*rollback)(struct store *s);
	/* Whether a transaction that failed with `st` is worth running again. */
	bool (*retryable)(struct store *s, enum store_status st);
	/* A statement without result rows (or whose rows are not read); `*changed` may be NULL. */
	enum store_status (*exec)(struct store *s, enum store_stmt id, const struct store_arg *args,
	    int n, int64_t *changed);
	/* A statement calling `fn` once per row; stops at the first non-OK answer of `fn`. */
	enum store_status (*query)(struct store *s, enum store_stmt id,
	    const struct store_arg *args, int n, store_row_fn fn, void *arg);
	/* Compiles statement `id` (as its first use would) without running it. */
	enum store_status (*prepare)(struct store *s, enum store_stmt id);
	/* Several statements of a migration file, no arguments. */
	enum store_status (*script)(struct store *s, const char *sql);
	/* Column getters: text is NULL for SQL NULL and borrowed from the row. */
	const char *(*text)(const struct store_row *r, int col);
	int64_t (*int64)(const struct store_row *r, int col);
	bool (*boolean)(const struct store_row *r, int col);
};

/* A driver's table from its static functions PREFIX_open, PREFIX_close, ... */
#define STORE_DRIVER_FNS(p)                                                                        \
	.open = p##_open, .close = p##_close, .begin = p##_begin, .commit = p##_commit,            \
	.rollback = p##_rollback, .retryable = p##_retryable, .exec = p##_exec,                    \
	.query = p##_query, .prepare = p##_prepare, .script = p##_script, .text = p##_text,        \
	.int64 = p##_int64, .boolean = p##_boolean

/* What every backend's connection struct starts with. */
struct store {
	const struct store_driver *drv;
	unsigned fault_after; /* 0: no fault armed; else the calls left before it fires */
	enum store_status fault_st;
	bool fault_fired;
	unsigned deadline_ms; /* 0: the driver's default */
	/* audit.c: the armed event (owned copies) and what this attempt recorded. */
	struct store_audit_armed {
		bool armed;
		enum store_audit_event event;
		int64_t user_id;
		char *actor, *ip, *request_id, *detail;
	} audit;
	int64_t audit_new_user; /* the account an op made, or whose token it consumed */
	unsigned audit_rows[STORE_AUDIT_COUNT_]; /* rows of the open transaction, by event */
};

extern const struct store_driver store_sqlite_driver;
extern const struct store_driver store_pg_driver;
extern const struct store_migration store_migrations_sqlite[];
extern const struct store_migration store_migrations_postgres[];

/* The driver calls, as operations make them (store.c): each one may be a fault. */
RS_MUSTCHECK enum store_status store_db_exec(struct store *s, enum store_stmt id,
    const struct store_arg *args, int n, /* OUT: */ int64_t *changed);
RS_MUSTCHECK enum store_status store_db_query(struct store *s, enum store_stmt id,
    const struct store_arg *args, int n, store_row_fn fn, void *arg);
RS_MUSTCHECK enum store_status store_db_script(struct store *s, const char *sql);

/*
 * Runs `body` in one transaction: commits when it answers STORE_OK, rolls
 * back otherwise, and runs it again (at most 3 times) while the driver calls
 * the failure retryable. `body` must be safe to run again.
 */
RS_MUSTCHECK enum store_status store_tx(struct store *s, store_tx_body body, void *arg);

/*
 * One statement in a transaction of its own, retried as store_tx retries;
 * `*changed` (may be NULL) the rows it changed.
 */
RS_MUSTCHECK enum store_status store_tx_exec(struct store *s, enum store_stmt id,
    const struct store_arg *args, int n, /* OUT: */ int64_t *changed);

/* A one-row query's row copied by `fn`; STORE_NOT_FOUND without a row. */
RS_MUSTCHECK enum store_status store_db_one(struct store *s, enum store_stmt id,
    const struct store_arg *args, int n, store_row_fn fn, void *arg);

/* Row helpers for operations. */
static inline const char *
store_col_text(const struct store_row *r, int col)
{
	return r->drv->text(r, col);
}

static inline int64_t
store_col_int(const struct store_row *r, int col)
{
	return r->drv->int64(r, col);
}

static inline bool
store_col_bool(const struct store_row *r, int col)
{
	return r->drv->boolean(r, col);
}

/* Room for item `n` of `items` (capacity `*cap`, doubled as needed); returns the array. */
void *store_grow(void *items, size_t n, size_t *cap, size_t size);

/* A text column as an owned copy; NULL for SQL NULL. */
char *store_col_dup(const struct store_row *r, int col);

/* Row callbacks: column 0 as int64_t *, bool * or an owned char ** (must be NULL before). */
enum store_status store_row_int(const struct store_row *r, void *out);
enum store_status store_row_bool(const struct store_row *r, void *out);
enum store_status store_row_dup(const struct store_row *r, void *out);

/*
 * Now plus `ahead_s` seconds as fixed-width RFC 3339 UTC with microseconds:
 * both backends store and compare times in this one format.
 */
void store_time_rfc3339(long long ahead_s, char out[64]);

/* Drivers: the database is damaged (store_damaged); logs `detail` once per process. */
void store_mark_damaged(const char *detail);

/* Row callback: a USER_COLS row into the `struct store_user *` (users.c). */
enum store_status store_row_user(const struct store_row *r, void *out);

/* Inside a transaction: accepts an invitation for the new or existing account (invites.c). */
RS_MUSTCHECK enum store_status store_invite_accept_locked(struct store *s, const char *token_hash,
    int64_t user_id, const char *email_key, /* OUT: */ enum store_invite_why *why);

/*
 * The audit trail inside store_tx (audit.c): a new attempt forgets what the
 * last one recorded; before COMMIT the armed event is inserted; after COMMIT
 * the rows are counted; at the end the armed event is dropped.
 */
void store_audit_tx_begin(struct store *s);
RS_MUSTCHECK enum store_status store_audit_tx_precommit(struct store *s);
void store_audit_tx_committed(struct store *s);

/*
 * Inside a transaction: records a side effect of the operation (`event`
 * about `user_id`, `detail` JSON text or NULL) with the armed event's actor,
 * ip and request id ("system" when none is armed); nothing when the armed
 * event is this same event (it is the operation itself).
 */
RS_MUSTCHECK enum store_status store_audit_side(
    struct store *s, enum store_audit_event event, int64_t user_id, const char *detail);

/* store_user_fill_keys inside the caller's transaction (users.c; migration 0004). */
RS_MUSTCHECK enum store_status store_user_fill_keys_locked(
    struct store *s, /* OUT: */ int *filled, int *kept);

/* Queues a mail inside the caller's transaction (outbox.c); `*id` (may be NULL) its row. */
RS_MUSTCHECK enum store_status store_mail_enqueue_locked(
    struct store *s, const struct store_mail_new *m, /* OUT: */ int64_t *id);

#endif
