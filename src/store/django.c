/*
 * Reads a Django database for `roster import django` (store/django.h): one
 * read-only snapshot (SQLite: a read transaction on a file opened read-only;
 * PostgreSQL: REPEATABLE READ READ ONLY), every row of the four tables into
 * memory, timestamps as roster's RFC 3339 UTC text. Table names come from the
 * operator and are checked to be plain identifiers before they are quoted.
 */
#include "store/django.h"
#include "xmalloc.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_MAX 1024

struct src {
	sqlite3 *lite;
	PGconn *pg;
};

/* One row: `cols[i]` NULL for SQL NULL, borrowed for the call. */
typedef void (*row_fn)(void *arg, const char *const *cols, int n);

/* Runs `sql`; NULL, or a static problem. */
static const char *
src_query(struct src *c, const char *sql, row_fn fn, void *arg)
{
	const char *cols[16];

	if (c->lite != NULL) {
		sqlite3_stmt *st = NULL;
		int rc, n;

		if (sqlite3_prepare_v2(c->lite, sql, -1, &st, NULL) != SQLITE_OK)
			return "a query of the Django database failed (is it a Django database "
			       "with the seed's users app migrated?)";
		n = sqlite3_column_count(st);
		if (n > 16)
			n = 16;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			for (int i = 0; i < n; i++)
				cols[i] = (const char *)sqlite3_column_text(st, i);
			if (fn != NULL)
				fn(arg, cols, n);
		}
		sqlite3_finalize(st);
		return rc == SQLITE_DONE ? NULL : "reading the Django database failed";
	}
	PGresult *r = PQexec(c->pg, sql);
	const char *problem = NULL;

	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		int n = PQnfields(r) > 16 ? 16 : PQnfields(r);

		for (int row = 0; row < PQntuples(r); row++) {
			for (int i = 0; i < n; i++)
				cols[i] = PQgetisnull(r, row, i) ? NULL : PQgetvalue(r, row, i);
			if (fn != NULL)
				fn(arg, cols, n);
		}
	} else if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		problem = "a query of the Django database failed (is it a Django database with "
		          "the seed's users app migrated?)";
	}
	PQclear(r);
	return problem;
}

static void
count_row(void *arg, const char *const *cols, int n)
{
	*(long *)arg = n > 0 && cols[0] != NULL ? strtol(cols[0], NULL, 10) : 0;
}

static bool
ident_ok(const char *s)
{
	if (s == NULL || s[0] == '\0' || strlen(s) > 63 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (const char *p = s; *p != '\0'; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		        (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

/* Whether table `t` (and, when `col` is not NULL, its column `col`) exists. */
static bool
exists(struct src *c, const char *t, const char *col)
{
	char sql[SQL_MAX];
	long n = 0;

	if (c->lite != NULL && col == NULL)
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", t);
	else if (c->lite != NULL)
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'", t, col);
	else if (col == NULL)
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM information_schema.tables WHERE table_name = '%s'"
		    " AND table_schema = current_schema()",
		    t);
	else
		snprintf(sql, sizeof(sql),
		    "SELECT count(*) FROM information_schema.columns WHERE table_name = '%s'"
		    " AND column_name = '%s' AND table_schema = current_schema()",
		    t, col);
	return src_query(c, sql, count_row, &n) == NULL && n > 0;
}

bool
store_django_time(const char *in, char out[64])
{
	int y, mo, d, h, mi, s, used = 0;
	char frac[7] = "000000";
	const char *p;
	size_t k = 0;

	if (in == NULL ||
	    sscanf(in, "%4d-%2d-%2d%*[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &used) != 6 ||
	    used < 19)
		return false;
	p = in + used;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			if (k < 6)
				frac[k++] = *p;
	/* Django writes UTC (USE_TZ) without an offset; one of zero is accepted. */
	if (*p != '\0' && strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
		return false;
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%sZ", y, mo, d, h, mi, s, frac);
	return true;
}

/* A timestamp column as roster's text: SQLite's converted here, PostgreSQL's by to_char. */
static char *
ts_dup(const struct src *c, const char *v)
{
	char buf[64];

	if (v == NULL)
		return NULL;
	if (c->pg != NULL)
		return xstrdup(v);
	return store_django_time(v, buf) ? xstrdup(buf) : NULL;
}

static char *
dup_or_null(const char *v)
{
	return v != NULL ? xstrdup(v) : NULL;
}

struct reader {
	struct src *c;
	struct dj_source *out;
	size_t cap;
	const char *problem;
};

static void
user_row(void *arg, const char *const *v, int n)
{
	struct reader *r = arg;
	struct dj_user *u;

	if (n < 11)
		return;
	if (r->out->n_users == r->cap) {
		r->cap = r->cap != 0 ? 2 * r->cap : 256;
		r->out->users = xrealloc(r->out->users, r->cap * sizeof(*u));
	}
	u = &r->out->users[r->out->n_users++];
	memset(u, 0, sizeof(*u));
	u->id = v[0] != NULL ? strtoll(v[0], NULL, 10) : 0;
	u->password = xstrdup(v[1] != NULL ? v[1] : "");
	u->last_login = ts_dup(r->c, v[2]);
	u->is_superuser = v[3] != NULL && strcmp(v[3], "1") == 0;
	u->username = xstrdup(v[4] != NULL ? v[4] : "");
	u->first_name = xstrdup(v[5] != NULL ? v[5] : "");
	u->last_name = xstrdup(v[6] != NULL ? v[6] : "");
	u->email = xstrdup(v[7] != NULL ? v[7] : "");
	u->is_staff = v[8] != NULL && strcmp(v[8], "1") == 0;
	u->is_active = v[9] != NULL && strcmp(v[9], "1") == 0;
	u->date_joined = ts_dup(r->c, v[10]);
	if (u->date_joined == NULL)
		r->problem = "auth_user.date_joined holds a value that is not a timestamp";
}

static int
by_id(const void *key, const void *elem)
{
	int64_t k = *(const int64_t *)key, id = ((const struct dj_user *)elem)->id;

	return k < id ? -1 : k > id;
}

static struct dj_user *
find_user(struct dj_source *s, const char *id)
{
	int64_t k = id != NULL ? strtoll(id, NULL, 10) : 0;

	if (s->n_users == 0)
		return NULL;
	return bsearch(&k, s->users, s->n_users, sizeof(s->users[0]), by_id);
}

static void
profile_row(void *arg, const char *const *v, int n)
{
	struct reader *r = arg;
	struct dj_user *u = n >= 3 ? find_user(r->out, v[0]) : NULL;

	if (u == NULL || u->has_profile) { /* user_id is unique in Django: never twice */
		r->out->orphan_profiles++;
		return;
	}
	r->out->n_profiles++;
	u->has_profile = true;
	u->role = xstrdup(v[1] != NULL ? v[1] : "");
	u->bio = xstrdup(v[2] != NULL ? v[2] : "");
	u->can_invite_teachers = n >= 4 && v[3] != NULL && strcmp(v[3], "1") == 0;
}

static void
token_row(void *arg, const char *const *v, int n)
{
	struct reader *r = arg;
	struct dj_user *u = n >= 2 ? find_user(r->out, v[0]) : NULL;

	if (u == NULL || u->token != NULL || v[1] == NULL) {
		r->out->orphan_tokens++;
		return;
	}
	r->out->n_tokens++;
	u->token = xstrdup(v[1]);
}

static void
inv_row(void *arg, const char *const *v, int n)
{
	struct reader *r = arg;
	struct dj_invitation *i;

	if (n < 9)
		return;
	if (r->out->n_invs == r->cap) {
		r->cap = r->cap != 0 ? 2 * r->cap : 64;
		r->out->invs = xrealloc(r->out->invs, r->cap * sizeof(*i));
	}
	i = &r->out->invs[r->out->n_invs++];
	memset(i, 0, sizeof(*i));
	i->id = v[0] != NULL ? strtoll(v[0], NULL, 10) : 0;
	i->email = xstrdup(v[1] != NULL ? v[1] : "");
	i->token = dup_or_null(v[2]);
	i->status = xstrdup(v[3] != NULL ? v[3] : "");
	i->created_at = ts_dup(r->c, v[4]);
	i->expires_at = ts_dup(r->c, v[5]);
	i->accepted_at = ts_dup(r->c, v[6]);
	i->accepted_by = v[7] != NULL ? strtoll(v[7], NULL, 10) : 0;
	i->invited_by = v[8] != NULL ? strtoll(v[8], NULL, 10) : 0;
}

/* The timestamp expression of column `col` for this backend, into `out`. */
static const char *
ts(const struct src *c, const char *col, char out[128])
{
	if (c->pg != NULL)
		snprintf(out, 128,
		    "to_char(%s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')", col);
	else
		snprintf(out, 128, "%s", col);
	return out;
}

static const char *
read_all(struct src *c, const char *profile_table, const char *inv_table, struct dj_source *out)
{
	struct reader r = {c, out, 0, NULL};
	char sql[SQL_MAX], t1[128], t2[128], t3[128];
	const char *problem;

	if (!exists(c, "auth_user", NULL))
		return "the source has no auth_user table: not a Django database";
	snprintf(sql, sizeof(sql),
	    "SELECT id, password, %s, CASE WHEN is_superuser THEN 1 ELSE 0 END, username,"
	    " first_name, last_name, email, CASE WHEN is_staff THEN 1 ELSE 0 END,"
	    " CASE WHEN is_active THEN 1 ELSE 0 END, %s FROM auth_user ORDER BY id",
	    ts(c, "last_login", t1), ts(c, "date_joined", t2));
	if ((problem = src_query(c, sql, user_row, &r)) != NULL || r.problem != NULL)
		return problem != NULL ? problem : r.problem;
	if (exists(c, profile_table, NULL)) {
		out->has_can_invite = exists(c, profile_table, "can_invite_teachers");
		snprintf(sql, sizeof(sql),
		    "SELECT user_id, role, bio%s FROM \"%s\" ORDER BY user_id",
		    out->has_can_invite ? ", CASE WHEN can_invite_teachers THEN 1 ELSE 0 END" : "",
		    profile_table);
		if ((problem = src_query(c, sql, profile_row, &r)) != NULL)
			return problem;
	}
	if (exists(c, "authtoken_token", NULL) &&
	    (problem = src_query(c, "SELECT user_id, key FROM authtoken_token ORDER BY user_id",
	         token_row, &r)) != NULL)
		return problem;
	out->has_invitations = exists(c, inv_table, NULL);
	if (!out->has_invitations)
		return NULL;
	r.cap = 0;
	snprintf(sql, sizeof(sql),
	    "SELECT id, email, token, status, %s, %s, %s, accepted_by_id, invited_by_id"
	    " FROM \"%s\" ORDER BY id",
	    ts(c, "created_at", t1), ts(c, "expires_at", t2), ts(c, "accepted_at", t3), inv_table);
	if ((problem = src_query(c, sql, inv_row, &r)) != NULL)
		return problem;
	for (size_t i = 0; i < out->n_invs; i++)
		if (out->invs[i].created_at == NULL || out->invs[i].expires_at == NULL)
			return "an invitation's created_at or expires_at is not a timestamp";
	return NULL;
}

static const char *
src_open(const char *url, struct src *c)
{
	if (strncmp(url, "sqlite:", 7) == 0) {
		if (sqlite3_open_v2(url + 7, &c->lite, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
			return "cannot open the Django SQLite database read-only (check the path)";
		sqlite3_busy_timeout(c->lite, 5000);
		return src_query(c, "BEGIN", NULL, NULL);
	}
	if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0) {
		c->pg = PQconnectdb(url);
		if (PQstatus(c->pg) != CONNECTION_OK)
			return "cannot connect to the Django PostgreSQL database (check --from)";
		return src_query(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", NULL, NULL);
	}
	return "--from takes sqlite:PATH or postgresql://... (the Django database)";
}

static void
src_close(struct src *c)
{
	if (c->lite != NULL)
		sqlite3_close(c->lite);
	if (c->pg != NULL)
		PQfinish(c->pg);
}

enum store_status
store_django_read(const char *url, const char *profile_table, const char *invitation_table,
    struct dj_source *out, const char **problem)
{
	struct src c = {NULL, NULL};

	memset(out, 0, sizeof(*out));
	*problem = NULL;
	if (!ident_ok(profile_table) || !ident_ok(invitation_table))
		*problem = "--profile-table and --invitation-table take plain table names";
	else if ((*problem = src_open(url, &c)) == NULL)
		*problem = read_all(&c, profile_table, invitation_table, out);
	src_close(&c);
	if (*problem == NULL)
		return STORE_OK;
	store_django_clear(out);
	return STORE_ERROR;
}

void
store_django_clear(struct dj_source *src)
{
	for (size_t i = 0; i < src->n_users; i++) {
		struct dj_user *u = &src->users[i];

		if (u->password != NULL)
			memset(u->password, 0, strlen(u->password));
		if (u->token != NULL)
			memset(u->token, 0, strlen(u->token));
		free(u->password);
		free(u->last_login);
		free(u->username);
		free(u->first_name);
		free(u->last_name);
		free(u->email);
		free(u->date_joined);
		free(u->role);
		free(u->bio);
		free(u->token);
	}
	for (size_t i = 0; i < src->n_invs; i++) {
		struct dj_invitation *v = &src->invs[i];

		if (v->token != NULL)
			memset(v->token, 0, strlen(v->token));
		free(v->email);
		free(v->token);
		free(v->status);
		free(v->created_at);
		free(v->expires_at);
		free(v->accepted_at);
	}
	free(src->users);
	free(src->invs);
	memset(src, 0, sizeof(*src));
}
