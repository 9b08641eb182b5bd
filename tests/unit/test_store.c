/*
 * The store contract suite: every operation of store.h, its conflicts and
 * not-found paths, on SQLite (a temporary directory) always and on
 * PostgreSQL when ROSTER_TEST_PG holds a URL (tests/unit/run-store-tests.py
 * starts a throwaway cluster; each test gets its own database). Write and
 * read operations also run under fault injection: a fault at driver call 1,
 * 2, ... until the operation completes without reaching it; every faulted run
 * must answer the injected status and leave the database as it was.
 */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "accounts/acct.h"
#include "log.h"
#include "metrics.h"
#include "store/sql.h"
#include "store/store.h"

static struct store *S;
static char sq_dir[64];
static char pg_url[512], pg_name[32];

/* Token hashes and rate keys the snapshot looks at. */
static const char *const tokens[] = {"tok-a", "tok-b", "tok-c"};
static const char *const rate_keys[] = {"login:a", "register:b"};

static void
open_sqlite(void)
{
	char url[128];
	int applied = 0;

	log_set_level(RS_LOG_ERROR);
	snprintf(sq_dir, sizeof(sq_dir), "/tmp/roster-store-XXXXXX");
	cr_assert_not_null(mkdtemp(sq_dir));
	snprintf(url, sizeof(url), "sqlite:%s/t.db", sq_dir);
	cr_assert_eq(store_open(url, STORE_OPEN_CREATE, &S), STORE_OK);
	cr_assert_eq(store_migrate(S, &applied), STORE_OK);
	cr_assert_gt(applied, 0);
}

static void
quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static void
pg_admin(const char *base, const char *sql)
{
	PGconn *c = PQconnectdb(base);
	PGresult *r;

	cr_assert_eq(PQstatus(c), CONNECTION_OK, "ROSTER_TEST_PG: %s", PQerrorMessage(c));
	PQsetNoticeProcessor(c, quiet, NULL);
	r = PQexec(c, sql);
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s: %s", sql, PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
}

/* ROSTER_TEST_PG with its database name replaced by `name`. */
static void
pg_url_for(const char *base, const char *name, char *out, size_t size)
{
	const char *host = strstr(base, "://"), *path, *query;

	cr_assert_not_null(host, "ROSTER_TEST_PG is not a postgresql:// URL");
	path = strchr(host + 3, '/');
	cr_assert_not_null(path, "ROSTER_TEST_PG names no database");
	query = strchr(path, '?');
	snprintf(
	    out, size, "%.*s/%s%s", (int)(path - base), base, name, query != NULL ? query : "");
}

static void
open_pg(void)
{
	const char *base = getenv("ROSTER_TEST_PG");
	char sql[96];
	int applied = 0;

	log_set_level(RS_LOG_ERROR);
	if (base == NULL || *base == '\0')
		return; /* the test skips, saying why */
	snprintf(pg_name, sizeof(pg_name), "rt_%d", (int)getpid());
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", pg_name);
	pg_admin(base, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", pg_name);
	pg_admin(base, sql);
	pg_url_for(base, pg_name, pg_url, sizeof(pg_url));
	cr_assert_eq(store_open(pg_url, STORE_OPEN_CREATE, &S), STORE_OK);
	cr_assert_eq(store_migrate(S, &applied), STORE_OK);
	cr_assert_gt(applied, 0);
}

static void
close_store(void)
{
	char path[160];
	const char *base = getenv("ROSTER_TEST_PG");

	store_close(S);
	S = NULL;
	if (sq_dir[0] != '\0') {
		const char *const files[] = {"t.db", "t.db-wal", "t.db-shm"};

		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", sq_dir, files[i]);
			unlink(path);
		}
		rmdir(sq_dir);
	}
	if (pg_name[0] != '\0' && base != NULL) {
		snprintf(path, sizeof(path), "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg_name);
		pg_admin(base, path);
	}
}

static void
need_store(void)
{
	if (S == NULL)
		cr_skip_test("ROSTER_TEST_PG is not set: the PostgreSQL half of the store contract "
		             "suite is skipped (make test runs it on a throwaway cluster)");
}

/* Each contract test runs once per backend. */
#define STORE_TEST(name)                                                                           \
	static void name(void);                                                                    \
	Test(store_sqlite, name, .init = open_sqlite, .fini = close_store)                         \
	{                                                                                          \
		name();                                                                            \
	}                                                                                          \
	Test(store_pg, name, .init = open_pg, .fini = close_store)                                 \
	{                                                                                          \
		need_store();                                                                      \
		name();                                                                            \
	}                                                                                          \
	static void name(void)

/* ------------------------------------------------------------------ snapshot */

struct buf {
	char *p;
	size_t len;
};

__attribute__((format(printf, 2, 3))) static void
put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char line[1024];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	b->p = realloc(b->p, b->len + (size_t)n + 1);
	cr_assert_not_null(b->p);
	memcpy(b->p + b->len, line, (size_t)n + 1);
	b->len += (size_t)n;
}

#define OR_NULL(s) ((s) != NULL ? (s) : "(null)")

/* Everything store.h can read back, as text: equal snapshots, same database. */
static char *
snapshot(void)
{
	struct buf b = {NULL, 0};
	struct store_users users = {0};
	struct store_invitations invs = {0};

	cr_assert_eq(store_user_list(S, &users), STORE_OK);
	for (size_t i = 0; i < users.n; i++) {
		const struct store_user *u = &users.items[i];
		struct store_user_ref ref = {u->id, NULL, NULL};
		struct store_user c = {0};
		char *hash = NULL;

		cr_assert_eq(store_user_credentials(S, &ref, &c, &hash), STORE_OK);
		put(&b, "user %lld %s %s %s %s %d %d %s %s %d %s\n", (long long)u->id, u->username,
		    u->email, u->date_joined, OR_NULL(u->last_login), u->is_active, u->is_admin,
		    u->role, u->bio, u->can_invite_teachers, hash);
		free(hash);
		store_user_clear(&c);
	}
	store_users_clear(&users);
	cr_assert_eq(store_invite_list(S, 0, &invs), STORE_OK);
	for (size_t i = 0; i < invs.n; i++) {
		const struct store_invitation *v = &invs.items[i];

		put(&b, "invitation %lld %lld %s %s %s %s %s %s\n", (long long)v->id,
		    (long long)v->inviter_id, v->inviter, v->email, v->status, v->created_at,
		    v->expires_at, OR_NULL(v->accepted_at));
	}
	store_invitations_clear(&invs);
	for (size_t i = 0; i < sizeof(tokens) / sizeof(tokens[0]); i++) {
		struct store_user u = {0};
		enum store_status st = store_token_user(S, tokens[i], &u);

		cr_assert(st == STORE_OK || st == STORE_NOT_FOUND);
		put(&b, "token %s %lld\n", tokens[i], st == STORE_OK ? (long long)u.id : -1LL);
		store_user_clear(&u);
	}
	for (size_t i = 0; i < sizeof(rate_keys) / sizeof(rate_keys[0]); i++) {
		long long count = 0, retry = 0;

		cr_assert_eq(store_rate_count(S, rate_keys[i], 3600, 0, &count, &retry), STORE_OK);
		put(&b, "rate %s %lld\n", rate_keys[i], count);
	}
	{
		char secret[STORE_SECRET_MAX];
		enum store_status st = store_secret(S, "k", NULL, secret);

		cr_assert(st == STORE_OK || st == STORE_NOT_FOUND);
		put(&b, "secret %s\n", st == STORE_OK ? secret : "-");
	}
	{
		struct store_audit_rows rows = {0};
		struct store_audit_filter f = {.limit = 1000};

		cr_assert_eq(store_audit_list(S, &f, &rows), STORE_OK);
		for (size_t i = 0; i < rows.n; i++)
			put(&b, "audit %lld %s %lld %s %s\n", (long long)rows.items[i].id,
			    rows.items[i].event, (long long)rows.items[i].user_id,
			    rows.items[i].actor, rows.items[i].detail);
		store_audit_rows_clear(&rows);
	}
	if (b.p == NULL)
		put(&b, "%s", "");
	return b.p;
}

/* ------------------------------------------------------------------ faults */

typedef enum store_status (*op_fn)(void *ctx);

/*
 * Runs `op` with a fault at driver call 1, 2, ... until it completes without
 * reaching the fault, which must then answer `want`. Each faulted run must
 * answer STORE_UNAVAILABLE and leave the snapshot unchanged.
 */
static void
fault_sweep(const char *what, op_fn op, void *ctx, enum store_status want)
{
	for (unsigned n = 1;; n++) {
		char *before = snapshot(), *after;
		enum store_status st;
		bool fired;

		cr_assert_lt(n, 64, "%s: no end to the driver calls", what);
		store_fault_after(S, n, STORE_UNAVAILABLE);
		st = op(ctx);
		fired = store_fault_fired(S);
		store_fault_after(S, 0, STORE_OK);
		if (!fired) {
			cr_assert_eq(st, want, "%s: %s without a fault, expected %s", what,
			    store_status_str(st), store_status_str(want));
			cr_assert_gt(n, 1, "%s made no driver call", what);
			free(before);
			return;
		}
		cr_assert_eq(st, STORE_UNAVAILABLE, "%s with a fault at driver call %u answered %s",
		    what, n, store_status_str(st));
		after = snapshot();
		cr_assert_str_eq(after, before,
		    "%s with a fault at driver call %u changed the database", what, n);
		free(before);
		free(after);
	}
}

/* ------------------------------------------------------------------ helpers */

struct person {
	char username[64], email[96], hash[64];
	struct store_new_user in;
};

/* A valid new account named `name` (already lowercase: it is its own key). */
static struct store_new_user *
person(struct person *p, const char *name)
{
	snprintf(p->username, sizeof(p->username), "%s", name);
	snprintf(p->email, sizeof(p->email), "%s@example.com", name);
	snprintf(p->hash, sizeof(p->hash), "hash-of-%s", name);
	p->in = (struct store_new_user){
	    .username = p->username,
	    .username_key = p->username,
	    .email = p->email,
	    .email_key = p->email,
	    .password_hash = p->hash,
	    .role = "explorer",
	    .bio = "",
	};
	return &p->in;
}

static int64_t
mk_user(const char *name)
{
	struct person p;
	struct store_user u = {0};
	enum store_invite_why why;

	int64_t id;

	cr_assert_eq(store_user_create(S, person(&p, name), &u, &why), STORE_OK, "create %s", name);
	id = u.id;
	store_user_clear(&u);
	return id;
}

static int64_t
user_id(const char *name)
{
	struct store_user_ref ref = {0, name, NULL};
	struct store_user u = {0};
	int64_t id;

	cr_assert_eq(store_user_get(S, &ref, &u), STORE_OK, "get %s", name);
	id = u.id;
	store_user_clear(&u);
	return id;
}

static int64_t
mk_invite(int64_t inviter, const char *email, const char *token, long long ttl)
{
	struct store_invitation inv = {0};
	int64_t id;

	cr_assert_eq(store_invite_create(S, inviter, email, email, token, ttl, &inv), STORE_OK,
	    "invite %s", email);
	id = inv.id;
	store_invitation_clear(&inv);
	return id;
}

static void
assert_invite_status(int64_t id, const char *status)
{
	struct store_invitations list = {0};
	bool seen = false;

	cr_assert_eq(store_invite_list(S, 0, &list), STORE_OK);
	for (size_t i = 0; i < list.n; i++)
		if (list.items[i].id == id) {
			cr_assert_str_eq(
			    list.items[i].status, status, "invitation %lld", (long long)id);
			seen = true;
		}
	store_invitations_clear(&list);
	cr_assert(seen, "invitation %lld is missing", (long long)id);
}

/* ------------------------------------------------------------------ tables and schema */

Test(store_sql, every_statement_has_a_text_in_both_tables)
{
	for (int i = 0; i < STMT_COUNT_; i++) {
		cr_expect_not_null(store_sqlite_sql[i], "store_sqlite_sql[%d]", i);
		cr_expect_not_null(store_pg_sql[i], "store_pg_sql[%d]", i);
	}
}

STORE_TEST(schema_is_current_and_migrate_again_applies_nothing)
{
	struct store_schema schema;
	int applied = -1;

	cr_assert_eq(store_schema(S, &schema), STORE_OK);
	cr_assert_gt(schema.latest, 0);
	cr_assert_eq(schema.applied, schema.latest);
	cr_assert_eq(store_migrate(S, &applied), STORE_OK);
	cr_assert_eq(applied, 0);
}

/* A second, empty database beside the test's own (the same backend). */
static struct store *
open_empty(unsigned n)
{
	const char *base = getenv("ROSTER_TEST_PG");
	char url[600], name[48], sql[96];
	struct store *s = NULL;

	if (sq_dir[0] != '\0') {
		snprintf(url, sizeof(url), "sqlite:%s/empty%u.db", sq_dir, n);
	} else {
		snprintf(name, sizeof(name), "%s_e%u", pg_name, n);
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
		pg_admin(base, sql);
		pg_url_for(base, name, url, sizeof(url));
	}
	cr_assert_eq(store_open(url, STORE_OPEN_CREATE, &s), STORE_OK);
	return s;
}

static void
drop_empty(struct store *s, unsigned n)
{
	char path[160];

	store_close(s);
	if (sq_dir[0] != '\0') {
		snprintf(path, sizeof(path), "%s/empty%u.db", sq_dir, n);
		unlink(path);
		snprintf(path, sizeof(path), "%s/empty%u.db-wal", sq_dir, n);
		unlink(path);
		snprintf(path, sizeof(path), "%s/empty%u.db-shm", sq_dir, n);
		unlink(path);
	} else {
		snprintf(path, sizeof(path), "DROP DATABASE %s_e%u WITH (FORCE)", pg_name, n);
		pg_admin(getenv("ROSTER_TEST_PG"), path);
	}
}

/* Each migration is its own transaction: a fault leaves whole versions, and a rerun ends. */
STORE_TEST(migrate_under_every_fault_leaves_whole_versions)
{
	for (unsigned n = 1;; n++) {
		struct store *e = open_empty(n);
		struct store_schema schema;
		enum store_status st;
		int applied = 0;
		bool fired;

		cr_assert_lt(n, 160, "migrate: no end to the driver calls");
		store_fault_after(e, n, STORE_UNAVAILABLE);
		st = store_migrate(e, &applied);
		fired = store_fault_fired(e);
		store_fault_after(e, 0, STORE_OK);
		if (fired) {
			cr_assert_eq(
			    st, STORE_UNAVAILABLE, "fault at call %u: %s", n, store_status_str(st));
			cr_assert_eq(store_schema(e, &schema), STORE_OK);
			cr_assert_eq(schema.applied, applied, "fault at call %u", n);
			cr_assert_eq(
			    store_migrate(e, &applied), STORE_OK, "rerun after call %u", n);
		} else {
			cr_assert_eq(st, STORE_OK);
		}
		cr_assert_eq(store_schema(e, &schema), STORE_OK);
		cr_assert_eq(schema.applied, schema.latest);
		cr_assert_eq(store_user_keys_taken(e, "a", NULL, NULL, "b", NULL), STORE_OK);
		drop_empty(e, n);
		if (!fired)
			return;
	}
}

static enum store_status
op_schema(void *arg)
{
	struct store_schema schema = {0, 0, 0};
	enum store_status st = store_schema(S, &schema);

	if (st == STORE_OK)
		cr_assert_eq(schema.applied, schema.latest);
	(void)arg;
	return st;
}

STORE_TEST(schema_read_under_faults)
{
	fault_sweep("store_schema", op_schema, NULL, STORE_OK);
}

/* ------------------------------------------------------------------ users */

struct create_ctx {
	struct store_new_user *in;
	int64_t id;
	enum store_invite_why why;
};

static enum store_status
op_create(void *arg)
{
	struct create_ctx *c = arg;
	struct store_user u = {0};
	enum store_status st = store_user_create(S, c->in, &u, &c->why);

	if (st == STORE_OK) {
		cr_assert_str_eq(u.username, c->in->username);
		cr_assert_str_eq(u.email, c->in->email);
		cr_assert(u.is_active);
		c->id = u.id;
	} else {
		cr_assert_null(u.username, "no account on failure");
	}
	store_user_clear(&u);
	return st;
}

STORE_TEST(user_create_returns_the_account_and_survives_every_fault)
{
	struct person p;
	struct create_ctx c = {person(&p, "alice"), 0, STORE_INVITE_OK};
	struct store_user_ref ref = {0, "alice", NULL};
	struct store_user u = {0};

	p.in.is_admin = true;
	p.in.bio = "hi";
	fault_sweep("user_create", op_create, &c, STORE_OK);
	cr_assert_gt(c.id, 0);
	cr_assert_eq(store_user_get(S, &ref, &u), STORE_OK);
	cr_assert_eq(u.id, c.id);
	cr_assert(u.is_admin);
	cr_assert_str_eq(u.bio, "hi");
	cr_assert_str_eq(u.role, "explorer");
	cr_assert_null(u.last_login);
	cr_assert_eq(strlen(u.date_joined), strlen("2026-01-01T00:00:00.000000Z"));
	store_user_clear(&u);
}

STORE_TEST(user_create_conflicts_username_then_email_writing_nothing)
{
	struct person a, b;
	struct create_ctx c = {person(&b, "alice"), 0, STORE_INVITE_OK};

	mk_user("alice");
	b.in.email = b.in.email_key = "other@example.com";
	fault_sweep("user_create, username taken", op_create, &c, STORE_CONFLICT_USERNAME);
	person(&b, "bob");
	b.in.email = b.in.email_key = person(&a, "alice")->email;
	c.in = &b.in;
	fault_sweep("user_create, email taken", op_create, &c, STORE_CONFLICT_EMAIL);
	cr_assert_eq(
	    store_user_keys_taken(S, "bob", NULL, NULL, "bob@example.com", NULL), STORE_OK);
}

STORE_TEST(user_keys_taken_says_which_username_first)
{
	mk_user("alice");
	cr_assert_eq(
	    store_user_keys_taken(S, "bob", NULL, NULL, "bob@example.com", NULL), STORE_OK);
	cr_assert_eq(store_user_keys_taken(S, "alice", NULL, NULL, "bob@example.com", NULL),
	    STORE_CONFLICT_USERNAME);
	cr_assert_eq(store_user_keys_taken(S, "bob", NULL, NULL, "alice@example.com", NULL),
	    STORE_CONFLICT_EMAIL);
	cr_assert_eq(store_user_keys_taken(S, "alice", NULL, NULL, "alice@example.com", NULL),
	    STORE_CONFLICT_USERNAME);
}

/* ------------------------------------------------------------------ confusable keys */

/* `p` as `name` (its own key) with email `local`@example.com and its real skeletons. */
static struct store_new_user *
lookalike(struct person *p, const char *name, const char *local, char **sk, char **cased)
{
	person(p, local);
	snprintf(p->username, sizeof(p->username), "%s", name);
	cr_assert_eq(acct_username_skeletons(name, strlen(name), sk, cased), ACCT_OK);
	p->in.username_skeleton = *sk;
	p->in.username_skeleton_cased = *cased;
	return &p->in;
}

static enum store_status
create(struct store_new_user *in)
{
	struct store_user u = {0};
	enum store_invite_why why;
	enum store_status st = store_user_create(S, in, &u, &why);

	store_user_clear(&u);
	return st;
}

STORE_TEST(user_create_confusable_username_taken_writing_nothing)
{
	char *k[4] = {0}, *c[4] = {0};
	struct person admin, cyr, upper, pal;
	struct create_ctx ctx = {lookalike(&cyr, "\u0430dmin", "cyr", &k[1], &c[1]), 0, 0};

	cr_assert_eq(create(lookalike(&admin, "admin", "admin", &k[0], &c[0])), STORE_OK);
	fault_sweep("user_create, confusable username", op_create, &ctx, STORE_CONFLICT_USERNAME);
	cr_assert_eq(store_user_keys_taken(S, "\u0430dmin", k[1], c[1], "cyr@example.com", NULL),
	    STORE_CONFLICT_USERNAME);
	/* Only the cased skeleton: "PAYPAI" (capital i) against "paypal". */
	cr_assert_eq(create(lookalike(&pal, "paypal", "pal", &k[2], &c[2])), STORE_OK);
	lookalike(&upper, "PAYPAI", "upper", &k[3], &c[3]);
	upper.in.username_key = "paypai";
	cr_assert_eq(create(&upper.in), STORE_CONFLICT_USERNAME);
	cr_assert_eq(
	    store_user_keys_taken(S, "paypai", k[3], NULL, "upper@example.com", NULL), STORE_OK);
	cr_assert_eq(store_user_keys_taken(S, "paypai", NULL, c[3], "upper@example.com", NULL),
	    STORE_CONFLICT_USERNAME);
	/* Accounts without skeletons (legacy rows) never collide on them. */
	mk_user("carol");
	mk_user("dave");
	for (int i = 0; i < 4; i++) {
		free(k[i]);
		free(c[i]);
	}
}

/* A legacy account: made with no confusable keys, as before migration 0004. */
static int64_t
mk_legacy(const char *name, const char *local)
{
	struct person p;
	struct store_user u = {0};
	enum store_invite_why why;
	int64_t id;

	person(&p, local);
	snprintf(p.username, sizeof(p.username), "%s", name);
	cr_assert_eq(store_user_create(S, &p.in, &u, &why), STORE_OK, "create %s", name);
	id = u.id;
	store_user_clear(&u);
	return id;
}

struct fill_ctx {
	int filled, kept;
};

static enum store_status
op_fill(void *arg)
{
	struct fill_ctx *f = arg;

	return store_user_fill_keys(S, &f->filled, &f->kept);
}

STORE_TEST(fill_keys_gives_legacy_accounts_skeletons_and_keeps_collisions)
{
	int64_t admin = mk_legacy("admin", "admin"), cyr = mk_legacy("\u0430dmin", "cyr");
	struct fill_ctx f = {0, 0};
	char *k = NULL, *c = NULL;
	struct person p;
	struct store_user u = {0};

	mk_legacy("bob", "bob");
	fault_sweep("fill_keys", op_fill, &f, STORE_OK);
	cr_assert_eq(f.filled, 4, "admin and bob get both keys, filled %d", f.filled);
	cr_assert_eq(f.kept, 2, "the younger look-alike keeps none, kept %d", f.kept);
	/* Both legacy look-alikes still log in; a new look-alike of either is taken. */
	cr_assert_eq(user_id("admin"), admin);
	cr_assert_eq(user_id("\u0430dmin"), cyr);
	cr_assert_eq(create(lookalike(&p, "\u0251dmin", "alpha", &k, &c)), STORE_CONFLICT_USERNAME);
	cr_assert_eq(store_user_keys_taken(S, "\u0251dmin", k, c, "alpha@example.com", NULL),
	    STORE_CONFLICT_USERNAME);
	free(k);
	free(c);
	/* Again: nothing new to fill, the collision is looked at and kept. */
	cr_assert_eq(store_user_fill_keys(S, &f.filled, &f.kept), STORE_OK);
	cr_assert_eq(f.filled, 0);
	cr_assert_eq(f.kept, 2);
	cr_assert_eq(store_user_get(S, &(struct store_user_ref){cyr, NULL, NULL}, &u), STORE_OK);
	store_user_clear(&u);
}

STORE_TEST(fill_keys_rekeys_unicode_email_domains_keeping_collisions)
{
	/* As an older roster keyed them: the domain lowercased code point by code point. */
	struct person a, b, c;
	struct store_user u = {0};
	struct fill_ctx f = {0, 0};
	int64_t ida, idb;

	person(&a, "victim");
	a.in.email = "Victim@B\u00FCcher.de";
	a.in.email_key = "victim@b\u00FCcher.de";
	cr_assert_eq(create(&a.in), STORE_OK);
	ida = user_id("victim");
	person(&b, "twin"); /* one mailbox, two accounts: the bug being fixed */
	b.in.email = b.in.email_key = "twin@xn--bcher-kva.de";
	cr_assert_eq(create(&b.in), STORE_OK);
	idb = user_id("twin");
	person(&c, "other");
	c.in.email = "twin@b\u00FCcher.de";
	c.in.email_key = "twin@b\u00FCcher.de";
	cr_assert_eq(create(&c.in), STORE_OK);
	cr_assert_eq(store_user_fill_keys(S, &f.filled, &f.kept), STORE_OK);
	cr_assert_eq(
	    store_user_get(S, &(struct store_user_ref){0, NULL, "victim@xn--bcher-kva.de"}, &u),
	    STORE_OK);
	cr_assert_eq(u.id, ida);
	cr_assert_str_eq(u.email, "Victim@B\u00FCcher.de", "the display value is kept");
	store_user_clear(&u);
	/* The A-label key was taken: the Unicode twin keeps its old key (and its login by name). */
	cr_assert_eq(
	    store_user_get(S, &(struct store_user_ref){0, NULL, "twin@xn--bcher-kva.de"}, &u),
	    STORE_OK);
	cr_assert_eq(u.id, idb);
	store_user_clear(&u);
	cr_assert_eq(
	    store_user_get(S, &(struct store_user_ref){0, NULL, "twin@b\u00FCcher.de"}, &u),
	    STORE_OK);
	store_user_clear(&u);
	cr_assert_eq(user_id("other"), idb + 1);
}

STORE_TEST(user_get_by_id_username_or_email)
{
	int64_t id = mk_user("alice");
	struct store_user_ref by_id = {id, NULL, NULL}, by_name = {0, "alice", NULL},
	                      login = {0, NULL, "alice@example.com"}, none = {0, "zed", NULL},
	                      gone = {id + 100, NULL, NULL};
	const struct store_user_ref *found[] = {&by_id, &by_name, &login};
	struct store_user u = {0};
	char *hash = NULL;

	for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
		cr_assert_eq(store_user_get(S, found[i], &u), STORE_OK, "ref %zu", i);
		cr_assert_eq(u.id, id);
		store_user_clear(&u);
	}
	cr_assert_eq(store_user_get(S, &none, &u), STORE_NOT_FOUND);
	cr_assert_null(u.username);
	cr_assert_eq(store_user_get(S, &gone, &u), STORE_NOT_FOUND);
	cr_assert_eq(store_user_credentials(S, &login, &u, &hash), STORE_OK);
	cr_assert_str_eq(hash, "hash-of-alice");
	free(hash);
	store_user_clear(&u);
	cr_assert_eq(store_user_credentials(S, &none, &u, &hash), STORE_NOT_FOUND);
	cr_assert_null(hash);
}

/* Issue 14, item 2: an identifier never falls through from one column to the other. */
STORE_TEST(user_get_one_key_only_never_the_other_column)
{
	int64_t id = mk_user("alice");
	struct store_user_ref name_as_email = {0, NULL, "alice"},
	                      email_as_name = {0, "alice@example.com", NULL},
	                      both = {0, "alice", "alice@example.com"}, neither = {0, NULL, NULL},
	                      id_and_name = {id, "alice", NULL};
	struct store_user u = {0};

	cr_assert_eq(store_user_get(S, &name_as_email, &u), STORE_NOT_FOUND);
	cr_assert_eq(store_user_get(S, &email_as_name, &u), STORE_NOT_FOUND);
	cr_assert_eq(store_user_get(S, &both, &u), STORE_ERROR);
	cr_assert_eq(store_user_get(S, &neither, &u), STORE_ERROR);
	cr_assert_eq(store_user_get(S, &id_and_name, &u), STORE_ERROR);
	cr_assert_null(u.username);
}

/* A row as Django imports it: a username that is someone's email. */
static int64_t
mk_user_named(const char *username, const char *email)
{
	struct person p;
	struct store_user u = {0};
	enum store_invite_why why;
	int64_t id;

	person(&p, "x");
	p.in.username = p.in.username_key = username;
	p.in.email = p.in.email_key = email;
	cr_assert_eq(store_user_create(S, &p.in, &u, &why), STORE_OK, "create %s", username);
	id = u.id;
	store_user_clear(&u);
	return id;
}

/* Issue 14, item 2: a key taken in one role is taken in the other, in create and the pre-check. */
STORE_TEST(user_create_refuses_a_key_held_in_the_other_role)
{
	struct person b;
	struct create_ctx c = {person(&b, "bob"), 0, STORE_INVITE_OK};

	mk_user("alice");
	mk_user_named("t.lee@school.example", "legacy@example.com");
	/* A username that is an existing email: refused as the username. */
	b.in.username = b.in.username_key = "alice@example.com";
	fault_sweep("user_create, username is an email", op_create, &c, STORE_CONFLICT_USERNAME);
	cr_assert_eq(
	    store_user_keys_taken(S, "alice@example.com", NULL, NULL, "bob@example.com", NULL),
	    STORE_CONFLICT_USERNAME);
	/* An email that is an existing username (in its username form): the email. */
	person(&b, "bob");
	b.in.email = b.in.email_key = "T.Lee@School.example";
	b.in.email_username_key = "t.lee@school.example";
	fault_sweep("user_create, email is a username", op_create, &c, STORE_CONFLICT_EMAIL);
	cr_assert_eq(
	    store_user_keys_taken(S, "bob", NULL, NULL, "x@example.com", "t.lee@school.example"),
	    STORE_CONFLICT_EMAIL);
	cr_assert_eq(
	    store_user_keys_taken(S, "bob", NULL, NULL, "bob@example.com", "bob@example.com"),
	    STORE_OK);
	person(&b, "bob");
	b.in.email_username_key = "bob@example.com";
	fault_sweep("user_create, both free", op_create, &c, STORE_OK);
}

struct clashes_ctx {
	struct store_clash c[4];
	size_t n;
};

static enum store_status
op_clashes(void *arg)
{
	struct clashes_ctx *c = arg;

	return store_user_clashes(S, 4, c->c, &c->n);
}

STORE_TEST(user_clashes_lists_usernames_that_are_another_accounts_email)
{
	struct clashes_ctx c = {.n = 9};
	int64_t alice, legacy, second;

	mk_user_named("ada@home", "ada@example.com"); /* '@', no one's email: no clash */
	fault_sweep("user_clashes, none", op_clashes, &c, STORE_OK);
	cr_assert_eq(c.n, 0);
	/* In this order, as rows imported from elsewhere can be (create refuses the
	 * username once the email exists, not the email without its username form). */
	second = mk_user_named("legacy@example.com", "second@example.com");
	legacy = mk_user_named("alice@example.com", "legacy@example.com");
	alice = mk_user("alice");
	fault_sweep("user_clashes", op_clashes, &c, STORE_OK);
	cr_assert_eq(c.n, 2);
	cr_assert_eq(c.c[0].username_id, second);
	cr_assert_eq(c.c[0].email_id, legacy);
	cr_assert_eq(c.c[1].username_id, legacy);
	cr_assert_eq(c.c[1].email_id, alice);
	cr_assert_eq(store_user_clashes(S, 1, c.c, &c.n), STORE_OK);
	cr_assert_eq(c.n, 1, "at most max");
}

static enum store_status
op_list(void *arg)
{
	struct store_users list = {0};
	enum store_status st = store_user_list(S, &list);

	if (st == STORE_OK) {
		cr_assert_eq(list.n, 2);
		cr_assert_str_eq(list.items[0].username, "alice");
		cr_assert_str_eq(list.items[1].username, "bob");
	} else {
		cr_assert_eq(list.n, 0);
		cr_assert_null(list.items);
	}
	store_users_clear(&list);
	(void)arg;
	return st;
}

STORE_TEST(user_list_oldest_first)
{
	mk_user("alice");
	mk_user("bob");
	fault_sweep("user_list", op_list, NULL, STORE_OK);
}

struct update_ctx {
	int64_t id;
	struct store_user_update u;
};

static enum store_status
op_update(void *arg)
{
	struct update_ctx *c = arg;

	return store_user_update(S, c->id, &c->u);
}

static const struct store_user_update unchanged = {
    .is_active = -1, .is_admin = -1, .can_invite_teachers = -1};

STORE_TEST(user_update_every_field_in_one_transaction)
{
	struct update_ctx c = {0, unchanged};
	struct store_user_ref ref = {0, "alice", NULL};
	struct store_user u = {0};
	char *hash = NULL;

	mk_user("alice");
	c.id = user_id("alice");
	c.u.bio = "new bio";
	c.u.role = "teacher";
	c.u.is_admin = 1;
	c.u.can_invite_teachers = 1;
	c.u.password_hash = "hash-2";
	fault_sweep("user_update", op_update, &c, STORE_OK);
	cr_assert_eq(store_user_credentials(S, &ref, &u, &hash), STORE_OK);
	cr_assert_str_eq(u.bio, "new bio");
	cr_assert_str_eq(u.role, "teacher");
	cr_assert(u.is_admin);
	cr_assert(u.can_invite_teachers);
	cr_assert(u.is_active);
	cr_assert_str_eq(hash, "hash-2");
	free(hash);
	store_user_clear(&u);
}

STORE_TEST(user_update_unknown_id_not_found_writes_nothing)
{
	struct update_ctx c = {0, unchanged};
	char *before, *after;

	mk_user("alice");
	c.id = user_id("alice") + 1000;
	c.u.bio = "x";
	c.u.is_active = 0;
	before = snapshot();
	fault_sweep("user_update, no such id", op_update, &c, STORE_NOT_FOUND);
	after = snapshot();
	cr_assert_str_eq(after, before);
	free(before);
	free(after);
}

STORE_TEST(user_update_rehash_only_if_unchanged)
{
	struct update_ctx c = {0, unchanged};
	char expire[64];

	mk_user("alice");
	c.id = user_id("alice");
	cr_assert_eq(store_token_create(S, c.id, "tok-a", 3600, expire), STORE_OK);
	c.u.password_hash = "rehashed";
	c.u.expect_hash = "not-the-stored-one";
	fault_sweep("user_update, stale rehash", op_update, &c, STORE_CONFLICT);
	c.u.expect_hash = "hash-of-alice";
	fault_sweep("user_update, rehash", op_update, &c, STORE_OK);
	{
		struct store_user u = {0};

		/* A rehash is the same password: the session stays. */
		cr_assert_eq(store_token_user(S, "tok-a", &u), STORE_OK);
		store_user_clear(&u);
	}
}

STORE_TEST(user_update_password_or_deactivation_ends_every_session)
{
	struct update_ctx c = {0, unchanged};
	struct store_user u = {0};
	char expire[64];

	mk_user("alice");
	c.id = user_id("alice");
	cr_assert_eq(store_token_create(S, c.id, "tok-a", 3600, expire), STORE_OK);
	c.u.password_hash = "new";
	cr_assert_eq(store_user_update(S, c.id, &c.u), STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-a", &u), STORE_NOT_FOUND);
	cr_assert_eq(store_token_create(S, c.id, "tok-b", 3600, expire), STORE_OK);
	c.u = unchanged;
	c.u.is_active = 0;
	fault_sweep("user_update, deactivate", op_update, &c, STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-b", &u), STORE_NOT_FOUND);
}

static enum store_status
op_delete(void *arg)
{
	return store_user_delete(S, *(int64_t *)arg);
}

STORE_TEST(user_delete_takes_tokens_and_invitations_along)
{
	int64_t id, missing;
	char expire[64];
	struct store_invitations list = {0};

	mk_user("alice");
	id = user_id("alice");
	missing = id + 1000;
	cr_assert_eq(store_token_create(S, id, "tok-a", 3600, expire), STORE_OK);
	mk_invite(id, "carol@example.com", "inv-1", 3600);
	fault_sweep("user_delete, no such id", op_delete, &missing, STORE_NOT_FOUND);
	fault_sweep("user_delete", op_delete, &id, STORE_OK);
	cr_assert_eq(store_invite_list(S, 0, &list), STORE_OK);
	cr_assert_eq(list.n, 0);
	store_invitations_clear(&list);
	cr_assert_eq(store_user_delete(S, id), STORE_NOT_FOUND);
}

/* ------------------------------------------------------------------ tokens */

struct token_ctx {
	int64_t user;
	const char *hash;
	long long ttl;
};

static enum store_status
op_token_create(void *arg)
{
	struct token_ctx *c = arg;
	char expire[64] = "";
	enum store_status st = store_token_create(S, c->user, c->hash, c->ttl, expire);

	cr_assert_eq(strlen(expire), strlen("2026-01-01T00:00:00.000000Z"));
	return st;
}

static enum store_status
op_token_user(void *arg)
{
	struct store_user u = {0};
	enum store_status st = store_token_user(S, arg, &u);

	if (st != STORE_OK)
		cr_assert_null(u.username);
	store_user_clear(&u);
	return st;
}

static enum store_status
op_token_revoke(void *arg)
{
	return store_token_revoke(S, arg);
}

STORE_TEST(token_create_user_revoke)
{
	struct token_ctx c = {0, "tok-a", 3600};
	struct store_user u = {0};

	mk_user("alice");
	c.user = user_id("alice");
	fault_sweep("token_create", op_token_create, &c, STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-a", &u), STORE_OK);
	cr_assert_eq(u.id, c.user);
	cr_assert_not_null(u.last_login, "a login sets last_login");
	store_user_clear(&u);
	fault_sweep("token_user", op_token_user, "tok-a", STORE_OK);
	fault_sweep("token_user, unknown", op_token_user, "tok-b", STORE_NOT_FOUND);
	fault_sweep("token_revoke", op_token_revoke, "tok-a", STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-a", &u), STORE_NOT_FOUND);
	cr_assert_eq(store_token_revoke(S, "tok-a"), STORE_OK, "already gone is fine");
}

static enum store_status
op_tokens_revoke_user(void *arg)
{
	return store_tokens_revoke_user(S, *(const int64_t *)arg);
}

STORE_TEST(tokens_revoke_user_ends_every_session_of_that_account_only)
{
	struct token_ctx a1 = {0, "tok-a1", 3600}, a2 = {0, "tok-a2", 3600}, b = {0, "tok-b", 3600};
	struct store_user u = {0};
	int64_t alice;

	alice = a1.user = a2.user = mk_user("alice");
	b.user = mk_user("bob");
	cr_assert_eq(op_token_create(&a1), STORE_OK);
	cr_assert_eq(op_token_create(&a2), STORE_OK);
	cr_assert_eq(op_token_create(&b), STORE_OK);
	fault_sweep("tokens_revoke_user", op_tokens_revoke_user, &alice, STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-a1", &u), STORE_NOT_FOUND);
	cr_assert_eq(store_token_user(S, "tok-a2", &u), STORE_NOT_FOUND);
	cr_assert_eq(
	    store_token_user(S, "tok-b", &u), STORE_OK, "another account keeps its session");
	store_user_clear(&u);
}

STORE_TEST(token_expired_or_inactive_account_not_found)
{
	struct token_ctx c = {0, "tok-a", -10};
	struct store_user_update off = unchanged;
	struct store_user u = {0};
	char expire[64];

	mk_user("alice");
	c.user = user_id("alice");
	cr_assert_eq(op_token_create(&c), STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-a", &u), STORE_NOT_FOUND, "expired");
	cr_assert_eq(store_token_create(S, c.user, "tok-b", 3600, expire), STORE_OK);
	off.is_active = 0;
	cr_assert_eq(store_user_update(S, c.user, &off), STORE_OK);
	cr_assert_eq(store_token_create(S, c.user, "tok-c", 3600, expire), STORE_OK);
	cr_assert_eq(store_token_user(S, "tok-c", &u), STORE_NOT_FOUND, "inactive");
}

/* ------------------------------------------------------------------ invitations */

struct invite_ctx {
	int64_t inviter, id;
	const char *email, *token;
	long long ttl;
};

static enum store_status
op_invite_create(void *arg)
{
	struct invite_ctx *c = arg;
	struct store_invitation inv = {0};
	enum store_status st =
	    store_invite_create(S, c->inviter, c->email, c->email, c->token, c->ttl, &inv);

	if (st == STORE_OK) {
		cr_assert_str_eq(inv.status, "pending");
		cr_assert_str_eq(inv.inviter, "alice");
		cr_assert_null(inv.accepted_at);
		c->id = inv.id;
	} else {
		cr_assert_null(inv.email);
	}
	store_invitation_clear(&inv);
	return st;
}

STORE_TEST(invite_create_pending_conflicts_and_faults)
{
	struct invite_ctx c = {0, 0, "carol@example.com", "inv-1", 3600};

	mk_user("alice");
	mk_user("bob");
	c.inviter = user_id("alice");
	/* The "email has an account" read is the second driver call: a fault there
	 * must not count as "no account". */
	fault_sweep("invite_create", op_invite_create, &c, STORE_OK);
	c.token = "inv-2";
	fault_sweep("invite_create, one pending", op_invite_create, &c, STORE_CONFLICT_PENDING);
	c.email = "bob@example.com";
	fault_sweep("invite_create, account exists", op_invite_create, &c, STORE_CONFLICT_EMAIL);
}

STORE_TEST(invite_create_after_expiry_replaces_the_stale_one)
{
	int64_t alice, old;

	mk_user("alice");
	alice = user_id("alice");
	old = mk_invite(alice, "carol@example.com", "inv-1", -10);
	assert_invite_status(old, "expired");
	mk_invite(alice, "carol@example.com", "inv-2", 3600);
	assert_invite_status(old, "expired");
}

static enum store_status
op_invite_list(void *arg)
{
	struct store_invitations list = {0};
	enum store_status st = store_invite_list(S, *(int64_t *)arg, &list);
	size_t n = list.n;

	store_invitations_clear(&list);
	return st == STORE_OK && n != (*(int64_t *)arg == 0 ? 2 : 1) ? STORE_ERROR : st;
}

STORE_TEST(invite_list_by_inviter_or_all_newest_first)
{
	int64_t alice, bob, all = 0, big = 3000000000LL;
	struct store_invitations list = {0};

	mk_user("alice");
	mk_user("bob");
	alice = user_id("alice");
	bob = user_id("bob");
	mk_invite(alice, "carol@example.com", "inv-1", 3600);
	mk_invite(bob, "dave@example.com", "inv-2", 3600);
	fault_sweep("invite_list, all", op_invite_list, &all, STORE_OK);
	fault_sweep("invite_list, one inviter", op_invite_list, &alice, STORE_OK);
	cr_assert_eq(store_invite_list(S, 0, &list), STORE_OK);
	cr_assert_str_eq(list.items[0].email, "dave@example.com");
	store_invitations_clear(&list);
	/* An inviter id past 2^31-1 (PostgreSQL once inferred $1 as integer). */
	cr_assert_eq(store_invite_list(S, big, &list), STORE_OK);
	cr_assert_eq(list.n, 0);
	store_invitations_clear(&list);
}

static enum store_status
op_resend(void *arg)
{
	struct invite_ctx *c = arg;
	struct store_invitation inv = {0};
	enum store_status st = store_invite_resend(S, c->id, c->inviter, c->token, c->ttl, &inv);

	if (st == STORE_OK)
		cr_assert_str_eq(inv.status, "pending");
	else
		cr_assert_null(inv.email);
	store_invitation_clear(&inv);
	return st;
}

STORE_TEST(invite_resend_pending_or_expired_only_by_its_inviter)
{
	int64_t alice, bob;
	struct invite_ctx c = {0, 0, NULL, "inv-2", 3600};
	enum store_invite_why why;

	mk_user("alice");
	mk_user("bob");
	alice = user_id("alice");
	bob = user_id("bob");
	c.id = mk_invite(alice, "carol@example.com", "inv-1", -10);
	c.inviter = bob;
	fault_sweep("invite_resend, someone else's", op_resend, &c, STORE_NOT_FOUND);
	c.inviter = alice;
	fault_sweep("invite_resend, expired", op_resend, &c, STORE_OK);
	assert_invite_status(c.id, "pending");
	c.token = "inv-3";
	fault_sweep("invite_resend, pending", op_resend, &c, STORE_OK);
	c.inviter = 0;
	c.id += 1000;
	fault_sweep("invite_resend, no such id", op_resend, &c, STORE_NOT_FOUND);
	c.id -= 1000;
	cr_assert_eq(store_invite_revoke(S, c.id, 0), STORE_OK);
	fault_sweep("invite_resend, revoked", op_resend, &c, STORE_CONFLICT);
	/* accepted: a new invitation for bob's own email is not possible; use dave */
	c.id = mk_invite(alice, "dave@example.com", "inv-4", 3600);
	{
		struct person d;
		struct store_user u = {0};

		person(&d, "dave");
		d.in.invitation_hash = "inv-4";
		cr_assert_eq(store_user_create(S, &d.in, &u, &why), STORE_OK);
		store_user_clear(&u);
	}
	fault_sweep("invite_resend, accepted", op_resend, &c, STORE_CONFLICT);
}

struct revoke_ctx {
	int64_t id, inviter;
};

static enum store_status
op_revoke(void *arg)
{
	struct revoke_ctx *c = arg;

	return store_invite_revoke(S, c->id, c->inviter);
}

STORE_TEST(invite_revoke_pending_only)
{
	int64_t alice;
	struct revoke_ctx c;

	mk_user("alice");
	mk_user("bob");
	alice = user_id("alice");
	c.id = mk_invite(alice, "carol@example.com", "inv-1", 3600);
	c.inviter = user_id("bob");
	fault_sweep("invite_revoke, someone else's", op_revoke, &c, STORE_NOT_FOUND);
	c.inviter = alice;
	fault_sweep("invite_revoke", op_revoke, &c, STORE_OK);
	assert_invite_status(c.id, "revoked");
	fault_sweep("invite_revoke, again", op_revoke, &c, STORE_CONFLICT);
	c.id = mk_invite(alice, "dave@example.com", "inv-2", -10);
	fault_sweep("invite_revoke, expired", op_revoke, &c, STORE_CONFLICT);
	c.id += 1000;
	fault_sweep("invite_revoke, no such id", op_revoke, &c, STORE_NOT_FOUND);
}

struct accept_ctx {
	const char *token;
	int64_t user;
	enum store_invite_why why;
};

static enum store_status
op_accept(void *arg)
{
	struct accept_ctx *c = arg;

	return store_invite_accept(S, c->token, c->user, &c->why);
}

STORE_TEST(invite_accept_once_makes_a_teacher)
{
	struct accept_ctx c = {"inv-1", 0, STORE_INVITE_OK};
	struct store_user_ref ref = {0, "carol", NULL};
	struct store_user u = {0};
	int64_t inv;

	mk_user("alice");
	inv = mk_invite(user_id("alice"), "carol@example.com", "inv-1", 3600);
	c.user = mk_user("carol"); /* registered without the invitation, accepting it later */
	fault_sweep("invite_accept", op_accept, &c, STORE_OK);
	cr_assert_eq(c.why, STORE_INVITE_OK);
	assert_invite_status(inv, "accepted");
	cr_assert_eq(store_user_get(S, &ref, &u), STORE_OK);
	cr_assert_str_eq(u.role, "teacher");
	cr_assert(!u.can_invite_teachers);
	store_user_clear(&u);
	fault_sweep("invite_accept, again", op_accept, &c, STORE_CONFLICT);
	cr_assert_eq(c.why, STORE_INVITE_USED);
}

static enum store_status
op_invite_by_token(void *arg)
{
	struct store_invitation inv = {0};
	enum store_status st = store_invite_by_token(S, arg, &inv);

	store_invitation_clear(&inv);
	return st;
}

STORE_TEST(invite_by_token_reads_the_link_without_using_it)
{
	struct store_invitation inv = {0};
	int64_t id;

	mk_user("alice");
	id = mk_invite(user_id("alice"), "carol@example.com", "inv-1", 3600);
	mk_invite(user_id("alice"), "dave@example.com", "inv-2", -10);
	fault_sweep("invite_by_token", op_invite_by_token, "inv-1", STORE_OK);
	fault_sweep("invite_by_token, unknown", op_invite_by_token, "inv-x", STORE_NOT_FOUND);
	cr_assert_eq(store_invite_by_token(S, "inv-1", &inv), STORE_OK);
	cr_assert_eq(inv.id, id);
	cr_assert_str_eq(inv.email, "carol@example.com");
	cr_assert_str_eq(inv.inviter, "alice");
	cr_assert_str_eq(inv.status, "pending");
	store_invitation_clear(&inv);
	assert_invite_status(id, "pending");
	cr_assert_eq(store_invite_by_token(S, "inv-2", &inv), STORE_OK);
	cr_assert_str_eq(inv.status, "expired");
	store_invitation_clear(&inv);
}

STORE_TEST(invite_accept_refusals_say_why)
{
	struct accept_ctx c = {"nope", 0, STORE_INVITE_OK};
	int64_t alice;

	alice = mk_user("alice");
	mk_invite(alice, "carol@example.com", "inv-1", -10);
	mk_invite(alice, "erin@example.com", "inv-2", 3600);
	cr_assert_eq(store_invite_revoke(S, mk_invite(alice, "dave@example.com", "inv-3", 3600), 0),
	    STORE_OK);
	c.user = mk_user("carol");
	fault_sweep("invite_accept, unknown token", op_accept, &c, STORE_CONFLICT);
	cr_assert_eq(c.why, STORE_INVITE_UNKNOWN);
	c.token = "inv-1";
	fault_sweep("invite_accept, expired", op_accept, &c, STORE_CONFLICT);
	cr_assert_eq(c.why, STORE_INVITE_EXPIRED);
	c.token = "inv-2";
	fault_sweep("invite_accept, someone else's email", op_accept, &c, STORE_CONFLICT);
	cr_assert_eq(c.why, STORE_INVITE_EMAIL_MISMATCH);
	c.token = "inv-3";
	c.user = mk_user("dave");
	fault_sweep("invite_accept, revoked", op_accept, &c, STORE_CONFLICT);
	cr_assert_eq(c.why, STORE_INVITE_REVOKED);
}

STORE_TEST(invite_accept_for_a_deleted_account_not_found_stays_pending)
{
	struct accept_ctx c = {"inv-1", 0, STORE_INVITE_OK};
	int64_t inv;

	mk_user("alice");
	inv = mk_invite(user_id("alice"), "carol@example.com", "inv-1", 3600);
	c.user = mk_user("carol");
	cr_assert_eq(store_user_delete(S, c.user), STORE_OK);
	fault_sweep("invite_accept, account deleted", op_accept, &c, STORE_NOT_FOUND);
	cr_assert_eq(c.why, STORE_INVITE_OK);
	assert_invite_status(inv, "pending");
}

STORE_TEST(user_create_with_invitation_one_transaction)
{
	struct person p;
	struct create_ctx c = {person(&p, "carol"), 0, STORE_INVITE_OK};
	struct store_user_ref ref = {0, "carol", NULL};
	struct store_user u = {0};
	int64_t inv;

	mk_user("alice");
	inv = mk_invite(user_id("alice"), "carol@example.com", "inv-1", 3600);
	p.in.invitation_hash = "inv-2";
	fault_sweep("user_create, wrong invitation", op_create, &c, STORE_CONFLICT);
	cr_assert_eq(c.why, STORE_INVITE_UNKNOWN);
	cr_assert_eq(store_user_get(S, &ref, &u), STORE_NOT_FOUND, "nothing written");
	p.in.invitation_hash = "inv-1";
	fault_sweep("user_create with invitation", op_create, &c, STORE_OK);
	assert_invite_status(inv, "accepted");
	cr_assert_eq(store_user_get(S, &ref, &u), STORE_OK);
	cr_assert_str_eq(u.role, "teacher");
	store_user_clear(&u);
}

/* ------------------------------------------------------------------ rate limits, retries */

static enum store_status
op_rate_hit(void *arg)
{
	long long count = -1, retry = -1;
	enum store_status st = store_rate_count(S, "login:a", 3600, 1, &count, &retry);

	cr_assert_leq(retry, 3600);
	if (st == STORE_OK)
		cr_assert_eq(count, *(long long *)arg);
	return st;
}

STORE_TEST(rate_count_adds_and_reads)
{
	long long want = 1, count = -1, retry = -1;

	fault_sweep("rate_count, first hit", op_rate_hit, &want, STORE_OK);
	want = 2;
	fault_sweep("rate_count, second hit", op_rate_hit, &want, STORE_OK);
	cr_assert_eq(store_rate_count(S, "login:a", 3600, 0, &count, &retry), STORE_OK);
	cr_assert_eq(count, 2);
	cr_assert_eq(store_rate_count(S, "register:b", 3600, 0, &count, &retry), STORE_OK);
	cr_assert_eq(count, 0);
}

struct secret_ctx {
	const char *candidate;
	char out[STORE_SECRET_MAX];
};

static enum store_status
op_secret(void *arg)
{
	struct secret_ctx *c = arg;

	return store_secret(S, "k", c->candidate, c->out);
}

/* Issue 14, item 8: the key rate-limit subjects are hashed with, one per database. */
STORE_TEST(secret_first_candidate_stored_then_kept)
{
	struct secret_ctx first = {"aaaa", ""}, second = {"bbbb", ""}, look = {NULL, ""};

	cr_assert_eq(op_secret(&look), STORE_NOT_FOUND);
	cr_assert_str_eq(look.out, "");
	fault_sweep("secret, first", op_secret, &first, STORE_OK);
	cr_assert_str_eq(first.out, "aaaa");
	fault_sweep("secret, second candidate", op_secret, &second, STORE_OK);
	cr_assert_str_eq(second.out, "aaaa", "the stored secret stays");
	cr_assert_eq(op_secret(&look), STORE_OK);
	cr_assert_str_eq(look.out, "aaaa");
	cr_assert_eq(store_secret(S, "other", "cccc", second.out), STORE_OK);
	cr_assert_str_eq(second.out, "cccc");
}

STORE_TEST(rate_purge_takes_only_old_counters_at_most_max)
{
	long long count = 0, retry = 0;
	int64_t n = -1;

	cr_assert_eq(store_rate_count(S, "login:a", 60, 1, &count, &retry), STORE_OK);
	cr_assert_eq(store_rate_count(S, "register:b", 60, 1, &count, &retry), STORE_OK);
	cr_assert_eq(store_rate_purge(S, 86400, 10, &n), STORE_OK);
	cr_assert_eq(n, 0, "live counters stay");
	/* age -3600: "older than an hour from now", so both counters are old. */
	cr_assert_eq(store_rate_purge(S, -3600, 1, &n), STORE_OK);
	cr_assert_eq(n, 1, "at most max");
	cr_assert_eq(store_rate_purge(S, -3600, 10, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_rate_count(S, "login:a", 60, 0, &count, &retry), STORE_OK);
	cr_assert_eq(count, 0);
	cr_assert_eq(store_rate_count(S, "register:b", 60, 0, &count, &retry), STORE_OK);
	cr_assert_eq(count, 0);
}

STORE_TEST(rate_sweep_takes_only_ended_windows_of_its_prefix_at_most_max)
{
	long long count = 0, retry = 0;
	int64_t n = -1;

	cr_assert_eq(store_rate_count(S, "login:a", 60, 1, &count, &retry), STORE_OK);
	cr_assert_eq(store_rate_count(S, "login:b", 60, 1, &count, &retry), STORE_OK);
	cr_assert_eq(store_rate_count(S, "loginx:c", 60, 1, &count, &retry), STORE_OK);
	cr_assert_eq(store_rate_count(S, "register:d", 60, 1, &count, &retry), STORE_OK);
	cr_assert_eq(store_rate_sweep(S, "login:", 60, 0, 10, &n), STORE_OK);
	cr_assert_eq(n, 0, "live windows stay");
	/* grace -3600: "ended an hour from now", so every login: window has ended. */
	cr_assert_eq(store_rate_sweep(S, "login:", 60, -3600, 1, &n), STORE_OK);
	cr_assert_eq(n, 1, "at most max");
	cr_assert_eq(store_rate_sweep(S, "login:", 60, -3600, 10, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_rate_sweep(S, "login:", 60, -3600, 10, &n), STORE_OK);
	cr_assert_eq(n, 0);
	cr_assert_eq(store_rate_count(S, "loginx:c", 60, 0, &count, &retry), STORE_OK);
	cr_assert_eq(count, 1, "another prefix stays");
	cr_assert_eq(store_rate_count(S, "register:d", 60, 0, &count, &retry), STORE_OK);
	cr_assert_eq(count, 1);
}

STORE_TEST(rate_sweep_under_every_fault_deletes_nothing)
{
	long long count = 0, retry = 0;
	int64_t n = -1;

	for (unsigned at = 1;; at++) {
		bool fired;
		enum store_status st;

		cr_assert_lt(at, 16, "no end to the driver calls");
		cr_assert_eq(store_rate_count(S, "login:a", 60, 1, &count, &retry), STORE_OK);
		cr_assert_eq(store_rate_count(S, "login:b", 60, 1, &count, &retry), STORE_OK);
		store_fault_after(S, at, STORE_UNAVAILABLE);
		st = store_rate_sweep(S, "login:", 60, -3600, 10, &n);
		fired = store_fault_fired(S);
		store_fault_after(S, 0, STORE_OK);
		if (!fired) {
			cr_assert_eq(st, STORE_OK);
			cr_assert_eq(n, 2);
			break;
		}
		cr_assert_eq(
		    st, STORE_UNAVAILABLE, "fault at call %u: %s", at, store_status_str(st));
		cr_assert_eq(store_rate_sweep(S, "login:", 60, -3600, 10, &n), STORE_OK);
		cr_assert_eq(n, 2, "fault at call %u deleted %lld row(s)", at, 2 - (long long)n);
	}
}

STORE_TEST(tokens_sweep_takes_only_expired_tokens_at_most_max)
{
	char expire[64];
	struct store_user u = {0};
	int64_t n = -1;
	const char *const names[] = {"alice", "bob", "carol"};

	for (size_t i = 0; i < 3; i++)
		mk_user(names[i]);
	/* One expired token each: a login purges only its own account's expired ones. */
	cr_assert_eq(store_token_create(S, user_id("alice"), "tok-a", -10, expire), STORE_OK);
	cr_assert_eq(store_token_create(S, user_id("bob"), "tok-b", -10, expire), STORE_OK);
	cr_assert_eq(store_token_create(S, user_id("carol"), "tok-c", 3600, expire), STORE_OK);
	cr_assert_eq(store_tokens_sweep(S, 1, &n), STORE_OK);
	cr_assert_eq(n, 1, "at most max");
	cr_assert_eq(store_tokens_sweep(S, 10, &n), STORE_OK);
	cr_assert_eq(n, 1);
	cr_assert_eq(store_tokens_sweep(S, 10, &n), STORE_OK);
	cr_assert_eq(n, 0, "the live token stays");
	cr_assert_eq(store_token_user(S, "tok-c", &u), STORE_OK);
	store_user_clear(&u);
}

STORE_TEST(tokens_sweep_under_every_fault_deletes_nothing)
{
	char expire[64];
	int64_t n = -1;

	mk_user("alice");
	mk_user("bob");
	for (unsigned at = 1;; at++) {
		bool fired;
		enum store_status st;

		cr_assert_lt(at, 16, "no end to the driver calls");
		cr_assert_eq(
		    store_token_create(S, user_id("alice"), "tok-a", -10, expire), STORE_OK);
		cr_assert_eq(store_token_create(S, user_id("bob"), "tok-b", -10, expire), STORE_OK);
		store_fault_after(S, at, STORE_UNAVAILABLE);
		st = store_tokens_sweep(S, 10, &n);
		fired = store_fault_fired(S);
		store_fault_after(S, 0, STORE_OK);
		if (!fired) {
			cr_assert_eq(st, STORE_OK);
			cr_assert_eq(n, 2);
			break;
		}
		cr_assert_eq(
		    st, STORE_UNAVAILABLE, "fault at call %u: %s", at, store_status_str(st));
		cr_assert_eq(store_tokens_sweep(S, 10, &n), STORE_OK);
		cr_assert_eq(n, 2, "fault at call %u deleted %lld row(s)", at, 2 - (long long)n);
	}
}

STORE_TEST(busy_transaction_runs_again_unavailable_does_not)
{
	struct person p;
	struct create_ctx c = {person(&p, "alice"), 0, STORE_INVITE_OK};

	store_fault_after(S, 2, STORE_BUSY); /* the INSERT of the first attempt */
	cr_assert_eq(op_create(&c), STORE_OK);
	cr_assert(store_fault_fired(S));
	person(&p, "bob");
	store_fault_after(S, 2, STORE_UNAVAILABLE);
	cr_assert_eq(op_create(&c), STORE_UNAVAILABLE);
	cr_assert_eq(
	    store_user_keys_taken(S, "bob", NULL, NULL, "bob@example.com", NULL), STORE_OK);
}

/* ------------------------------------------------------------------ connections */

static long long
connect_attempts(void)
{
	char *text = metrics_render(0, 0);
	const char *at = strstr(text, "\nroster_db_connect_attempts_total ");
	long long n;

	cr_assert_not_null(at);
	n = strtoll(at + strlen("\nroster_db_connect_attempts_total "), NULL, 10);
	free(text);
	return n;
}

Test(store_pg_driver, lazy_open_unreachable_backs_off)
{
	struct store *s = NULL;
	long long before = connect_attempts();
	struct timespec t0, t1;

	/* Port 1 on loopback: refused at once. */
	cr_assert_eq(
	    store_open("postgresql://u@127.0.0.1:1/x", STORE_OPEN_EXISTING, &s), STORE_UNAVAILABLE);
	cr_assert_null(s);
	cr_assert_eq(store_open("postgresql://u@127.0.0.1:1/x", STORE_OPEN_LAZY, &s), STORE_OK);
	cr_assert_not_null(s);
	cr_assert_eq(connect_attempts(), before + 2);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(
		    store_user_keys_taken(s, "a", NULL, NULL, "b", NULL), STORE_UNAVAILABLE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Twenty calls inside the first backoff steps: at most a few attempts. */
	cr_assert_leq(
	    connect_attempts(), before + 4, "attempts: %lld", connect_attempts() - before);
	usleep(120 * 1000);
	cr_assert_eq(store_user_keys_taken(s, "a", NULL, NULL, "b", NULL), STORE_UNAVAILABLE);
	cr_assert_geq(connect_attempts(), before + 3, "a retry after the backoff");
	(void)t1;
	store_close(s);
}

Test(store_sqlite_driver, lazy_open_is_existing)
{
	struct store *s = NULL;

	cr_assert_eq(
	    store_open("sqlite:/nonexistent-dir/x.db", STORE_OPEN_LAZY, &s), STORE_UNAVAILABLE);
	cr_assert_null(s);
}

/* A statement stuck behind a lock: the client deadline ends it, then the store recovers. */
Test(store_pg, deadline_drops_a_stuck_statement_then_recovers, .init = open_pg, .fini = close_store)
{
	PGconn *locker;
	PGresult *r;
	struct timespec t0, t1;
	long long ms;

	need_store();
	mk_user("alice");
	locker = PQconnectdb(pg_url);
	cr_assert_eq(PQstatus(locker), CONNECTION_OK);
	r = PQexec(locker, "BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");
	cr_assert_eq(PQresultStatus(r), PGRES_COMMAND_OK, "%s", PQerrorMessage(locker));
	PQclear(r);
	store_set_deadline_ms(S, 300);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(store_user_keys_taken(S, "alice", NULL, NULL, "x", NULL), STORE_UNAVAILABLE);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	cr_assert(ms >= 250 && ms < 1500, "answered after %lld ms", ms);
	PQfinish(locker); /* releases the lock */
	usleep(150 * 1000);
	store_set_deadline_ms(S, 0);
	cr_assert_eq(
	    store_user_keys_taken(S, "alice", NULL, NULL, "x", NULL), STORE_CONFLICT_USERNAME);
}

/* ------------------------------------------------------------------ compatibility versions */

Test(store_schema, fit_of_each_schema_against_the_binary)
{
	const struct {
		struct store_schema sc;
		enum store_schema_fit fit;
	} cases[] = {
	    {{3, 3, 3}, STORE_SCHEMA_CURRENT}, {{3, 3, 2}, STORE_SCHEMA_CURRENT},
	    {{2, 3, 2}, STORE_SCHEMA_PENDING}, {{0, 3, 0}, STORE_SCHEMA_PENDING},
	    {{4, 3, 3}, STORE_SCHEMA_NEWER}, /* migration 4 says binaries at 3 can serve it */
	    {{5, 3, 2}, STORE_SCHEMA_NEWER}, {{4, 3, 4}, STORE_SCHEMA_INCOMPATIBLE},
	    {{5, 3, 4}, STORE_SCHEMA_INCOMPATIBLE}, /* 5 compatible with 4, but 4 is not with 3 */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cr_expect_eq(store_schema_fit(&cases[i].sc), cases[i].fit, "case %zu", i);
		cr_expect_eq(store_schema_servable(&cases[i].sc),
		    cases[i].fit == STORE_SCHEMA_CURRENT || cases[i].fit == STORE_SCHEMA_NEWER,
		    "case %zu", i);
	}
}

STORE_TEST(schema_required_is_the_highest_recorded_compat)
{
	struct store_schema schema;

	cr_assert_eq(store_schema(S, &schema), STORE_OK);
	cr_assert_eq(schema.applied, schema.latest);
	cr_assert_gt(schema.required, 0);
	cr_assert_leq(schema.required, schema.latest);
	cr_assert_eq(store_schema_fit(&schema), STORE_SCHEMA_CURRENT);
}

/* ------------------------------------------------------------------ readiness */

static enum store_status
op_write_probe(void *arg)
{
	(void)arg;
	return store_write_probe(S);
}

/* The probe writes, commits, and leaves everything store.h reads as it was. */
STORE_TEST(write_probe_commits_one_row_and_answers_every_fault)
{
	char *before = snapshot(), *after;

	cr_assert_eq(store_write_probe(S), STORE_OK);
	cr_assert_eq(store_write_probe(S), STORE_OK);
	after = snapshot();
	cr_assert_str_eq(after, before);
	free(before);
	free(after);
	fault_sweep("write_probe", op_write_probe, NULL, STORE_OK);
	cr_assert_not(store_damaged());
}

/* ------------------------------------------------------------------ URLs in logs */

Test(store_url, postgres_redacted_from_the_parse_never_the_string)
{
	static const struct {
		const char *url, *shown;
	} ok[] = {
	    {"postgresql://u:Pw%25%2F%40%5Bx@db.example:5433/roster",
	        "postgresql://u:***@db.example:5433/roster"},
	    {"postgresql://u@db.example/roster?password=Pw%40x&sslmode=require",
	        "postgresql://u:***@db.example/roster"},
	    {"postgresql://u:p[x@h/d", "postgresql://u:***@h/d"},
	    {"postgresql:///roster?host=/run/postgresql", "postgresql:///run/postgresql/roster"},
	    {"sqlite:var/roster.db", "sqlite:var/roster.db"},
	};
	static const char *const refused[] = {
	    "postgresql://u:Pw%zzSecret@h/d",    /* bad percent-encoding: libpq quotes it */
	    "postgresql://u:Pw/Secret@h:1/d",    /* '/' ends the authority: "Secret@h" a dbname */
	    "postgresql://u:Pw@Secret@h/d",      /* the host would be "Secret@h" */
	    "postgresql://u:PwSecret@[::1/d",    /* unclosed '[' */
	    "postgresql://u:PwSecret@h:x1/d",    /* not a port */
	    "postgresql://h/d?password=Se%zzcr", /* in the query too */
	};
	char out[256];

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_expect_null(store_url_problem(ok[i].url), "%s", ok[i].url);
		cr_expect(store_url_valid(ok[i].url), "%s", ok[i].url);
		store_url_redacted(ok[i].url, out, sizeof(out));
		cr_expect_str_eq(out, ok[i].shown);
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		const char *why = store_url_problem(refused[i]);

		cr_expect_not_null(why, "%s", refused[i]);
		cr_expect_not(store_url_valid(refused[i]), "%s", refused[i]);
		store_url_redacted(refused[i], out, sizeof(out));
		cr_expect_null(strstr(out, "Secret"), "%s shown as %s", refused[i], out);
		cr_expect_null(strstr(out, "Pw"), "%s shown as %s", refused[i], out);
		cr_expect_null(why != NULL ? strstr(why, "Secret") : NULL, "%s", why);
	}
}

STORE_TEST(integrity_of_a_sound_database_finds_nothing)
{
	char *problem = NULL;

	cr_assert_eq(store_integrity(S, &problem), STORE_OK);
	cr_assert_null(problem, "%s", problem);
	cr_assert_not(store_damaged());
}

/* ------------------------------------------------------------------ audit trail */

/* The rows of the trail, newest first; release with store_audit_rows_clear. */
static struct store_audit_rows
audit_rows(const char *event)
{
	struct store_audit_rows rows = {0};
	struct store_audit_filter f = {.event = event, .limit = 1000};

	cr_assert_eq(store_audit_list(S, &f, &rows), STORE_OK);
	return rows;
}

static enum store_status
op_audited_create(void *arg)
{
	store_audit_arm(S, &(struct store_audit){.event = STORE_AUDIT_USER_CREATED,
	                       .actor = "cli:test",
	                       .detail = "{\"role\":\"explorer\"}"});
	return op_create(arg);
}

STORE_TEST(audit_event_commits_with_its_operation_under_every_fault)
{
	struct person p;
	struct create_ctx c = {person(&p, "alice"), 0, STORE_INVITE_OK};
	struct store_audit_rows rows;

	/* Every faulted run leaves the snapshot, audit rows included, unchanged. */
	fault_sweep("audited user_create", op_audited_create, &c, STORE_OK);
	rows = audit_rows(NULL);
	cr_assert_eq(rows.n, 1);
	cr_assert_str_eq(rows.items[0].event, "user_created");
	cr_assert_eq(rows.items[0].user_id, c.id, "the store fills the account it made");
	cr_assert_str_eq(rows.items[0].actor, "cli:test");
	cr_assert_null(rows.items[0].ip);
	cr_assert_not_null(strstr(rows.items[0].detail, "explorer"));
	cr_assert(!store_audit_armed(S), "the transaction consumed it");
	store_audit_rows_clear(&rows);
}

STORE_TEST(audit_failed_operation_records_nothing_and_disarms)
{
	struct person p;
	struct create_ctx c = {person(&p, "alice"), 0, STORE_INVITE_OK};
	struct store_audit_rows rows;

	mk_user("alice");
	cr_assert_eq(op_audited_create(&c), STORE_CONFLICT_USERNAME);
	cr_assert(!store_audit_armed(S));
	/* The next operation records nothing it was not armed for. */
	mk_user("bob");
	rows = audit_rows(NULL);
	cr_assert_eq(rows.n, 0);
	store_audit_rows_clear(&rows);
}

STORE_TEST(audit_new_password_records_tokens_revoked_in_its_transaction)
{
	char expires[64];
	int64_t id = mk_user("alice");
	struct store_audit_rows rows;

	cr_assert_eq(store_token_create(S, id, tokens[0], 3600, expires), STORE_OK);
	store_audit_arm(
	    S, &(struct store_audit){
	           .event = STORE_AUDIT_PASSWORD_SET, .user_id = id, .actor = "cli:test"});
	cr_assert_eq(store_user_update(S, id,
	                 &(struct store_user_update){.password_hash = "$argon2id$new",
	                     .is_active = -1,
	                     .is_admin = -1,
	                     .can_invite_teachers = -1}),
	    STORE_OK);
	rows = audit_rows(NULL);
	cr_assert_eq(rows.n, 2);
	cr_assert_str_eq(rows.items[0].event, "password_set");
	cr_assert_str_eq(rows.items[1].event, "tokens_revoked");
	cr_assert_eq(rows.items[1].user_id, id);
	cr_assert_str_eq(rows.items[1].actor, "cli:test");
	/* PostgreSQL's jsonb prints a space after the colon. */
	cr_assert(strstr(rows.items[1].detail, "\"count\":1") != NULL ||
	              strstr(rows.items[1].detail, "\"count\": 1") != NULL,
	    "%s", rows.items[1].detail);
	store_audit_rows_clear(&rows);
}

STORE_TEST(audit_list_filters_and_sweep_takes_only_rows_past_the_age)
{
	struct store_audit_rows rows = {0};
	struct store_audit_filter f = {.user_id = 7, .limit = 10};
	int64_t deleted = -1;

	for (int i = 0; i < 3; i++)
		cr_assert_eq(store_audit_record(S,
		                 &(struct store_audit){
		                     .event = i == 2 ? STORE_AUDIT_LOGIN : STORE_AUDIT_LOGIN_FAILED,
		                     .user_id = i == 0 ? 0 : 7,
		                     .actor = "anonymous",
		                     .ip = "192.0.2.1",
		                     .request_id = "r"}),
		    STORE_OK);
	cr_assert_eq(store_audit_list(S, &f, &rows), STORE_OK);
	cr_assert_eq(rows.n, 2);
	cr_assert_str_eq(rows.items[0].event, "login", "newest first");
	cr_assert_str_eq(rows.items[0].ip, "192.0.2.1");
	store_audit_rows_clear(&rows);
	f = (struct store_audit_filter){.event = "login_failed", .limit = 10};
	cr_assert_eq(store_audit_list(S, &f, &rows), STORE_OK);
	cr_assert_eq(rows.n, 2);
	store_audit_rows_clear(&rows);
	f = (struct store_audit_filter){.since = (long long)time(NULL) + 3600, .limit = 10};
	cr_assert_eq(store_audit_list(S, &f, &rows), STORE_OK);
	cr_assert_eq(rows.n, 0);
	store_audit_rows_clear(&rows);
	cr_assert_eq(store_audit_sweep(S, 3600, 100, &deleted), STORE_OK);
	cr_assert_eq(deleted, 0, "younger than the age: kept");
	cr_assert_eq(store_audit_sweep(S, -3600, 2, &deleted), STORE_OK);
	cr_assert_eq(deleted, 2, "a batch at most");
	cr_assert_eq(store_audit_sweep(S, -3600, 100, &deleted), STORE_OK);
	cr_assert_eq(deleted, 1);
}

Test(store_audit, every_event_has_a_name_that_parses_back)
{
	enum store_audit_event e;

	for (int i = 0; i < STORE_AUDIT_COUNT_; i++) {
		const char *name = store_audit_event_name((enum store_audit_event)i);

		cr_assert_not_null(name, "event %d", i);
		cr_assert(store_audit_event_parse(name, &e));
		cr_assert_eq((int)e, i);
	}
	cr_assert_null(store_audit_event_name(STORE_AUDIT_COUNT_));
	cr_assert(!store_audit_event_parse("nope", &e));
}

/* ------------------------------------------------------------------ import (issue 13) */

static enum store_status
op_import(void *ctx)
{
	return store_import_apply(S, ctx);
}

static bool
has_mark(const struct store_import_state *st, const char *tbl, int64_t id, const char *digest)
{
	for (size_t i = 0; i < st->n_rows; i++)
		if (strcmp(st->rows[i].tbl, tbl) == 0 && st->rows[i].source_id == id)
			return strcmp(st->rows[i].digest, digest) == 0;
	return false;
}

/* Ids kept, one transaction per batch (every fault leaves nothing), sequences past them. */
STORE_TEST(import_apply_keeps_ids_whole_batch_or_nothing)
{
	char th[65];
	struct store_import_user users[] = {
	    {.id = 40,
	        .username = "Ann",
	        .username_key = "ann",
	        .email = "ann@example.com",
	        .email_key = "ann@example.com",
	        .password_hash = "pbkdf2_sha256$1$s$x",
	        .set_password = true,
	        .is_active = true,
	        .date_joined = "2020-01-01T00:00:00.000000Z",
	        .first_name = "Ann",
	        .last_name = "Ödegaard",
	        .role = "teacher",
	        .bio = "b",
	        .can_invite_teachers = true},
	    {.id = 77,
	        .username = "no mail",
	        .username_key = "no mail",
	        .email = "",
	        .email_key = NULL,
	        .password_hash = "!",
	        .password_must_reset = true,
	        .set_password = true,
	        .is_active = true,
	        .date_joined = "2020-01-02T00:00:00.000000Z",
	        .last_login = "2021-01-02T00:00:00.000000Z",
	        .first_name = "",
	        .last_name = "",
	        .role = "explorer",
	        .bio = "",
	        .token_hash = th},
	    {.id = 78,
	        .username = "also none",
	        .username_key = "also none",
	        .email = "",
	        .email_key = NULL,
	        .password_hash = "!",
	        .set_password = true,
	        .is_active = false,
	        .date_joined = "2020-01-02T00:00:00.000000Z",
	        .first_name = "",
	        .last_name = "",
	        .role = "explorer",
	        .bio = ""},
	};
	struct store_import_invitation inv = {.id = 5,
	    .inviter_id = 40,
	    .email = "t@example.com",
	    .email_key = "t@example.com",
	    .token_hash = "ab",
	    .status = "pending",
	    .created_at = "2020-01-01T00:00:00.000000Z",
	    .expires_at = "2099-01-01T00:00:00.000000Z"};
	struct store_import_mark marks[] = {{"user", 40, "d40", "imported"},
	    {"user", 77, "d77", "imported"}, {"user", 78, "d78", "imported"},
	    {"token", 77, th, "imported"}, {"invitation", 5, "d5", "imported"}};
	struct store_import_batch b = {.users = users,
	    .n_users = 3,
	    .invs = &inv,
	    .n_invs = 1,
	    .marks = marks,
	    .n_marks = 5,
	    .token_ttl_s = 3600};
	struct store_import_state st;
	struct store_user_ref ref = {77, NULL, NULL};
	struct store_user u = {0};
	char *hash = NULL;

	memset(th, 'c', 64); /* a token digest */
	th[64] = '\0';
	fault_sweep("import_apply", op_import, &b, STORE_OK);
	cr_assert_eq(store_user_credentials(S, &ref, &u, &hash), STORE_OK);
	cr_assert_str_eq(u.username, "no mail");
	cr_assert_str_eq(u.email, "");
	cr_assert_str_eq(hash, "!");
	cr_assert_str_eq(u.last_login, "2021-01-02T00:00:00.000000Z");
	store_user_clear(&u);
	free(hash);
	hash = NULL;
	cr_assert_eq(store_token_user(S, th, &u), STORE_OK);
	cr_assert_eq(u.id, 77);
	store_user_clear(&u);
	ref.id = 40;
	cr_assert_eq(store_user_get(S, &ref, &u), STORE_OK);
	cr_assert_str_eq(u.last_name, "Ödegaard");
	cr_assert(u.can_invite_teachers);
	store_user_clear(&u);
	/* an account made afterwards gets the id after the highest */
	cr_assert_eq(mk_user("native"), 79);
	cr_assert_eq(store_import_state(S, &st), STORE_OK);
	cr_assert_eq(st.n_rows, 5);
	cr_assert(has_mark(&st, "token", 77, th) && has_mark(&st, "invitation", 5, "d5"));
	cr_assert_eq(st.n_native, 1);
	cr_assert_eq(st.native[0].id, 79);
	cr_assert_eq(st.n_native_invs, 0);
	store_import_state_clear(&st);
	/* a second batch keeps a password it is not told to write */
	users[0].password_hash = "bcrypt$$2b$04$other";
	users[0].set_password = false;
	users[0].first_name = "Anne";
	b = (struct store_import_batch){.users = users, .n_users = 1, .token_ttl_s = 60};
	cr_assert_eq(store_import_apply(S, &b), STORE_OK);
	cr_assert_eq(store_user_credentials(S, &ref, &u, &hash), STORE_OK);
	cr_assert_str_eq(hash, "pbkdf2_sha256$1$s$x");
	cr_assert_str_eq(u.first_name, "Anne");
	store_user_clear(&u);
	free(hash);
}

/* ------------------------------------------------------------------ the outbox and one-time tokens
 */

/* A registration with its verification mail: one account, one queued mail to its address. */
static int64_t
mk_user_mailed(const char *name)
{
	struct person p;
	struct store_user u = {0};
	enum store_invite_why why;
	struct store_mail_new m = {.kind = "verify"};
	int64_t id;

	person(&p, name);
	p.in.mail = &m;
	cr_assert_eq(store_user_create(S, &p.in, &u, &why), STORE_OK, "create %s", name);
	id = u.id;
	store_user_clear(&u);
	return id;
}

STORE_TEST(outbox_claim_lease_settle)
{
	int64_t id = mk_user_mailed("mailed");
	struct store_mails got = {0};
	struct store_mail_stats stats;
	int64_t mail;

	cr_assert_eq(store_mail_claim(S, 10, 60, "claim-a", &got), STORE_OK);
	cr_assert_eq(got.n, 1);
	cr_assert_str_eq(got.items[0].kind, "verify");
	cr_assert_str_eq(got.items[0].to, "mailed@example.com");
	cr_assert_eq(got.items[0].user_id, id);
	cr_assert_eq(got.items[0].attempts, 1);
	mail = got.items[0].id;
	store_mails_clear(&got);
	/* Leased: nobody else claims it. */
	cr_assert_eq(store_mail_claim(S, 10, 60, "claim-b", &got), STORE_OK);
	cr_assert_eq(got.n, 0);
	cr_assert_eq(
	    store_mail_settle(S, mail, "claim-b", STORE_MAIL_SENT, 0, NULL), STORE_CONFLICT);
	/* A retry keeps its error and is due again after its delay. */
	cr_assert_eq(
	    store_mail_settle(S, mail, "claim-a", STORE_MAIL_RETRY, 0, "451 try later"), STORE_OK);
	cr_assert_eq(store_mail_claim(S, 10, 60, "claim-c", &got), STORE_OK);
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.items[0].attempts, 2);
	cr_assert_str_eq(got.items[0].last_error, "451 try later");
	store_mails_clear(&got);
	cr_assert_eq(store_mail_stats(S, &stats), STORE_OK);
	cr_assert_eq(stats.sending, 1);
	cr_assert_neq(stats.oldest_queued[0], '\0');
	cr_assert_eq(store_mail_settle(S, mail, "claim-c", STORE_MAIL_SENT, 0, NULL), STORE_OK);
	cr_assert_eq(
	    store_mail_settle(S, mail, "claim-c", STORE_MAIL_SENT, 0, NULL), STORE_CONFLICT);
	cr_assert_eq(store_mail_claim(S, 10, 60, "claim-d", &got), STORE_OK);
	cr_assert_eq(got.n, 0);
	cr_assert_eq(store_mail_stats(S, &stats), STORE_OK);
	cr_assert_eq(stats.sent, 1);
	cr_assert_eq(stats.queued + stats.sending, 0);
	cr_assert_eq(stats.oldest_queued[0], '\0');
	/* Retention: a sent mail older than it goes. */
	int64_t deleted = 0;
	cr_assert_eq(store_mail_sweep(S, -10, 100, &deleted), STORE_OK);
	cr_assert_eq(deleted, 1);
}

STORE_TEST(outbox_expired_lease_is_due_again_and_the_old_claim_is_lost)
{
	struct store_mails got = {0};
	struct store_mail m = {0};
	int64_t mail;

	mk_user_mailed("crashy");
	cr_assert_eq(store_mail_claim(S, 10, -1, "dead", &got), STORE_OK); /* lease already over */
	cr_assert_eq(got.n, 1);
	mail = got.items[0].id;
	store_mails_clear(&got);
	cr_assert_eq(store_mail_claim(S, 10, 60, "alive", &got), STORE_OK);
	cr_assert_eq(got.n, 1);
	store_mails_clear(&got);
	cr_assert_eq(store_mail_settle(S, mail, "dead", STORE_MAIL_SENT, 0, NULL), STORE_CONFLICT);
	cr_assert_eq(store_mail_settle(S, mail, "alive", STORE_MAIL_FAILED, 0, "550 no such user"),
	    STORE_OK);
	cr_assert_eq(store_mail_get(S, mail, &m), STORE_OK);
	cr_assert_str_eq(m.status, "failed");
	cr_assert_str_eq(m.last_error, "550 no such user");
	store_mail_clear(&m);
	cr_assert_eq(store_mail_requeue(S, mail), STORE_OK);
	cr_assert_eq(store_mail_list(S, "queued", 10, &got), STORE_OK);
	cr_assert_eq(got.n, 1);
	store_mails_clear(&got);
	cr_assert_eq(store_mail_requeue(S, 999999), STORE_NOT_FOUND);
}

STORE_TEST(otk_verify_once_expired_unknown)
{
	int64_t id = mk_user("verif");
	enum store_otk_why why;
	bool verified = true;

	cr_assert_eq(
	    store_otk_mint(S, STORE_OTK_VERIFY, id, 0, "h-ok", 3600, NULL, NULL), STORE_OK);
	cr_assert_eq(store_otk_mint(S, STORE_OTK_VERIFY, id, 0, "h-old", -1, NULL, NULL), STORE_OK);
	cr_assert_eq(
	    store_otk_mint(S, STORE_OTK_RESET, id, 0, "h-reset", 3600, NULL, NULL), STORE_OK);
	cr_assert_eq(store_user_email_verified(S, id, &verified), STORE_OK);
	cr_assert(!verified);
	cr_assert_eq(store_email_verify(S, "h-old", &why), STORE_CONFLICT);
	cr_assert_eq(why, STORE_OTK_EXPIRED);
	cr_assert_eq(store_email_verify(S, "h-none", &why), STORE_CONFLICT);
	cr_assert_eq(why, STORE_OTK_UNKNOWN);
	cr_assert_eq(store_email_verify(S, "h-reset", &why), STORE_CONFLICT); /* another purpose */
	cr_assert_eq(why, STORE_OTK_UNKNOWN);
	cr_assert_eq(store_email_verify(S, "h-ok", &why), STORE_OK);
	cr_assert_eq(store_user_email_verified(S, id, &verified), STORE_OK);
	cr_assert(verified);
	cr_assert_eq(store_email_verify(S, "h-ok", &why), STORE_CONFLICT);
	cr_assert_eq(why, STORE_OTK_USED);
}

STORE_TEST(reset_same_work_for_unknown_and_confirm_revokes)
{
	int64_t id = mk_user("resetme"), deleted = 0;
	struct store_mails got = {0};
	enum store_otk_why why;
	char exp[64];

	cr_assert_eq(store_reset_request(S, "nobody@example.com", "nobody@example.com"), STORE_OK);
	cr_assert_eq(
	    store_reset_request(S, "resetme@example.com", "resetme@example.com"), STORE_OK);
	cr_assert_eq(store_mail_list(S, "", 10, &got), STORE_OK);
	cr_assert_eq(got.n, 2);
	cr_assert_str_eq(got.items[0].kind, "reset");
	cr_assert_str_eq(got.items[0].to, "resetme@example.com");
	cr_assert_str_eq(got.items[1].kind, "reset_unknown");
	cr_assert_str_eq(got.items[1].to, "nobody@example.com");
	store_mails_clear(&got);
	cr_assert_eq(store_token_create(S, id, "login-1", 3600, exp), STORE_OK);
	cr_assert_eq(store_otk_mint(S, STORE_OTK_RESET, id, 0, "r1", 3600, NULL, NULL), STORE_OK);
	cr_assert_eq(store_otk_mint(S, STORE_OTK_RESET, id, 0, "r2", 3600, NULL, NULL), STORE_OK);
	int64_t owner = 0;
	cr_assert_eq(store_otk_check(S, STORE_OTK_RESET, "r1", &why, &owner), STORE_OK);
	cr_assert_eq(why, STORE_OTK_OK);
	cr_assert_eq(owner, id);
	cr_assert_eq(store_reset_confirm(S, "r1", "new-hash", &why), STORE_OK);
	cr_assert_eq(store_reset_confirm(S, "r2", "other-hash", &why), STORE_CONFLICT);
	cr_assert_eq(why, STORE_OTK_USED);
	struct store_user u = {0};
	cr_assert_eq(store_token_user(S, "login-1", &u), STORE_NOT_FOUND);
	cr_assert_eq(store_mail_list(S, "queued", 10, &got), STORE_OK);
	cr_assert_str_eq(got.items[0].kind, "password_changed");
	cr_assert_str_eq(got.items[0].to, "resetme@example.com");
	store_mails_clear(&got);
	cr_assert_eq(store_otk_sweep(S, 100, &deleted), STORE_OK);
	cr_assert_eq(deleted, 0); /* used a moment ago: kept a day to say "used" */
}

STORE_TEST(email_change_race_one_wins)
{
	int64_t a = mk_user("changea"), b = mk_user("changeb"), who = 0;
	enum store_otk_why why;
	struct store_user u = {0};
	struct store_user_ref ref = {0, NULL, "new@example.com"};

	int64_t shaped = mk_user("shaped@example.com"); /* as an imported username can be */

	cr_assert_eq(store_email_change_request(
	                 S, a, "New@example.com", "new@example.com", "new@example.com"),
	    STORE_OK);
	cr_assert_eq(store_email_change_request(
	                 S, b, "new@example.com", "new@example.com", "new@example.com"),
	    STORE_OK);
	cr_assert_eq(
	    store_email_change_request(S, b, "changea@example.com", "changea@example.com", NULL),
	    STORE_CONFLICT_EMAIL);
	/* Another account's username is the address: taken across the two roles; one's own is not.
	 */
	cr_assert_eq(store_email_change_request(
	                 S, b, "Shaped@example.com", "shaped@example.com.b", "shaped@example.com"),
	    STORE_CONFLICT_EMAIL);
	cr_assert_eq(store_email_change_request(S, shaped, "Shaped@example.com",
	                 "shaped@example.com.b", "shaped@example.com"),
	    STORE_OK);
	cr_assert_eq(store_otk_mint(S, STORE_OTK_EMAIL_CHANGE, a, 0, "ea", 3600, "New@example.com",
	                 "new@example.com"),
	    STORE_OK);
	cr_assert_eq(store_otk_mint(S, STORE_OTK_EMAIL_CHANGE, b, 0, "eb", 3600, "new@example.com",
	                 "new@example.com"),
	    STORE_OK);
	cr_assert_eq(store_email_change_confirm(S, "ea", &who, &why), STORE_OK);
	cr_assert_eq(who, a);
	cr_assert_eq(store_email_change_confirm(S, "eb", &who, &why), STORE_CONFLICT_EMAIL);
	cr_assert_eq(store_user_get(S, &ref, &u), STORE_OK);
	cr_assert_eq(u.id, a);
	cr_assert_str_eq(u.email, "New@example.com");
	store_user_clear(&u);
}

STORE_TEST(invitation_mail_token_accepts_the_same_invitation_once)
{
	int64_t inviter = mk_user("inviter"), invitee;
	struct store_invitation inv = {0};
	enum store_invite_why why;
	struct store_mails got = {0};

	cr_assert_eq(store_invite_create_mailed(S, inviter, "invitee@example.com",
	                 "invitee@example.com", "inv-returned", 3600, "{}", &inv),
	    STORE_OK);
	invitee = mk_user("invitee");
	cr_assert_eq(store_mail_list(S, "queued", 10, &got), STORE_OK);
	cr_assert_eq(got.n, 1);
	cr_assert_str_eq(got.items[0].kind, "invitation");
	cr_assert_eq(got.items[0].invitation_id, inv.id);
	cr_assert_eq(got.items[0].user_id, inviter); /* named in the mail */
	store_mails_clear(&got);
	cr_assert_eq(
	    store_otk_mint(S, STORE_OTK_INVITATION, 0, inv.id, "inv-mailed", 0, NULL, NULL),
	    STORE_OK);
	cr_assert_eq(store_invite_accept(S, "inv-mailed", invitee, &why), STORE_OK);
	cr_assert_eq(store_invite_accept(S, "inv-returned", invitee, &why), STORE_CONFLICT);
	cr_assert_eq(why, STORE_INVITE_USED);
	cr_assert_eq(store_otk_mint(S, STORE_OTK_INVITATION, 0, inv.id, "inv-late", 0, NULL, NULL),
	    STORE_NOT_FOUND);
	store_invitation_clear(&inv);
}
