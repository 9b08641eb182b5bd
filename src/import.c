/*
 * `roster import django` (issue 13): reads the whole Django database
 * (store/django.h), plans every row in memory with roster's own rules
 * (src/accounts/: keys, emails), then writes the plan in batches of one
 * transaction each (store_import_apply). Invariants:
 *  1. Every source row ends in exactly one outcome: imported, merged (with its
 *     winner) or refused (with a reason), and the report says which.
 *  2. Nothing is written when the target holds accounts or invitations of its
 *     own under ids the source uses, with --dry-run, or with --on-duplicate fail
 *     and a duplicate group.
 *  3. import_rows keeps a digest of each row written, so a second run writes
 *     only what changed in Django since, and a run interrupted between batches
 *     is completed by the next one.
 */
#include "import.h"
#include "cli.h"
#include "config.h"
#include "accounts/acct.h"
#include "crypto/rcrypto.h"
#include "log.h"
#include "store/django.h"
#include "store/store.h"
#include "xmalloc.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH     1000 /* accounts (or invitations) per transaction at most: --batch */
#define NOTES_MAX 8
#define MARKS_MAX (3 * BATCH) /* import_rows writes per transaction: 3 per account at most */

enum outcome { OUT_IMPORTED, OUT_MERGED, OUT_REFUSED };
enum action { ACT_NONE, ACT_CREATE, ACT_UPDATE, ACT_UNCHANGED, ACT_REMOVE };

static const char *const outcome_names[] = {"imported", "merged", "refused"};
static const char *const action_names[] = {"none", "created", "updated", "unchanged", "removed"};

struct plan_user {
	const struct dj_user *src;
	char *username_key, *email, *email_key; /* email "" and key NULL: none */
	const char *password_hash, *role;
	bool must_reset, is_admin;
	enum outcome outcome;
	int64_t winner;     /* OUT_MERGED */
	const char *reason; /* OUT_REFUSED, static */
	const char *notes[NOTES_MAX];
	size_t n_notes;
	char digest[65], pw_digest[65], token_hash[65];
	enum action action;
	bool set_password, token_changed, mark_changed;
	const char *old_token; /* borrowed from the state */
	int group;             /* index into groups, -1: none */
};

struct plan_inv {
	const struct dj_invitation *src;
	enum outcome outcome;
	const char *reason, *status, *note;
	char *email, *email_key;
	int64_t inviter, accepted_by;
	char token_hash[65], digest[65];
	enum action action;
};

struct group {
	size_t *members; /* indexes into users, by id */
	size_t n;
	size_t winner;
	char *key; /* a key the members share (for the summary) */
};

struct plan {
	const struct config *cfg;
	struct dj_source src;
	struct store_import_state state;
	struct plan_user *users;
	struct plan_inv *invs;
	struct group *groups;
	size_t n_groups;
	int policy; /* 0 most-recent-login, 1 oldest, 2 fail */
};

static int __attribute__((format(printf, 2, 3))) fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("roster: import: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static void
note(struct plan_user *u, const char *n)
{
	if (u->n_notes < NOTES_MAX)
		u->notes[u->n_notes++] = n;
}

/* SHA-256 hex of the fields joined by 0x1f (NULL as 0x1e). */
static void
digest_of(char out[65], size_t n, const char *const *fields)
{
	size_t len = 0;
	char *buf, *p;

	for (size_t i = 0; i < n; i++)
		len += (fields[i] != NULL ? strlen(fields[i]) : 1) + 1;
	p = buf = xmalloc(len + 1);
	for (size_t i = 0; i < n; i++) {
		size_t l = fields[i] != NULL ? strlen(fields[i]) : 1;

		memcpy(p, fields[i] != NULL ? fields[i] : "\x1e", l);
		p += l;
		*p++ = '\x1f';
	}
	rcrypto_sha256_hex(buf, len, out);
	free(buf);
}

static int
mark_cmp(const void *a, const void *b)
{
	const struct store_import_row *x = a, *y = b;
	int c = strcmp(x->tbl, y->tbl);

	return c != 0 ? c : (x->source_id > y->source_id) - (x->source_id < y->source_id);
}

static const struct store_import_row *
mark(const struct plan *p, const char *tbl, int64_t id)
{
	struct store_import_row key;

	memset(&key, 0, sizeof(key));
	snprintf(key.tbl, sizeof(key.tbl), "%s", tbl);
	key.source_id = id;
	if (p->state.n_rows == 0) /* rows is NULL then, which bsearch may not take */
		return NULL;
	return bsearch(&key, p->state.rows, p->state.n_rows, sizeof(key), mark_cmp);
}

/* ---- one account ---- */

static void
plan_password(struct plan_user *u)
{
	static const char *const kept[] = {
	    "pbkdf2_sha256$", "pbkdf2_sha1$", "argon2$", "bcrypt_sha256$", "bcrypt$"};
	const char *pw = u->src->password;

	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (strncmp(pw, kept[i], strlen(kept[i])) == 0) {
			u->password_hash = pw;
			return;
		}
	/* Unusable ("!..."), or a hasher roster will not verify (unsalted MD5/SHA1,
	 * crypt): the weak hash is not kept; the account must reset its password. */
	u->password_hash = "!";
	u->must_reset = true;
	note(
	    u, pw[0] == '!' || pw[0] == '\0' ? "password_unusable" : "password_hasher_unsupported");
}

static void
plan_profile(struct plan *p, struct plan_user *u)
{
	const struct dj_user *s = u->src;

	u->is_admin = s->is_superuser;
	if (s->is_superuser)
		note(u, "superuser_admin");
	else if (s->is_staff)
		note(u, "staff_not_admin");
	if (!s->has_profile) {
		u->role = "explorer";
		note(u, "profile_missing");
	} else if (strcmp(s->role, "explorer") == 0 || strcmp(s->role, "teacher") == 0) {
		u->role = s->role;
	} else if (strcmp(s->role, "admin") == 0) {
		/* roster's roles are explorer and teacher; an admin is the account flag */
		u->role = "teacher";
		u->is_admin = true;
		note(u, "role_admin_mapped");
	} else {
		u->role = "explorer";
		note(u, "role_unknown_mapped");
	}
	(void)p;
}

static void
plan_keys(struct plan_user *u)
{
	const struct dj_user *s = u->src;
	char *display = NULL, *key = NULL;
	const char *msg;

	if (acct_username_normalize(s->username, strlen(s->username), &display, &key, &msg) ==
	    ACCT_OK) {
		u->username_key = key;
		if (acct_email_shaped(s->username, strlen(s->username)))
			note(u, "username_email_shaped");
	} else {
		u->username_key = acct_username_key_any(s->username, strlen(s->username));
		note(u, "username_nonconforming");
	}
	free(display);
	display = key = NULL;
	if (strspn(s->email, " \t\r\n") == strlen(s->email)) {
		note(u, "email_blank");
	} else if (acct_email_normalize(s->email, strlen(s->email), &display, &key, &msg) ==
	           ACCT_OK) {
		u->email = display;
		u->email_key = key;
		return;
	} else {
		note(u, "email_invalid_dropped");
	}
	u->email = xstrdup("");
}

static void
plan_digests(const struct plan *p, struct plan_user *u)
{
	const struct dj_user *s = u->src;
	const char *f[] = {s->username, s->email, s->first_name, s->last_name,
	    s->is_active ? "1" : "0", s->is_superuser ? "1" : "0", s->is_staff ? "1" : "0",
	    s->date_joined, s->last_login, s->has_profile ? "1" : "0", s->role, s->bio,
	    s->can_invite_teachers ? "1" : "0", p->src.has_can_invite ? "1" : "0"};

	digest_of(u->digest, sizeof(f) / sizeof(f[0]), f);
	rcrypto_sha256_hex(s->password, strlen(s->password), u->pw_digest);
	if (s->token != NULL)
		rcrypto_sha256_hex(s->token, strlen(s->token), u->token_hash);
}

/* A roster account of its own holding one of `u`'s keys: its id, else 0. */
static int64_t
native_holder(const struct plan *p, const struct plan_user *u, bool *by_email)
{
	for (size_t i = 0; i < p->state.n_native; i++) {
		const struct store_native_user *n = &p->state.native[i];

		*by_email = false;
		if (strcmp(n->username_key, u->username_key) == 0 ||
		    (u->email_key != NULL && strcmp(n->username_key, u->email_key) == 0))
			return n->id;
		*by_email = true;
		if (u->email_key != NULL && n->email_key != NULL &&
		    strcmp(n->email_key, u->email_key) == 0)
			return n->id;
	}
	return 0;
}

/* ---- duplicate groups: union-find over shared username and email keys ---- */

static size_t
find(size_t *parent, size_t i)
{
	while (parent[i] != i)
		i = parent[i] = parent[parent[i]];
	return i;
}

struct keyed {
	const char *key;
	size_t idx;
};

static int
keyed_cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : (x->idx > y->idx) - (x->idx < y->idx);
}

static void
union_by(struct plan *p, size_t *parent, bool email)
{
	struct keyed *k = xmalloc((p->src.n_users + 1) * sizeof(*k));
	size_t n = 0;

	for (size_t i = 0; i < p->src.n_users; i++) {
		const char *key = email ? p->users[i].email_key : p->users[i].username_key;

		if (p->users[i].outcome != OUT_REFUSED && key != NULL)
			k[n++] = (struct keyed){key, i};
	}
	qsort(k, n, sizeof(*k), keyed_cmp);
	for (size_t i = 1; i < n; i++)
		if (strcmp(k[i].key, k[i - 1].key) == 0) {
			size_t a = find(parent, k[i].idx), b = find(parent, k[i - 1].idx);

			parent[a > b ? a : b] = a > b ? b : a;
		}
	free(k);
}

/* Whether `a` beats `b` under the policy (both in one group). */
static bool
beats(const struct plan *p, const struct plan_user *a, const struct plan_user *b)
{
	const char *x = p->policy == 1 ? a->src->date_joined : a->src->last_login;
	const char *y = p->policy == 1 ? b->src->date_joined : b->src->last_login;
	int c;

	if (x == NULL || y == NULL)
		c = (x != NULL) - (y != NULL); /* never logged in loses */
	else
		c = p->policy == 1 ? strcmp(y, x) : strcmp(x, y);
	return c != 0 ? c > 0 : a->src->id < b->src->id;
}

static void
plan_groups(struct plan *p)
{
	size_t n = p->src.n_users, *parent = xmalloc((n + 1) * sizeof(size_t));
	size_t *count = xcalloc(n + 1, sizeof(size_t)), *gidx = xmalloc((n + 1) * sizeof(size_t));

	for (size_t i = 0; i < n; i++)
		parent[i] = i;
	union_by(p, parent, false);
	union_by(p, parent, true);
	for (size_t i = 0; i < n; i++)
		count[find(parent, i)]++;
	for (size_t i = 0; i < n; i++) {
		size_t r = find(parent, i);

		if (count[r] < 2 || p->users[i].outcome == OUT_REFUSED)
			continue;
		if (r == i) {
			p->groups = xrealloc(p->groups, (p->n_groups + 1) * sizeof(*p->groups));
			memset(&p->groups[p->n_groups], 0, sizeof(*p->groups));
			p->groups[p->n_groups].members = xmalloc(count[r] * sizeof(size_t));
			gidx[r] = p->n_groups++;
		}
	}
	for (size_t i = 0; i < n; i++) { /* i ascends: members by id, the root first */
		size_t r = find(parent, i);
		struct group *g;

		if (count[r] < 2 || p->users[i].outcome == OUT_REFUSED)
			continue;
		g = &p->groups[gidx[r]];
		g->members[g->n++] = i;
		p->users[i].group = (int)gidx[r];
	}
	for (size_t gi = 0; gi < p->n_groups; gi++) {
		struct group *g = &p->groups[gi];

		g->winner = g->members[0];
		for (size_t m = 1; m < g->n; m++)
			if (beats(p, &p->users[g->members[m]], &p->users[g->winner]))
				g->winner = g->members[m];
		g->key = xstrdup(p->users[g->members[0]].email_key != NULL
		                     ? p->users[g->members[0]].email_key
		                     : p->users[g->members[0]].username_key);
		for (size_t m = 0; m < g->n; m++)
			if (g->members[m] != g->winner) {
				p->users[g->members[m]].outcome = OUT_MERGED;
				p->users[g->members[m]].winner = p->users[g->winner].src->id;
			}
	}
	free(parent);
	free(count);
	free(gidx);
}

/* What this run writes for account `u`, from what earlier runs wrote. */
static void
plan_action(const struct plan *p, struct plan_user *u)
{
	const struct store_import_row *prev = mark(p, "user", u->src->id);
	const struct store_import_row *pw = mark(p, "password", u->src->id);
	const struct store_import_row *tok = mark(p, "token", u->src->id);
	bool was = prev != NULL && strcmp(prev->outcome, "imported") == 0;
	const char *th = u->src->token != NULL ? u->token_hash : NULL;

	u->mark_changed = prev == NULL || strcmp(prev->digest, u->digest) != 0 ||
	                  strcmp(prev->outcome, outcome_names[u->outcome]) != 0;
	if (u->outcome != OUT_IMPORTED) {
		u->action = was ? ACT_REMOVE : ACT_NONE;
		return;
	}
	u->old_token = was && tok != NULL ? tok->digest : NULL;
	u->set_password = !was || pw == NULL || strcmp(pw->digest, u->pw_digest) != 0;
	u->token_changed =
	    (u->old_token == NULL) != (th == NULL) || (th != NULL && strcmp(u->old_token, th) != 0);
	if (!was)
		u->action = ACT_CREATE;
	else if (u->mark_changed || u->set_password || u->token_changed)
		u->action = ACT_UPDATE;
	else
		u->action = ACT_UNCHANGED;
}

/* The index of the account with Django id `id`, or -1. */
static long
user_index(const struct plan *p, int64_t id)
{
	size_t lo = 0, hi = p->src.n_users;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->src.users[mid].id == id)
			return (long)mid;
		if (p->src.users[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The roster id that stands for Django account `id` after the import, or 0. */
static int64_t
imported_as(const struct plan *p, int64_t id)
{
	long i = user_index(p, id);

	if (i < 0)
		return 0;
	if (p->users[i].outcome == OUT_MERGED)
		i = user_index(p, p->users[i].winner);
	return i >= 0 && p->users[i].outcome == OUT_IMPORTED ? p->users[i].src->id : 0;
}

static void
plan_invitation(struct plan *p, struct plan_inv *v)
{
	const struct dj_invitation *s = v->src;
	static const char *const statuses[] = {"pending", "accepted", "expired", "revoked"};
	char *display = NULL, *key = NULL;
	const char *msg;
	bool known = false;

	for (size_t i = 0; i < 4; i++)
		known = known || strcmp(s->status, statuses[i]) == 0;
	v->status = s->status;
	v->inviter = imported_as(p, s->invited_by);
	v->accepted_by = imported_as(p, s->accepted_by);
	if (!known)
		v->reason = "status_unknown";
	else if (s->token == NULL || s->token[0] == '\0')
		v->reason = "token_missing";
	else if (v->inviter == 0)
		v->reason = "inviter_not_imported";
	else if (acct_email_normalize(s->email, strlen(s->email), &display, &key, &msg) != ACCT_OK)
		v->reason = "email_invalid";
	if (v->reason != NULL) {
		v->outcome = OUT_REFUSED;
		free(display);
		free(key);
		return;
	}
	v->email = display;
	v->email_key = key;
	rcrypto_sha256_hex(s->token, strlen(s->token), v->token_hash);
}

/* At most one pending invitation per email in roster: the newest stays pending. */
static void
plan_pending(struct plan *p)
{
	for (size_t i = p->src.n_invs; i-- > 0;) {
		struct plan_inv *v = &p->invs[i];

		if (v->outcome != OUT_IMPORTED || strcmp(v->status, "pending") != 0)
			continue;
		for (size_t j = i + 1; j < p->src.n_invs; j++)
			if (p->invs[j].outcome == OUT_IMPORTED &&
			    strcmp(p->invs[j].status, "pending") == 0 &&
			    strcmp(p->invs[j].email_key, v->email_key) == 0) {
				v->status = "expired";
				v->note = "pending_superseded_stored_expired";
				break;
			}
	}
}

static void
plan_inv_action(struct plan *p, struct plan_inv *v)
{
	const struct dj_invitation *s = v->src;
	const struct store_import_row *prev = mark(p, "invitation", s->id);
	char by[24], acc[24];
	const char *f[9];

	snprintf(by, sizeof(by), "%lld", (long long)v->inviter);
	snprintf(acc, sizeof(acc), "%lld", (long long)v->accepted_by);
	f[0] = s->email;
	f[1] = v->outcome == OUT_IMPORTED ? v->token_hash : "";
	f[2] = v->status;
	f[3] = s->created_at;
	f[4] = s->expires_at;
	f[5] = s->accepted_at;
	f[6] = acc;
	f[7] = by;
	f[8] = outcome_names[v->outcome];
	digest_of(v->digest, 9, f);
	if (v->outcome != OUT_IMPORTED)
		v->action = ACT_NONE;
	else if (prev == NULL)
		v->action = ACT_CREATE;
	else
		v->action = strcmp(prev->digest, v->digest) == 0 ? ACT_UNCHANGED : ACT_UPDATE;
}

/* ---- plan, report, apply ---- */

/* CLI_OK, or the exit status after saying why nothing can be written. */
static int
plan_all(struct plan *p)
{
	size_t n = p->src.n_users;
	int64_t clash = 0;

	if (p->state.n_rows > 0) /* rows is NULL on a first import */
		qsort(p->state.rows, p->state.n_rows, sizeof(p->state.rows[0]), mark_cmp);
	p->users = xcalloc(n + 1, sizeof(*p->users));
	p->invs = xcalloc(p->src.n_invs + 1, sizeof(*p->invs));
	for (size_t i = 0, j = 0; i < n && j < p->state.n_native;) {
		int64_t a = p->src.users[i].id, b = p->state.native[j].id;

		if (a == b) {
			clash = a;
			break;
		}
		a < b ? i++ : j++;
	}
	if (clash != 0)
		return fail(CLI_CONFLICT,
		    "the roster database has accounts of its own under ids the Django database "
		    "uses (id %lld among them); nothing was written. Import into a new database "
		    "(roster migrate), before any account is made in it",
		    (long long)clash);
	for (size_t i = 0; i < p->src.n_invs; i++)
		for (size_t j = 0; j < p->state.n_native_invs; j++)
			if (p->src.invs[i].id == p->state.native_invs[j])
				return fail(CLI_CONFLICT,
				    "the roster database has invitations of its own under ids the "
				    "Django database uses (id %lld); nothing was written",
				    (long long)p->src.invs[i].id);
	for (size_t i = 0; i < n; i++) {
		struct plan_user *u = &p->users[i];
		bool by_email = false;
		int64_t holder;

		u->src = &p->src.users[i];
		u->group = -1;
		plan_keys(u);
		plan_password(u);
		plan_profile(p, u);
		plan_digests(p, u);
		if (u->username_key == NULL) {
			u->outcome = OUT_REFUSED;
			u->reason = "username_unreadable";
		} else if ((holder = native_holder(p, u, &by_email)) != 0) {
			u->outcome = OUT_REFUSED;
			u->reason = by_email ? "email_held_by_roster_account"
			                     : "username_held_by_roster_account";
			u->winner = holder;
		}
	}
	plan_groups(p);
	for (size_t i = 0; i < n; i++)
		plan_action(p, &p->users[i]);
	for (size_t i = 0; i < p->src.n_invs; i++) {
		p->invs[i].src = &p->src.invs[i];
		plan_invitation(p, &p->invs[i]);
	}
	plan_pending(p);
	for (size_t i = 0; i < p->src.n_invs; i++)
		plan_inv_action(p, &p->invs[i]);
	/* --on-duplicate fail: the summary and the report list the groups; nothing is written */
	return p->policy == 2 && p->n_groups > 0 ? CLI_CONFLICT : CLI_OK;
}

/* `s` for the report: JSON holds only valid UTF-8 (a SQLite source may not). */
static const char *
text(const char *s)
{
	return s != NULL && acct_utf8_chars(s, strlen(s)) >= 0 ? s : "(not valid UTF-8)";
}

static json_t *
user_entry_new(const struct plan *p, const struct plan_user *u)
{
	json_t *e = json_pack("{s:s, s:I, s:s, s:s, s:s}", "table", "auth_user", "id",
	    (json_int_t)u->src->id, "username", text(u->src->username), "outcome",
	    outcome_names[u->outcome], "action", action_names[u->action]);
	json_t *notes = json_array();

	if (u->outcome == OUT_MERGED)
		json_object_set_new(e, "winner", json_integer((json_int_t)u->winner));
	if (u->outcome == OUT_REFUSED) {
		json_object_set_new(e, "reason", json_string(u->reason));
		if (u->winner != 0)
			json_object_set_new(
			    e, "roster_account", json_integer((json_int_t)u->winner));
	}
	for (size_t i = 0; i < u->n_notes; i++)
		json_array_append_new(notes, json_string(u->notes[i]));
	json_object_set_new(e, "notes", notes);
	(void)p;
	return e;
}

static json_t *
report_new(const struct plan *p, size_t counts[3])
{
	json_t *rows = json_array(), *groups = json_array(), *notes = json_array();

	for (size_t i = 0; i < p->src.n_users; i++) {
		const struct plan_user *u = &p->users[i];
		const char *o = outcome_names[u->outcome];

		counts[u->outcome]++;
		json_array_append_new(rows, user_entry_new(p, u));
		if (u->src->has_profile)
			json_array_append_new(rows,
			    json_pack("{s:s, s:I, s:s}", "table", p->cfg->import_profile_table,
			        "user_id", (json_int_t)u->src->id, "outcome", o));
		if (u->src->token != NULL)
			json_array_append_new(
			    rows, json_pack("{s:s, s:I, s:s}", "table", "authtoken_token",
			              "user_id", (json_int_t)u->src->id, "outcome",
			              u->outcome == OUT_IMPORTED ? "imported" : "dropped"));
	}
	for (size_t i = 0; i < p->src.n_invs; i++) {
		const struct plan_inv *v = &p->invs[i];
		json_t *e =
		    json_pack("{s:s, s:I, s:s, s:s, s:s}", "table", p->cfg->import_invitation_table,
		        "id", (json_int_t)v->src->id, "outcome", outcome_names[v->outcome],
		        "action", action_names[v->action], "status", text(v->status));

		if (v->reason != NULL)
			json_object_set_new(e, "reason", json_string(v->reason));
		if (v->note != NULL)
			json_object_set_new(e, "notes", json_pack("[s]", v->note));
		json_array_append_new(rows, e);
	}
	for (size_t g = 0; g < p->n_groups; g++) {
		json_t *m = json_array();

		for (size_t k = 0; k < p->groups[g].n; k++)
			json_array_append_new(
			    m, json_integer((json_int_t)p->users[p->groups[g].members[k]].src->id));
		json_array_append_new(
		    groups, json_pack("{s:s, s:I, s:o}", "key", p->groups[g].key, "winner",
		                (json_int_t)p->users[p->groups[g].winner].src->id, "members", m));
	}
	if (!p->src.has_can_invite)
		json_array_append_new(notes, json_string("profile_table_lacks_can_invite_teachers: "
		                                         "false for every account"));
	if (p->src.orphan_profiles + p->src.orphan_tokens > 0)
		json_array_append_new(notes, json_string("rows naming no auth_user were skipped"));
	return json_pack("{s:s, s:b, s:o, s:o, s:o}", "on_duplicate", p->cfg->import_on_duplicate,
	    "dry_run", p->cfg->import_dry_run, "notes", notes, "duplicate_groups", groups, "rows",
	    rows);
}

static size_t
count_note(const struct plan *p, const char *n)
{
	size_t c = 0;

	for (size_t i = 0; i < p->src.n_users; i++)
		for (size_t k = 0; k < p->users[i].n_notes; k++)
			c += strcmp(p->users[i].notes[k], n) == 0;
	return c;
}

static void
summary(const struct plan *p, const size_t counts[3])
{
	static const char *const notes[] = {"email_blank", "email_invalid_dropped",
	    "username_nonconforming", "username_email_shaped", "password_unusable",
	    "password_hasher_unsupported", "superuser_admin", "staff_not_admin",
	    "role_admin_mapped", "role_unknown_mapped", "profile_missing"};
	size_t acts[5] = {0}, tokens = 0, dropped = 0, inv[3] = {0}, pending = 0;

	for (size_t i = 0; i < p->src.n_users; i++) {
		const struct plan_user *u = &p->users[i];

		if (u->outcome == OUT_IMPORTED)
			acts[u->action]++;
		if (u->src->token != NULL)
			u->outcome == OUT_IMPORTED ? tokens++ : dropped++;
	}
	for (size_t i = 0; i < p->src.n_invs; i++) {
		inv[p->invs[i].outcome]++;
		pending +=
		    p->invs[i].outcome == OUT_IMPORTED && strcmp(p->invs[i].status, "pending") == 0;
	}
	printf("roster import django%s: %zu accounts read (on-duplicate %s)\n",
	    p->cfg->import_dry_run ? " (dry run: nothing written)" : "", p->src.n_users,
	    p->cfg->import_on_duplicate);
	printf("  imported  %zu (created %zu, updated %zu, unchanged %zu)\n", counts[0], acts[1],
	    acts[2], acts[3]);
	printf("  merged    %zu (losers of duplicate groups)\n", counts[1]);
	printf("  refused   %zu\n", counts[2]);
	printf("  tokens    %zu imported, %zu dropped (accounts merged away or refused)\n", tokens,
	    dropped);
	printf("  invitations %zu imported (%zu pending), %zu refused\n", inv[0], pending, inv[2]);
	for (size_t i = 0; i < sizeof(notes) / sizeof(notes[0]); i++) {
		size_t c = count_note(p, notes[i]);

		if (c > 0)
			printf("  note: %-28s %zu\n", notes[i], c);
	}
	if (!p->src.has_can_invite)
		printf("  note: the profile table has no can_invite_teachers column: false for "
		       "every account\n");
	printf("duplicate groups: %zu\n", p->n_groups);
	for (size_t g = 0; g < p->n_groups; g++) {
		const struct group *gr = &p->groups[g];
		const struct plan_user *w = &p->users[gr->winner];

		printf("  %s: winner #%lld %s; merged", gr->key, (long long)w->src->id,
		    w->src->username);
		for (size_t k = 0; k < gr->n; k++)
			if (gr->members[k] != gr->winner)
				printf(" #%lld %s", (long long)p->users[gr->members[k]].src->id,
				    p->users[gr->members[k]].src->username);
		putchar('\n');
	}
	for (size_t i = 0; i < p->src.n_users; i++)
		if (p->users[i].outcome == OUT_REFUSED)
			printf("  refused #%lld %s: %s\n", (long long)p->users[i].src->id,
			    p->users[i].src->username, p->users[i].reason);
}

/* The store row for an account this run writes. */
static struct store_import_user
store_user(const struct plan_user *u)
{
	const struct dj_user *s = u->src;

	return (struct store_import_user){.id = s->id,
	    .username = s->username,
	    .username_key = u->username_key,
	    .email = u->email,
	    .email_key = u->email_key,
	    .password_hash = u->password_hash,
	    .password_must_reset = u->must_reset,
	    .set_password = u->set_password,
	    .is_active = s->is_active,
	    .is_admin = u->is_admin,
	    .date_joined = s->date_joined,
	    .last_login = s->last_login,
	    .first_name = s->first_name,
	    .last_name = s->last_name,
	    .role = u->role,
	    .bio = s->has_profile ? s->bio : "",
	    .can_invite_teachers = s->has_profile && s->can_invite_teachers,
	    .token_hash = u->token_changed && s->token != NULL ? u->token_hash : NULL,
	    .old_token_hash = u->token_changed ? u->old_token : NULL};
}

struct batch {
	int64_t *remove;
	struct store_import_user *users;
	struct store_import_invitation *invs;
	struct store_import_mark *marks;
	struct store_import_batch b;
};

static void
add_marks(struct batch *bt, const struct plan_user *u)
{
	int64_t id = u->src->id;
	struct store_import_mark *m = bt->marks + bt->b.n_marks;

	if (u->mark_changed)
		*m++ = (struct store_import_mark){"user", id, u->digest, outcome_names[u->outcome]};
	if (u->outcome != OUT_IMPORTED) {
		if (u->action == ACT_REMOVE) {
			*m++ = (struct store_import_mark){"password", id, NULL, NULL};
			*m++ = (struct store_import_mark){"token", id, NULL, NULL};
		}
	} else {
		if (u->set_password)
			*m++ = (struct store_import_mark){"password", id, u->pw_digest, "imported"};
		if (u->token_changed)
			*m++ = (struct store_import_mark){
			    "token", id, u->src->token != NULL ? u->token_hash : NULL, "imported"};
	}
	bt->b.n_marks = (size_t)(m - bt->marks);
}

static enum store_status
flush(struct store *s, struct batch *bt)
{
	enum store_status st = STORE_OK;

	if (bt->b.n_remove + bt->b.n_users + bt->b.n_invs + bt->b.n_marks > 0)
		st = store_import_apply(s, &bt->b);
	bt->b.n_remove = bt->b.n_users = bt->b.n_invs = bt->b.n_marks = 0;
	return st;
}

static enum store_status
apply_all(const struct plan *p, struct store *s)
{
	size_t n = p->src.n_users, done = 0;
	struct batch bt = {0};
	enum store_status st = STORE_OK;

	bt.remove = xmalloc((n + 1) * sizeof(int64_t));
	bt.users = xmalloc(BATCH * sizeof(*bt.users));
	bt.invs = xmalloc(BATCH * sizeof(*bt.invs));
	bt.marks = xmalloc(MARKS_MAX * sizeof(*bt.marks));
	bt.b.remove = bt.remove;
	bt.b.users = bt.users;
	bt.b.invs = bt.invs;
	bt.b.marks = bt.marks;
	bt.b.token_ttl_s = p->cfg->token_ttl_s;
	/* First the accounts now merged away: their keys may be a new winner's. */
	for (size_t i = 0; i < n; i++)
		if (p->users[i].action == ACT_REMOVE)
			bt.remove[bt.b.n_remove++] = p->users[i].src->id;
	for (size_t i = 0; i < n && st == STORE_OK; i++) {
		const struct plan_user *u = &p->users[i];

		if (u->action == ACT_CREATE || u->action == ACT_UPDATE)
			bt.users[bt.b.n_users++] = store_user(u);
		add_marks(&bt, u);
		if (bt.b.n_users == p->cfg->import_batch || bt.b.n_marks + 3 > MARKS_MAX ||
		    i + 1 == n) {
			st = flush(s, &bt);
			done = i + 1;
			if (n > BATCH && (done % BATCH == 0 || done == n))
				fprintf(stderr, "roster: import: %zu/%zu accounts\n", done, n);
		}
	}
	for (size_t i = 0; i < p->src.n_invs && st == STORE_OK; i++) {
		const struct plan_inv *v = &p->invs[i];
		const struct store_import_row *prev = mark(p, "invitation", v->src->id);

		if (v->action == ACT_CREATE || v->action == ACT_UPDATE)
			bt.invs[bt.b.n_invs++] = (struct store_import_invitation){.id = v->src->id,
			    .inviter_id = v->inviter,
			    .accepted_by = v->accepted_by,
			    .email = v->email,
			    .email_key = v->email_key,
			    .token_hash = v->token_hash,
			    .status = v->status,
			    .created_at = v->src->created_at,
			    .expires_at = v->src->expires_at,
			    .accepted_at = v->src->accepted_at};
		if (prev == NULL || strcmp(prev->digest, v->digest) != 0)
			bt.marks[bt.b.n_marks++] = (struct store_import_mark){
			    "invitation", v->src->id, v->digest, outcome_names[v->outcome]};
		if (bt.b.n_invs == p->cfg->import_batch || bt.b.n_marks == MARKS_MAX ||
		    i + 1 == p->src.n_invs)
			st = flush(s, &bt);
	}
	if (st == STORE_OK)
		st = flush(s, &bt);
	free(bt.remove);
	free(bt.users);
	free(bt.invs);
	free(bt.marks);
	return st;
}

static void
plan_clear(struct plan *p)
{
	for (size_t i = 0; p->users != NULL && i < p->src.n_users; i++) {
		free(p->users[i].username_key);
		free(p->users[i].email);
		free(p->users[i].email_key);
	}
	for (size_t i = 0; p->invs != NULL && i < p->src.n_invs; i++) {
		free(p->invs[i].email);
		free(p->invs[i].email_key);
	}
	for (size_t g = 0; g < p->n_groups; g++) {
		free(p->groups[g].members);
		free(p->groups[g].key);
	}
	free(p->groups);
	free(p->users);
	free(p->invs);
	store_import_state_clear(&p->state);
	store_django_clear(&p->src);
}

static struct store *
open_target(const struct config *cfg)
{
	struct store_schema schema;
	struct store *s = NULL;

	if (store_open(cfg->db, STORE_OPEN_EXISTING, &s) != STORE_OK) {
		fail(CLI_FAILURE, "cannot open the roster database: %s", store_open_hint(cfg->db));
		return NULL;
	}
	if (store_schema(s, &schema) != STORE_OK || !store_schema_servable(&schema)) {
		fail(CLI_FAILURE, "the roster database is not migrated; run `roster migrate`");
		store_close(s);
		return NULL;
	}
	return s;
}

static int
policy_of(const char *name)
{
	static const char *const names[] = {"most-recent-login", "oldest", "fail"};

	for (int i = 0; i < 3; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

static int
write_report(const struct plan *p, const char *path, size_t counts[3])
{
	json_t *r = report_new(p, counts);
	int rc = CLI_OK;

	if (path != NULL && json_dump_file(r, path, JSON_INDENT(1) | JSON_ENSURE_ASCII) != 0)
		rc = fail(CLI_FAILURE, "cannot write the report to %s", path);
	json_decref(r);
	return rc;
}

int
import_django(const struct config *cfg)
{
	struct plan p = {.cfg = cfg};
	struct store *s = NULL;
	const char *problem = NULL;
	size_t counts[3] = {0};
	enum store_status st;
	int rc = CLI_FAILURE, filled = 0, kept = 0;

	if (cfg->import_from == NULL)
		return fail(CLI_USAGE, "--from URL is required (sqlite:PATH or postgresql://...)");
	if ((p.policy = policy_of(cfg->import_on_duplicate)) < 0)
		return fail(CLI_USAGE, "--on-duplicate takes most-recent-login, oldest or fail");
	if ((s = open_target(cfg)) == NULL)
		return CLI_FAILURE;
	if (store_django_read(cfg->import_from, cfg->import_profile_table,
	        cfg->import_invitation_table, &p.src, &problem) != STORE_OK) {
		rc = fail(CLI_FAILURE, "%s", problem);
		goto out;
	}
	if ((st = store_import_state(s, &p.state)) != STORE_OK) {
		rc =
		    fail(CLI_FAILURE, "cannot read the roster database (%s)", store_status_str(st));
		goto out;
	}
	rc = plan_all(&p);
	if (rc != CLI_OK && rc != CLI_CONFLICT)
		goto out;
	if (rc == CLI_CONFLICT && p.n_groups == 0)
		goto out; /* ids collide: said already */
	if (write_report(&p, cfg->import_report, counts) != CLI_OK) {
		rc = CLI_FAILURE;
		goto out;
	}
	summary(&p, counts);
	if (rc == CLI_CONFLICT) {
		fail(rc, "--on-duplicate fail: %zu duplicate groups; nothing was written",
		    p.n_groups);
		goto out;
	}
	if (cfg->import_dry_run)
		goto out;
	if ((st = apply_all(&p, s)) != STORE_OK) {
		rc = fail(CLI_FAILURE,
		    "writing failed (%s); the batches before it are committed, run the import "
		    "again to complete it",
		    store_status_str(st));
		goto out;
	}
	/* The confusable keys of the new usernames (as `roster serve` would at start). */
	if ((st = store_user_fill_keys(s, &filled, &kept)) != STORE_OK) {
		rc = fail(CLI_FAILURE, "filling username keys failed (%s); run the import again",
		    store_status_str(st));
		goto out;
	}
	/* One `import` event in the audit trail: the counts, never the source URL. */
	{
		char actor[300], detail[160];

		cli_audit_actor(actor, sizeof(actor));
		snprintf(detail, sizeof(detail),
		    "{\"imported\":%zu,\"merged\":%zu,\"refused\":%zu,\"groups\":%zu}",
		    counts[OUT_IMPORTED], counts[OUT_MERGED], counts[OUT_REFUSED], p.n_groups);
		st = store_audit_record(
		    s, &(struct store_audit){
		           .event = STORE_AUDIT_IMPORT, .actor = actor, .detail = detail});
		if (st != STORE_OK)
			log_msg(RS_LOG_WARNING, "import: the audit event was not recorded (%s)",
			    store_status_str(st));
	}
out:
	plan_clear(&p);
	store_close(s);
	return rc;
}
