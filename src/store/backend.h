/*
 * The contract between store.c and a backend: a table of operations. A
 * backend's connection struct starts with `struct store` so store.c can
 * dispatch. Private to src/store/.
 */
#ifndef ROSTER_STORE_BACKEND_H
#define ROSTER_STORE_BACKEND_H

#include "store/store.h"

struct store_ops {
	const char *scheme; /* URL prefix, e.g. "sqlite:" */
	const struct store_migration *migrations;
	enum store_status (*open)(const char *url, enum store_open_mode mode, struct store **out);
	void (*close)(struct store *s);
	enum store_status (*applied_version)(struct store *s, int *out);
	/* Applies `m` in its own transaction unless already recorded; `*did` says which. */
	enum store_status (*apply)(struct store *s, const struct store_migration *m, bool *did);
	enum store_status (*user_keys_taken)(
	    struct store *s, const char *username_key, const char *email_key);
	enum store_status (*user_create)(struct store *s, const struct store_new_user *in,
	    struct store_user *out, enum store_invite_why *why);
	enum store_status (*user_get)(struct store *s, const struct store_user_ref *ref,
	    struct store_user *out, char **password_hash);
	enum store_status (*user_list)(struct store *s, struct store_users *out);
	enum store_status (*user_update)(
	    struct store *s, int64_t id, const struct store_user_update *u);
	enum store_status (*user_delete)(struct store *s, int64_t id);
	enum store_status (*token_create)(struct store *s, int64_t user_id, const char *token_hash,
	    long long ttl_s, char expires_at[64]);
	enum store_status (*token_user)(
	    struct store *s, const char *token_hash, struct store_user *out);
	enum store_status (*token_revoke)(struct store *s, const char *token_hash);
	enum store_status (*invite_create)(struct store *s, int64_t inviter_id, const char *email,
	    const char *email_key, const char *token_hash, long long ttl_s,
	    struct store_invitation *out);
	enum store_status (*invite_list)(
	    struct store *s, int64_t inviter_id, struct store_invitations *out);
	enum store_status (*invite_resend)(struct store *s, int64_t id, int64_t inviter_id,
	    const char *token_hash, long long ttl_s, struct store_invitation *out);
	enum store_status (*invite_revoke)(struct store *s, int64_t id, int64_t inviter_id);
	enum store_status (*rate_count)(
	    struct store *s, const char *key, long long window_start, int add, long long *count);
	enum store_status (*invite_accept)(
	    struct store *s, const char *token_hash, int64_t user_id, enum store_invite_why *why);
};

struct store {
	const struct store_ops *ops;
};

/*
 * Now plus `ahead_s` seconds as fixed-width RFC 3339 UTC with microseconds:
 * both backends store and compare times in this one format.
 */
void store_time_rfc3339(long long ahead_s, char out[64]);

/*
 * The account just committed, built from what was written (never re-read: a
 * lost connection after COMMIT must not turn a created account into an error).
 */
enum store_status store_user_from_new(
    const struct store_new_user *in, int64_t id, const char *joined, struct store_user *out);

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_postgres_ops;
extern const struct store_migration store_migrations_sqlite[];
extern const struct store_migration store_migrations_postgres[];

#endif
