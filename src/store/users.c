/*
 * Accounts and their profiles, written once for every backend: the key
 * pre-check, create (with an invitation accepted in the same transaction),
 * reads by id, username or email, the list, update and delete, and the fill of
 * confusable keys for accounts that predate them. Uniqueness comes from the
 * unique indexes; the driver maps their names to conflicts.
 */
#include "accounts/acct.h"
#include "log.h"
#include "store/driver.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A USER_COLS row into `struct user_out`: the hash only when `hash` is not NULL. */
struct user_out {
	struct store_user *u;
	char **hash;
};

static enum store_status
read_user(const struct store_row *r, void *arg)
{
	struct user_out *o = arg;
	struct store_user *u = o->u;

	store_user_clear(u);
	u->id = store_col_int(r, 0);
	u->username = store_col_dup(r, 1);
	u->email = store_col_dup(r, 2);
	u->date_joined = store_col_dup(r, 3);
	u->last_login = store_col_dup(r, 4);
	u->is_active = store_col_bool(r, 5);
	u->is_admin = store_col_bool(r, 6);
	u->role = store_col_dup(r, 7);
	u->bio = store_col_dup(r, 8);
	u->can_invite_teachers = store_col_bool(r, 9);
	if (o->hash != NULL) {
		free(*o->hash);
		*o->hash = store_col_dup(r, 10);
	}
	u->first_name = store_col_dup(r, 11);
	u->last_name = store_col_dup(r, 12);
	if (u->username == NULL || u->email == NULL || u->date_joined == NULL || u->role == NULL ||
	    u->bio == NULL || u->first_name == NULL || u->last_name == NULL ||
	    (o->hash != NULL && *o->hash == NULL))
		return STORE_ERROR; /* NOT NULL columns: a schema that is not ours */
	return STORE_OK;
}

enum store_status
store_row_user(const struct store_row *r, void *out)
{
	struct user_out o = {out, NULL};

	return read_user(r, &o);
}

struct keys_out {
	bool username, email;
};

static enum store_status
read_keys(const struct store_row *r, void *arg)
{
	struct keys_out *k = arg;

	k->username = store_col_bool(r, 0);
	k->email = store_col_bool(r, 1);
	return STORE_OK;
}

static enum store_status
keys_taken(struct store *s, const char *username_key, const char *username_skeleton,
    const char *username_skeleton_cased, const char *email_key, const char *email_username_key)
{
	struct store_arg args[] = {ARG_T(username_key), ARG_T(email_key), ARG_T(email_username_key),
	    ARG_T(username_skeleton), ARG_T(username_skeleton_cased)};
	struct keys_out k = {false, false};
	enum store_status st = store_db_one(s, STMT_KEYS_TAKEN, args, NARGS(args), read_keys, &k);

	if (st != STORE_OK)
		return st == STORE_NOT_FOUND ? STORE_ERROR : st;
	return k.username ? STORE_CONFLICT_USERNAME : k.email ? STORE_CONFLICT_EMAIL : STORE_OK;
}

enum store_status
store_user_keys_taken(struct store *s, const char *username_key, const char *username_skeleton,
    const char *username_skeleton_cased, const char *email_key, const char *email_username_key)
{
	return keys_taken(s, username_key, username_skeleton, username_skeleton_cased, email_key,
	    email_username_key);
}

struct create_args {
	const struct store_new_user *in;
	char joined[64];
	int64_t id;
	enum store_invite_why *why;
};

static enum store_status
create_body(struct store *s, void *arg)
{
	struct create_args *a = arg;
	const struct store_new_user *in = a->in;
	struct store_arg user[] = {ARG_T(in->username), ARG_T(in->username_key), ARG_T(in->email),
	    ARG_T(in->email_key), ARG_T(in->password_hash), ARG_B(in->is_admin), ARG_T(a->joined),
	    ARG_T(in->username_skeleton), ARG_T(in->username_skeleton_cased)};
	struct store_arg profile[] = {
	    ARG_I(0), ARG_T(in->role), ARG_T(in->bio), ARG_B(in->can_invite_teachers)};
	/* The unique indexes hold each key within its column; across the two
	 * columns this read decides. No username made by roster is email-shaped
	 * (acct_signup_validate), so no concurrent insert can race it: only rows
	 * imported from elsewhere can hold a key in the other role. */
	enum store_status st = keys_taken(s, in->username_key, in->username_skeleton,
	    in->username_skeleton_cased, in->email_key, in->email_username_key);

	if (st == STORE_OK)
		st = store_db_one(s, STMT_USER_INSERT, user, NARGS(user), store_row_int, &a->id);
	profile[0] = ARG_I(a->id);
	s->audit_new_user = a->id; /* the armed event is about the account made here */
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_PROFILE_INSERT, profile, NARGS(profile), NULL);
	if (st == STORE_OK && in->mail != NULL) { /* I7: the mail commits with the account */
		struct store_mail_new m = *in->mail;

		m.user_id = a->id;
		st = store_mail_enqueue_locked(s, &m, NULL);
	}
	if (st != STORE_OK || in->invitation_hash == NULL)
		return st;
	return store_invite_accept_locked(s, in->invitation_hash, a->id, in->email_key, a->why);
}

/*
 * The account just committed, built from what was written (never re-read: a
 * lost connection after COMMIT must not turn a created account into an error).
 */
static void
user_from_new(
    const struct store_new_user *in, int64_t id, const char *joined, struct store_user *out)
{
	out->id = id;
	out->username = xstrdup(in->username);
	out->email = xstrdup(in->email);
	out->date_joined = xstrdup(joined);
	out->role = xstrdup(in->role);
	out->bio = xstrdup(in->bio != NULL ? in->bio : "");
	out->first_name = xstrdup("");
	out->last_name = xstrdup("");
	out->is_active = true;
	out->is_admin = in->is_admin;
	out->can_invite_teachers = in->can_invite_teachers;
}

enum store_status
store_user_create(struct store *s, const struct store_new_user *in, struct store_user *out,
    enum store_invite_why *why)
{
	struct create_args a = {.in = in, .why = why};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	*why = STORE_INVITE_OK;
	store_time_rfc3339(0, a.joined);
	st = store_tx(s, create_body, &a);
	if (st == STORE_OK)
		user_from_new(in, a.id, a.joined, out);
	return st;
}

/* By exactly one key: an identifier never falls through to another column here. */
static enum store_status
user_get(struct store *s, const struct store_user_ref *ref, struct store_user *out, char **hash)
{
	struct user_out o = {out, hash};
	struct store_arg key[1];
	int keys = (ref->id > 0) + (ref->username_key != NULL) + (ref->email_key != NULL);

	if (keys != 1) {
		log_msg(RS_LOG_ERROR, "store: a user reference with %d keys (exactly 1 expected)",
		    keys);
		return STORE_ERROR;
	}
	if (ref->id > 0) {
		key[0] = ARG_I(ref->id);
		return store_db_one(s, STMT_USER_BY_ID, key, 1, read_user, &o);
	}
	if (ref->username_key != NULL) {
		key[0] = ARG_T(ref->username_key);
		return store_db_one(s, STMT_USER_BY_USERNAME, key, 1, read_user, &o);
	}
	key[0] = ARG_T(ref->email_key);
	return store_db_one(s, STMT_USER_BY_EMAIL, key, 1, read_user, &o);
}

enum store_status
store_user_get(struct store *s, const struct store_user_ref *ref, struct store_user *out)
{
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = user_get(s, ref, out, NULL);
	if (st != STORE_OK)
		store_user_clear(out);
	return st;
}

enum store_status
store_user_credentials(struct store *s, const struct store_user_ref *ref, struct store_user *user,
    char **password_hash)
{
	enum store_status st;

	memset(user, 0, sizeof(*user));
	*password_hash = NULL;
	st = user_get(s, ref, user, password_hash);
	if (st != STORE_OK) {
		store_user_clear(user);
		free(*password_hash);
		*password_hash = NULL;
	}
	return st;
}

struct clash_out {
	struct store_clash *items;
	size_t max, *n;
};

static enum store_status
clash_row(const struct store_row *r, void *arg)
{
	struct clash_out *c = arg;

	if (*c->n < c->max)
		c->items[(*c->n)++] =
		    (struct store_clash){store_col_int(r, 0), store_col_int(r, 1)};
	return STORE_OK;
}

enum store_status
store_user_clashes(struct store *s, size_t max, struct store_clash *out, size_t *n)
{
	struct clash_out c = {out, max, n};
	struct store_arg args[] = {ARG_I((long long)max)};

	*n = 0;
	return store_db_query(s, STMT_USER_CLASHES, args, NARGS(args), clash_row, &c);
}

struct list_out {
	struct store_users *list;
	size_t cap;
};

static enum store_status
list_row(const struct store_row *r, void *arg)
{
	struct list_out *l = arg;
	struct store_users *list = l->list;

	list->items = store_grow(list->items, list->n, &l->cap, sizeof(list->items[0]));
	memset(&list->items[list->n], 0, sizeof(list->items[0]));
	return store_row_user(r, &list->items[list->n++]);
}

enum store_status
store_user_list(struct store *s, struct store_users *out)
{
	struct list_out l = {out, 0};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_db_query(s, STMT_USER_ALL, NULL, 0, list_row, &l);
	if (st != STORE_OK)
		store_users_clear(out);
	return st;
}

static enum store_status
ignore_row(const struct store_row *r, void *arg)
{
	(void)r;
	(void)arg;
	return STORE_OK;
}

struct update_args {
	int64_t id;
	const struct store_user_update *u;
};

/* `$1 = id, $2 = value` for each field that changes. */
static enum store_status
set_field(struct store *s, enum store_stmt id, int64_t user, struct store_arg value)
{
	struct store_arg args[] = {ARG_I(user), value};

	return store_db_exec(s, id, args, NARGS(args), NULL);
}

static enum store_status
update_body(struct store *s, void *arg)
{
	struct update_args *a = arg;
	const struct store_user_update *u = a->u;
	struct store_arg id[] = {ARG_I(a->id)};
	struct store_arg rehash[] = {ARG_I(a->id), ARG_T(u->password_hash), ARG_T(u->expect_hash)};
	enum store_status st = store_db_one(s, STMT_USER_EXISTS, id, 1, ignore_row, NULL);
	int64_t changed = 0;

	if (st == STORE_OK && u->bio != NULL)
		st = set_field(s, STMT_SET_BIO, a->id, ARG_T(u->bio));
	if (st == STORE_OK && u->first_name != NULL)
		st = set_field(s, STMT_SET_FIRST_NAME, a->id, ARG_T(u->first_name));
	if (st == STORE_OK && u->last_name != NULL)
		st = set_field(s, STMT_SET_LAST_NAME, a->id, ARG_T(u->last_name));
	if (st == STORE_OK && u->role != NULL)
		st = set_field(s, STMT_SET_ROLE, a->id, ARG_T(u->role));
	if (st == STORE_OK && u->can_invite_teachers >= 0)
		st = set_field(s, STMT_SET_CAN_INVITE, a->id, ARG_B(u->can_invite_teachers));
	if (st == STORE_OK && u->is_admin >= 0)
		st = set_field(s, STMT_SET_ADMIN, a->id, ARG_B(u->is_admin));
	if (st == STORE_OK && u->is_active >= 0)
		st = set_field(s, STMT_SET_ACTIVE, a->id, ARG_B(u->is_active));
	if (st == STORE_OK && u->password_hash != NULL && u->expect_hash != NULL) {
		st = store_db_exec(s, STMT_REHASH, rehash, NARGS(rehash), &changed);
		if (st == STORE_OK && changed != 1)
			st = STORE_CONFLICT;
	} else if (st == STORE_OK && u->password_hash != NULL) {
		st = set_field(s, STMT_SET_PASSWORD, a->id, ARG_T(u->password_hash));
	}
	/* A new password or a deactivation ends every session. */
	if (st == STORE_OK &&
	    ((u->password_hash != NULL && u->expect_hash == NULL) || u->is_active == 0)) {
		st = store_db_exec(s, STMT_TOKENS_REVOKE_USER, id, 1, &changed);
		if (st == STORE_OK && changed > 0) {
			char detail[64];

			snprintf(detail, sizeof(detail), "{\"count\":%lld,\"why\":\"%s\"}",
			    (long long)changed, u->is_active == 0 ? "deactivated" : "password");
			st = store_audit_side(s, STORE_AUDIT_TOKENS_REVOKED, a->id, detail);
		}
	}
	return st;
}

enum store_status
store_user_update(struct store *s, int64_t id, const struct store_user_update *u)
{
	struct update_args a = {id, u};

	return store_tx(s, update_body, &a);
}

static enum store_status
delete_body(struct store *s, void *arg)
{
	struct store_arg id[] = {ARG_I(*(int64_t *)arg)};
	int64_t changed = 0;
	enum store_status st = store_db_exec(s, STMT_USER_DELETE, id, 1, &changed);

	return st == STORE_OK && changed == 0 ? STORE_NOT_FOUND : st;
}

enum store_status
store_user_delete(struct store *s, int64_t id)
{
	return store_tx(s, delete_body, &id);
}

/* ---- confusable keys and email keys for accounts that predate them ---- */

/* An account, or a pending invitation (no username), to fill. */
struct fill_row {
	int64_t id;
	char *username, *email, *email_key;
	bool need_key, need_cased; /* which skeleton is NULL */
};

struct fill_list {
	struct fill_row *items;
	size_t n, cap;
	bool users; /* STMT_FILL_USERS rows, else STMT_FILL_INVITES */
};

static enum store_status
fill_row(const struct store_row *r, void *arg)
{
	struct fill_list *l = arg;
	struct fill_row *f;
	int col = 1;

	l->items = store_grow(l->items, l->n, &l->cap, sizeof(l->items[0]));
	f = &l->items[l->n++];
	memset(f, 0, sizeof(*f));
	f->id = store_col_int(r, 0);
	if (l->users)
		f->username = store_col_dup(r, col++);
	f->email = store_col_dup(r, col++);
	f->email_key = store_col_dup(r, col++);
	if (l->users) {
		f->need_key = store_col_bool(r, col++);
		f->need_cased = store_col_bool(r, col);
	}
	/* An account imported without an email has no email_key (migration 0009). */
	return (l->users && f->username == NULL) || f->email == NULL ||
	               (!l->users && f->email_key == NULL)
	           ? STORE_ERROR
	           : STORE_OK;
}

static void
fill_list_clear(struct fill_list *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->items[i].username);
		free(l->items[i].email);
		free(l->items[i].email_key);
	}
	free(l->items);
	memset(l, 0, sizeof(*l));
}

/* Whether one row answers `stmt` with `key` as $1. */
static enum store_status
taken(struct store *s, enum store_stmt stmt, const char *key, bool *out)
{
	struct store_arg args[] = {ARG_T(key)};
	enum store_status st = store_db_one(s, stmt, args, 1, ignore_row, NULL);

	*out = st == STORE_OK;
	return st == STORE_NOT_FOUND ? STORE_OK : st;
}

/* The current email_key of a stored address when it differs from `old`; NULL otherwise. */
static char *
new_email_key(const char *email, const char *old)
{
	char *display = NULL, *key = NULL;
	const char *msg;

	if (acct_email_normalize(email, strlen(email), &display, &key, &msg) != ACCT_OK)
		return NULL; /* no longer valid (e.g. not IDNA): keeps its key */
	free(display);
	if (strcmp(key, old) == 0) {
		free(key);
		return NULL;
	}
	return key;
}

/* Sets `stmt` ($1 id, $2 value) unless `taken_stmt` finds `value` held already. */
static enum store_status
set_unless_taken(struct store *s, enum store_stmt taken_stmt, enum store_stmt stmt, int64_t id,
    const char *value, bool *done)
{
	bool held = false;
	enum store_status st = taken(s, taken_stmt, value, &held);

	*done = false;
	if (st != STORE_OK || held)
		return st;
	*done = true;
	return set_field(s, stmt, id, ARG_T(value));
}

/* One skeleton of one account, unless an older account holds it already. */
static enum store_status
fill_skeleton(
    struct store *s, const struct fill_row *f, bool cased, const char *sk, int *filled, int *kept)
{
	bool done = false;
	enum store_status st =
	    set_unless_taken(s, cased ? STMT_SKELETON_CASED_TAKEN : STMT_SKELETON_TAKEN,
	        cased ? STMT_SET_SKELETON_CASED : STMT_SET_SKELETON, f->id, sk, &done);

	if (st == STORE_OK)
		*(done ? filled : kept) += 1;
	if (st == STORE_OK && !done)
		log_msg(RS_LOG_WARNING,
		    "account %lld keeps no confusable key%s: an older account's username looks the "
		    "same; both keep working, no new look-alike of either can register",
		    (long long)f->id, cased ? " (as typed)" : "");
	return st;
}

static enum store_status
fill_user(struct store *s, const struct fill_row *f, int *filled, int *kept)
{
	char *sk = NULL, *cased = NULL,
	     *ek = f->email_key != NULL ? new_email_key(f->email, f->email_key) : NULL;
	enum store_status st = STORE_OK;
	bool done = false;

	if (ek != NULL) {
		st =
		    set_unless_taken(s, STMT_EMAIL_KEY_TAKEN, STMT_SET_EMAIL_KEY, f->id, ek, &done);
		if (st == STORE_OK && !done)
			log_msg(RS_LOG_WARNING,
			    "account %lld keeps its old email key: another account has its new one",
			    (long long)f->id);
	}
	if (st == STORE_OK &&
	    acct_username_skeletons(f->username, strlen(f->username), &sk, &cased) != ACCT_OK) {
		log_msg(
		    RS_LOG_WARNING, "account %lld: its username has no skeleton", (long long)f->id);
		*kept += f->need_key + f->need_cased;
		goto out;
	}
	if (st == STORE_OK && f->need_key)
		st = fill_skeleton(s, f, false, sk, filled, kept);
	if (st == STORE_OK && f->need_cased)
		st = fill_skeleton(s, f, true, cased, filled, kept);
out:
	free(sk);
	free(cased);
	free(ek);
	return st;
}

enum store_status
store_user_fill_keys_locked(struct store *s, int *filled, int *kept)
{
	struct fill_list users = {.users = true}, invs = {.users = false};
	enum store_status st = store_db_query(s, STMT_FILL_USERS, NULL, 0, fill_row, &users);

	*filled = *kept = 0;
	for (size_t i = 0; st == STORE_OK && i < users.n; i++)
		st = fill_user(s, &users.items[i], filled, kept);
	if (st == STORE_OK)
		st = store_db_query(s, STMT_FILL_INVITES, NULL, 0, fill_row, &invs);
	for (size_t i = 0; st == STORE_OK && i < invs.n; i++) {
		char *ek = new_email_key(invs.items[i].email, invs.items[i].email_key);
		bool done;

		if (ek != NULL)
			st = set_unless_taken(s, STMT_PENDING_KEY_TAKEN, STMT_INV_SET_EMAIL_KEY,
			    invs.items[i].id, ek, &done);
		free(ek);
	}
	fill_list_clear(&users);
	fill_list_clear(&invs);
	return st;
}

struct fill_args {
	int filled, kept;
};

static enum store_status
fill_body(struct store *s, void *arg)
{
	struct fill_args *a = arg;

	return store_user_fill_keys_locked(s, &a->filled, &a->kept);
}

enum store_status
store_user_fill_keys(struct store *s, int *filled, int *kept)
{
	struct fill_args a = {0, 0};
	enum store_status st = store_tx(s, fill_body, &a);

	*filled = st == STORE_OK ? a.filled : 0;
	*kept = st == STORE_OK ? a.kept : 0;
	return st;
}
