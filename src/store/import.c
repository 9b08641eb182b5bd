/*
 * `roster import django`'s writes, written once for both backends: one batch
 * of accounts (with profiles and tokens), removals and invitations per
 * transaction, and the import_rows bookkeeping that makes a second run change
 * only what changed; the read of that bookkeeping and of roster's own
 * accounts, which an import must never overwrite.
 */
#include "store/driver.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static enum store_status
ignore_row(const struct store_row *r, void *arg)
{
	(void)r;
	(void)arg;
	return STORE_OK;
}

static enum store_status
put_user(struct store *s, const struct store_import_user *u, const char *now, const char *until)
{
	struct store_arg row[] = {ARG_I(u->id), ARG_T(u->username), ARG_T(u->username_key),
	    ARG_T(u->email), ARG_T(u->email_key), ARG_T(u->password_hash),
	    ARG_B(u->password_must_reset), ARG_B(u->is_active), ARG_B(u->is_admin),
	    ARG_T(u->date_joined), ARG_T(u->last_login), ARG_T(u->first_name), ARG_T(u->last_name),
	    ARG_B(u->set_password)};
	struct store_arg profile[] = {
	    ARG_I(u->id), ARG_T(u->role), ARG_T(u->bio), ARG_B(u->can_invite_teachers)};
	struct store_arg old[] = {ARG_T(u->old_token_hash)};
	struct store_arg tok[] = {ARG_I(u->id), ARG_T(u->token_hash), ARG_T(now), ARG_T(until)};
	enum store_status st = store_db_exec(s, STMT_IMPORT_USER_UPSERT, row, NARGS(row), NULL);

	if (st == STORE_OK)
		st = store_db_exec(s, STMT_IMPORT_PROFILE_UPSERT, profile, NARGS(profile), NULL);
	if (st == STORE_OK && u->old_token_hash != NULL)
		st = store_db_exec(s, STMT_TOKEN_DELETE, old, NARGS(old), NULL);
	if (st == STORE_OK && u->token_hash != NULL)
		st = store_db_exec(s, STMT_IMPORT_TOKEN, tok, NARGS(tok), NULL);
	return st;
}

static enum store_status
put_invitation(struct store *s, const struct store_import_invitation *i)
{
	struct store_arg row[] = {ARG_I(i->id), ARG_I(i->inviter_id), ARG_T(i->email),
	    ARG_T(i->email_key), ARG_T(i->token_hash), ARG_T(i->status), ARG_T(i->created_at),
	    ARG_T(i->expires_at), ARG_T(i->accepted_at),
	    i->accepted_by > 0 ? ARG_I(i->accepted_by) : ARG_T(NULL)};

	return store_db_exec(s, STMT_IMPORT_INV_UPSERT, row, NARGS(row), NULL);
}

static enum store_status
put_mark(struct store *s, const struct store_import_mark *m, const char *now)
{
	struct store_arg row[] = {
	    ARG_T(m->tbl), ARG_I(m->source_id), ARG_T(m->digest), ARG_T(m->outcome), ARG_T(now)};

	if (m->digest == NULL)
		return store_db_exec(s, STMT_IMPORT_UNMARK, row, 2, NULL);
	return store_db_exec(s, STMT_IMPORT_MARK, row, NARGS(row), NULL);
}

static enum store_status
apply_body(struct store *s, void *arg)
{
	const struct store_import_batch *b = arg;
	char now[64], until[64];
	enum store_status st = STORE_OK;

	store_time_rfc3339(0, now);
	store_time_rfc3339(b->token_ttl_s, until);
	for (size_t i = 0; st == STORE_OK && i < b->n_remove; i++) {
		struct store_arg id[] = {ARG_I(b->remove[i])};

		st = store_db_exec(s, STMT_USER_DELETE, id, 1, NULL);
	}
	for (size_t i = 0; st == STORE_OK && i < b->n_users; i++)
		st = put_user(s, &b->users[i], now, until);
	for (size_t i = 0; st == STORE_OK && i < b->n_invs; i++)
		st = put_invitation(s, &b->invs[i]);
	for (size_t i = 0; st == STORE_OK && i < b->n_marks; i++) {
		const struct store_import_mark *m = &b->marks[i], *n = m + 1;

		if (i + 1 < b->n_marks && m->digest != NULL && n->digest != NULL &&
		    (strcmp(m->tbl, n->tbl) != 0 || m->source_id != n->source_id)) {
			struct store_arg two[] = {ARG_T(m->tbl), ARG_I(m->source_id),
			    ARG_T(m->digest), ARG_T(m->outcome), ARG_T(now), ARG_T(n->tbl),
			    ARG_I(n->source_id), ARG_T(n->digest), ARG_T(n->outcome)};

			st = store_db_exec(s, STMT_IMPORT_MARK2, two, NARGS(two), NULL);
			i++; /* two rows: one round trip instead of two */
		} else {
			st = put_mark(s, m, now);
		}
	}
	if (st == STORE_OK)
		st = store_db_query(s, STMT_IMPORT_SEQUENCES, NULL, 0, ignore_row, NULL);
	return st;
}

enum store_status
store_import_apply(struct store *s, const struct store_import_batch *b)
{
	return store_tx(s, apply_body, (void *)b);
}

struct state_out {
	struct store_import_state *st;
	size_t cap;
};

static enum store_status
row_mark(const struct store_row *r, void *arg)
{
	struct state_out *o = arg;
	struct store_import_row *m;
	const char *tbl = store_col_text(r, 0), *digest = store_col_text(r, 2),
	           *outcome = store_col_text(r, 3);

	o->st->rows = store_grow(o->st->rows, o->st->n_rows, &o->cap, sizeof(*m));
	m = &o->st->rows[o->st->n_rows++];
	memset(m, 0, sizeof(*m));
	snprintf(m->tbl, sizeof(m->tbl), "%s", tbl != NULL ? tbl : "");
	m->source_id = store_col_int(r, 1);
	snprintf(m->digest, sizeof(m->digest), "%s", digest != NULL ? digest : "");
	snprintf(m->outcome, sizeof(m->outcome), "%s", outcome != NULL ? outcome : "");
	return STORE_OK;
}

static enum store_status
row_native(const struct store_row *r, void *arg)
{
	struct state_out *o = arg;
	struct store_native_user *n;

	o->st->native = store_grow(o->st->native, o->st->n_native, &o->cap, sizeof(*n));
	n = &o->st->native[o->st->n_native++];
	n->id = store_col_int(r, 0);
	n->username_key = store_col_dup(r, 1);
	n->email_key = store_col_dup(r, 2);
	return n->username_key != NULL ? STORE_OK : STORE_ERROR;
}

static enum store_status
row_native_inv(const struct store_row *r, void *arg)
{
	struct state_out *o = arg;

	o->st->native_invs =
	    store_grow(o->st->native_invs, o->st->n_native_invs, &o->cap, sizeof(int64_t));
	o->st->native_invs[o->st->n_native_invs++] = store_col_int(r, 0);
	return STORE_OK;
}

static enum store_status
state_body(struct store *s, void *arg)
{
	struct store_import_state *out = arg;
	struct state_out o = {out, 0};
	enum store_status st;

	store_import_state_clear(out); /* a retried transaction starts again */
	st = store_db_query(s, STMT_IMPORT_ROWS, NULL, 0, row_mark, &o);
	o.cap = 0;
	if (st == STORE_OK)
		st = store_db_query(s, STMT_IMPORT_NATIVE, NULL, 0, row_native, &o);
	o.cap = 0;
	if (st == STORE_OK)
		st = store_db_query(s, STMT_IMPORT_NATIVE_INVS, NULL, 0, row_native_inv, &o);
	return st;
}

enum store_status
store_import_state(struct store *s, struct store_import_state *out)
{
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = store_tx(s, state_body, out);
	if (st != STORE_OK)
		store_import_state_clear(out);
	return st;
}

void
store_import_state_clear(struct store_import_state *st)
{
	for (size_t i = 0; i < st->n_native; i++) {
		free(st->native[i].username_key);
		free(st->native[i].email_key);
	}
	free(st->rows);
	free(st->native);
	free(st->native_invs);
	memset(st, 0, sizeof(*st));
}
