/*
 * store: the only database interface. A `struct store` is one connection,
 * used by one thread at a time. Each operation is one transaction. Backends
 * (sqlite.c; postgres.c later) translate driver errors into enum store_status;
 * nothing above this header sees SQL or a driver type.
 */
#ifndef ROSTER_STORE_H
#define ROSTER_STORE_H

#include <stdbool.h>
#include <stdint.h>

#define RS_MUSTCHECK __attribute__((warn_unused_result))

enum store_status {
	STORE_OK = 0,
	STORE_NOT_FOUND,
	STORE_CONFLICT_USERNAME,	/* unique key hit: the caller's problem */
	STORE_CONFLICT_EMAIL,
	STORE_CONFLICT,		/* a conditional update found the row changed */
	STORE_BUSY,		/* still locked after retries: 503 */
	STORE_UNAVAILABLE,	/* database unreachable: 503 */
	STORE_ERROR,		/* anything else; already logged */
};

/* A short English name of a status, for logs. */
const char *store_status_str(enum store_status st);

struct store;

enum store_open_mode {
	STORE_OPEN_EXISTING,	/* the database must exist (serve, check) */
	STORE_OPEN_CREATE,	/* create it when missing (migrate) */
};

/*
 * Opens a connection to `url` ("sqlite:PATH"; "postgresql://..." later).
 * STORE_UNAVAILABLE when the database cannot be reached or does not exist,
 * STORE_ERROR for a URL no backend takes; `*out` is NULL then.
 */
RS_MUSTCHECK enum store_status store_open(const char *url, enum store_open_mode mode,
    /* OUT: */ struct store **out);

void store_close(struct store *s);

/* True when a backend takes this URL (checked at configuration time). */
bool store_url_valid(const char *url);

/* A cheap round trip: STORE_OK when the database answers. */
RS_MUSTCHECK enum store_status store_ping(struct store *s);

/* One embedded migration; the generated tables end with a zero version. */
struct store_migration {
	int version;
	const char *name;
	const char *sql;
};

/* Schema state: versions applied and known to this binary. */
struct store_schema {
	int applied;	/* highest applied version, 0 for an empty database */
	int latest;	/* highest version this binary carries */
};

RS_MUSTCHECK enum store_status store_schema(struct store *s, /* OUT: */ struct store_schema *out);

/*
 * Applies every pending migration, each in its own transaction; safe when
 * several processes migrate at once. `*applied` counts what this call did.
 */
RS_MUSTCHECK enum store_status store_migrate(struct store *s, /* OUT: */ int *applied);

/* A new account: strings borrowed, all already validated and normalised. */
struct store_new_user {
	const char *username;
	const char *username_key;
	const char *email;
	const char *email_key;
	const char *password_hash;
	const char *role;
	const char *bio;
	bool can_invite_teachers;
	bool is_admin;
};

/* An account as read back: strings owned, released by store_user_clear. */
struct store_user {
	int64_t id;
	char *username;
	char *email;
	char *role;
	char *date_joined;	/* RFC 3339, UTC */
};

void store_user_clear(struct store_user *u);

/*
 * A fast pre-check that saves hashing for keys already taken: STORE_OK when
 * both are free, else STORE_CONFLICT_USERNAME or STORE_CONFLICT_EMAIL (the
 * username first). Only advisory: uniqueness is enforced by store_user_create.
 */
RS_MUSTCHECK enum store_status store_user_keys_taken(struct store *s, const char *username_key,
    const char *email_key);

/*
 * Creates the user and its profile in ONE transaction. STORE_CONFLICT_USERNAME
 * or STORE_CONFLICT_EMAIL when a unique key is taken (nothing written). On
 * STORE_OK `*out` holds the new account.
 */
RS_MUSTCHECK enum store_status store_user_create(struct store *s, const struct store_new_user *in,
    /* OUT: */ struct store_user *out);

#endif
