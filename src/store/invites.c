/*
 * Teacher invitations, written once for every backend: create, list, resend,
 * revoke, accept. The rules are accounts/invite.c's; what makes acceptance
 * single-use is the conditional UPDATE (pending, unexpired, same email_key)
 * checked by affected rows, and the partial unique index on pending
 * email_key decides races between inviters.
 */
#include "accounts/invite.h"
#include "store/driver.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static_assert((int)ACCT_INVITE_UNKNOWN == (int)STORE_INVITE_UNKNOWN &&
                  (int)ACCT_INVITE_EXPIRED == (int)STORE_INVITE_EXPIRED &&
                  (int)ACCT_INVITE_USED == (int)STORE_INVITE_USED &&
                  (int)ACCT_INVITE_REVOKED == (int)STORE_INVITE_REVOKED &&
                  (int)ACCT_INVITE_EMAIL_MISMATCH == (int)STORE_INVITE_EMAIL_MISMATCH,
    "enum acct_invite_why mirrors enum store_invite_why");

/* The classification row of an invitation: status, expired?, email_key. */
struct state_out {
	const char *email_key; /* the accepting account's */
	enum acct_invite_why why;
};

static enum store_status
read_state(const struct store_row *r, void *arg)
{
	struct state_out *o = arg;
	const char *key = store_col_text(r, 2);

	o->why = acct_invite_check(ACCT_INV_ACCEPT, acct_invite_state_parse(store_col_text(r, 0)),
	    store_col_bool(r, 1), key != NULL && strcmp(key, o->email_key) == 0);
	return STORE_OK;
}

/* The invitation's own token hash when `token_hash` is a live mail token of it; else NULL. */
static enum store_status
mail_token_invitation(struct store *s, const char *token_hash, const char *now, char **out)
{
	struct store_arg args[] = {ARG_T(token_hash), ARG_T(now)};
	enum store_status st =
	    store_db_one(s, STMT_INV_HASH_OF_MAIL_TOKEN, args, NARGS(args), store_row_dup, out);

	return st == STORE_NOT_FOUND ? STORE_OK : st;
}

enum store_status
store_invite_accept_locked(struct store *s, const char *token_hash, int64_t user_id,
    const char *email_key, enum store_invite_why *why)
{
	char now[64];
	struct store_arg accept[] = {
	    ARG_T(token_hash), ARG_I(user_id), ARG_T(now), ARG_T(email_key)};
	struct store_arg profile[] = {ARG_I(user_id)};
	struct state_out o = {email_key, ACCT_INVITE_UNKNOWN};
	int64_t changed = 0;
	char *mailed = NULL;
	enum store_status st;

	store_time_rfc3339(0, now);
	/* A token minted for the invitation's mail stands for the invitation's own
	 * token: the same conditional update decides, so it is accepted once. */
	st = mail_token_invitation(s, token_hash, now, &mailed);
	if (st != STORE_OK)
		return st;
	if (mailed != NULL)
		accept[0] = ARG_T(mailed);
	st = store_db_exec(s, STMT_INV_ACCEPT, accept, NARGS(accept), &changed);
	if (st == STORE_OK && changed == 1)
		st = store_db_exec(s, STMT_PROFILE_TEACHER, profile, 1, NULL);
	if (st == STORE_OK && changed == 1) /* recorded here when registration accepts it */
		st = store_audit_side(s, STORE_AUDIT_INVITATION_ACCEPTED, user_id, NULL);
	if (st != STORE_OK || changed == 1) {
		free(mailed);
		return st;
	}
	/* Refused: say why, read in the same transaction ($1 token, $2 now). */
	accept[1] = ARG_T(now);
	st = store_db_one(s, STMT_INV_BY_TOKEN, accept, 2, read_state, &o);
	free(mailed);
	if (st != STORE_OK && st != STORE_NOT_FOUND)
		return st;
	/* Allowed yet not updated cannot happen inside one transaction: unknown. */
	*why = o.why != ACCT_INVITE_OK ? (enum store_invite_why)o.why : STORE_INVITE_UNKNOWN;
	return STORE_CONFLICT;
}

/* An INV_COLS row into the `struct store_invitation *`. */
static enum store_status
read_invite(const struct store_row *r, void *arg)
{
	struct store_invitation *inv = arg;
	const char *status = store_col_text(r, 4);

	store_invitation_clear(inv);
	inv->id = store_col_int(r, 0);
	inv->inviter_id = store_col_int(r, 1);
	inv->inviter = store_col_dup(r, 2);
	inv->email = store_col_dup(r, 3);
	snprintf(inv->status, sizeof(inv->status), "%s", status != NULL ? status : "");
	inv->created_at = store_col_dup(r, 5);
	inv->expires_at = store_col_dup(r, 6);
	inv->accepted_at = store_col_dup(r, 7);
	if (inv->inviter == NULL || inv->email == NULL || inv->created_at == NULL ||
	    inv->expires_at == NULL)
		return STORE_ERROR;
	return STORE_OK;
}

/* One invitation of `inviter_id` (0: anyone's); someone else's does not exist. */
static enum store_status
invite_get(struct store *s, int64_t id, int64_t inviter_id, struct store_invitation *out)
{
	char now[64];
	struct store_arg args[] = {ARG_I(id), ARG_T(now)};
	enum store_status st;

	store_time_rfc3339(0, now);
	st = store_db_one(s, STMT_INV_BY_ID, args, NARGS(args), read_invite, out);
	if (st == STORE_OK && inviter_id != 0 && out->inviter_id != inviter_id)
		st = STORE_NOT_FOUND;
	if (st != STORE_OK)
		store_invitation_clear(out);
	return st;
}

/* Marks a pending invitation for the email that has run out as expired, so the
 * partial unique index only ever holds live ones. */
static enum store_status
expire_for_email(struct store *s, const char *email_key, const char *now)
{
	struct store_arg args[] = {ARG_T(email_key), ARG_T(now)};

	return store_db_exec(s, STMT_INV_EXPIRE_EMAIL, args, NARGS(args), NULL);
}

struct invite_args {
	int64_t id;
	int64_t inviter_id;
	const char *email;
	const char *email_key;
	const char *token_hash;
	long long ttl_s;
	struct store_invitation *out;
	const char *mail_payload; /* NULL: no invitation mail */
};

/* The invitation mail of invitation `id`, in the caller's transaction; its older mail tokens go. */
static enum store_status
queue_mail(struct store *s, const struct invite_args *a, const struct store_invitation *inv_row)
{
	struct store_arg inv[] = {ARG_I(inv_row->id)};
	/* The inviter is the mail's account: the loop names them in the mail. */
	struct store_mail_new m = {.kind = "invitation",
	    .to = inv_row->email,
	    .user_id = inv_row->inviter_id,
	    .invitation_id = inv_row->id,
	    .payload = a->mail_payload};
	enum store_status st;

	if (a->mail_payload == NULL)
		return STORE_OK;
	st = store_db_exec(s, STMT_OTK_DELETE_INV, inv, 1, NULL);
	return st == STORE_OK ? store_mail_enqueue_locked(s, &m, NULL) : st;
}

static enum store_status
create_body(struct store *s, void *arg)
{
	struct invite_args *a = arg;
	char now[64], expires[64];
	struct store_arg key[] = {ARG_T(a->email_key)};
	struct store_arg ins[] = {ARG_I(a->inviter_id), ARG_T(a->email), ARG_T(a->email_key),
	    ARG_T(a->token_hash), ARG_T(now), ARG_T(expires)};
	bool taken = false;
	int64_t id = 0;
	enum store_status st;

	store_time_rfc3339(0, now);
	store_time_rfc3339(a->ttl_s, expires);
	st = store_db_one(s, STMT_EMAIL_HAS_ACCOUNT, key, 1, store_row_bool, &taken);
	if (st == STORE_OK && taken)
		return STORE_CONFLICT_EMAIL;
	if (st == STORE_OK)
		st = expire_for_email(s, a->email_key, now);
	if (st == STORE_OK)
		st = store_db_one(s, STMT_INV_INSERT, ins, NARGS(ins), store_row_int, &id);
	if (st == STORE_OK)
		st = invite_get(s, id, 0, a->out);
	return st == STORE_OK ? queue_mail(s, a, a->out) : st;
}

enum store_status
store_invite_create(struct store *s, int64_t inviter_id, const char *email, const char *email_key,
    const char *token_hash, long long ttl_s, struct store_invitation *out)
{
	return store_invite_create_mailed(
	    s, inviter_id, email, email_key, token_hash, ttl_s, NULL, out);
}

enum store_status
store_invite_create_mailed(struct store *s, int64_t inviter_id, const char *email,
    const char *email_key, const char *token_hash, long long ttl_s, const char *mail_payload,
    struct store_invitation *out)
{
	struct invite_args a = {
	    0, inviter_id, email, email_key, token_hash, ttl_s, out, mail_payload};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_tx(s, create_body, &a);
	if (st != STORE_OK)
		store_invitation_clear(out);
	return st;
}

struct list_out {
	struct store_invitations *list;
	size_t cap;
};

static enum store_status
list_row(const struct store_row *r, void *arg)
{
	struct list_out *l = arg;
	struct store_invitations *list = l->list;

	list->items = store_grow(list->items, list->n, &l->cap, sizeof(list->items[0]));
	memset(&list->items[list->n], 0, sizeof(list->items[0]));
	return read_invite(r, &list->items[list->n++]);
}

enum store_status
store_invite_list(struct store *s, int64_t inviter_id, struct store_invitations *out)
{
	char now[64];
	struct store_arg args[] = {ARG_I(inviter_id), ARG_T(now)};
	struct list_out l = {out, 0};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	store_time_rfc3339(0, now);
	st = store_db_query(s, STMT_INV_LIST, args, NARGS(args), list_row, &l);
	if (st != STORE_OK)
		store_invitations_clear(out);
	return st;
}

enum store_status
store_invite_by_token(struct store *s, const char *token_hash, struct store_invitation *out)
{
	char now[64];
	struct store_arg args[] = {ARG_T(token_hash), ARG_T(now)};
	char *mailed = NULL;
	enum store_status st;

	memset(out, 0, sizeof(*out));
	store_time_rfc3339(0, now);
	/* A link's token minted for the invitation's mail names the invitation as its own does. */
	st = mail_token_invitation(s, token_hash, now, &mailed);
	if (st == STORE_OK && mailed != NULL)
		args[0] = ARG_T(mailed);
	if (st == STORE_OK)
		st = store_db_one(s, STMT_INV_BY_TOKEN_HASH, args, NARGS(args), read_invite, out);
	free(mailed);
	if (st != STORE_OK)
		store_invitation_clear(out);
	return st;
}

/* Reads the invitation `a->id` of `a->inviter_id` and asks accounts/invite.c about `action`. */
static enum store_status
check_action(struct store *s, const struct invite_args *a, enum acct_invite_action action)
{
	struct store_invitation cur = {0};
	enum store_status st = invite_get(s, a->id, a->inviter_id, &cur);

	/* The computed status: a pending one past its expiry reads "expired". */
	if (st == STORE_OK && acct_invite_check(action, acct_invite_state_parse(cur.status), false,
	                          true) != ACCT_INVITE_OK)
		st = STORE_CONFLICT;
	store_invitation_clear(&cur);
	return st;
}

static enum store_status
resend_body(struct store *s, void *arg)
{
	struct invite_args *a = arg;
	char now[64], expires[64], *key = NULL;
	struct store_arg id[] = {ARG_I(a->id)};
	struct store_arg resend[] = {ARG_I(a->id), ARG_T(a->token_hash), ARG_T(expires)};
	enum store_status st = check_action(s, a, ACCT_INV_RESEND);

	store_time_rfc3339(0, now);
	store_time_rfc3339(a->ttl_s, expires);
	/* A stale pending twin of the email gives up its slot to the resent one. */
	if (st == STORE_OK)
		st = store_db_one(s, STMT_INV_EMAIL_KEY, id, 1, store_row_dup, &key);
	if (st == STORE_OK)
		st = expire_for_email(s, key, now);
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_INV_RESEND, resend, NARGS(resend), NULL);
	if (st == STORE_OK)
		st = invite_get(s, a->id, 0, a->out);
	if (st == STORE_OK)
		st = queue_mail(s, a, a->out);
	free(key);
	return st;
}

enum store_status
store_invite_resend(struct store *s, int64_t id, int64_t inviter_id, const char *token_hash,
    long long ttl_s, struct store_invitation *out)
{
	return store_invite_resend_mailed(s, id, inviter_id, token_hash, ttl_s, NULL, out);
}

enum store_status
store_invite_resend_mailed(struct store *s, int64_t id, int64_t inviter_id, const char *token_hash,
    long long ttl_s, const char *mail_payload, struct store_invitation *out)
{
	struct invite_args a = {id, inviter_id, NULL, NULL, token_hash, ttl_s, out, mail_payload};
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_tx(s, resend_body, &a);
	if (st != STORE_OK)
		store_invitation_clear(out);
	return st;
}

static enum store_status
revoke_body(struct store *s, void *arg)
{
	struct invite_args *a = arg;
	char now[64];
	struct store_arg args[] = {ARG_I(a->id), ARG_T(now)};
	enum store_status st = check_action(s, a, ACCT_INV_REVOKE);
	int64_t changed = 0;

	store_time_rfc3339(0, now);
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_INV_REVOKE, args, NARGS(args), &changed);
	return st == STORE_OK && changed != 1 ? STORE_CONFLICT : st;
}

enum store_status
store_invite_revoke(struct store *s, int64_t id, int64_t inviter_id)
{
	struct invite_args a = {.id = id, .inviter_id = inviter_id};

	return store_tx(s, revoke_body, &a);
}

struct accept_args {
	const char *token_hash;
	int64_t user_id;
	enum store_invite_why *why;
};

static enum store_status
accept_body(struct store *s, void *arg)
{
	struct accept_args *a = arg;
	struct store_arg id[] = {ARG_I(a->user_id)};
	char *key = NULL;
	enum store_status st = store_db_one(s, STMT_USER_EMAIL_KEY, id, 1, store_row_dup, &key);

	/* STORE_NOT_FOUND: the account was deleted meanwhile (store.h). */
	if (st == STORE_OK)
		st = store_invite_accept_locked(s, a->token_hash, a->user_id, key, a->why);
	free(key);
	return st;
}

enum store_status
store_invite_accept(
    struct store *s, const char *token_hash, int64_t user_id, enum store_invite_why *why)
{
	struct accept_args a = {token_hash, user_id, why};

	*why = STORE_INVITE_OK;
	return store_tx(s, accept_body, &a);
}
