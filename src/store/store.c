/*
 * The shared layer under store.h: picks the driver by URL scheme, runs every
 * driver call through one place (fault injection for the contract suite, the
 * transaction runner with its retries), and the helpers the operations share.
 */
#include "store/driver.h"
#include "log.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const struct store_driver *const backends[] = {&store_sqlite_driver, &store_pg_driver};

#define TX_ATTEMPTS 3

static const struct store_driver *
backend_for(const char *url)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strncmp(url, backends[i]->scheme, strlen(backends[i]->scheme)) == 0)
			return backends[i];
	return NULL;
}

bool
store_url_valid(const char *url)
{
	const struct store_driver *ops = backend_for(url);

	return ops != NULL && url[strlen(ops->scheme)] != '\0' && store_url_problem(url) == NULL;
}

const char *
store_url_problem(const char *url)
{
	const struct store_driver *ops = backend_for(url);

	if (ops == NULL || url[strlen(ops->scheme)] == '\0')
		return "not a database URL roster takes (sqlite:PATH or postgresql://...)";
	return ops->url_problem != NULL ? ops->url_problem(url) : NULL;
}

bool
store_url_remote(const char *url)
{
	return backend_for(url) == &store_pg_driver;
}

void
store_url_redacted(const char *url, char *out, size_t size)
{
	const struct store_driver *ops = backend_for(url);

	if (ops == NULL)
		snprintf(out, size, "(a URL no backend takes: not shown)");
	else if (ops->url_redacted != NULL)
		ops->url_redacted(url, out, size);
	else
		snprintf(out, size, "%s", url);
}

const char *
store_open_hint(const char *url)
{
	if (backend_for(url) == &store_sqlite_driver) {
		const char *path = url + strlen(store_sqlite_driver.scheme);

		/* Say what is wrong with the file, not only what a missing one needs. */
		if (access(path, F_OK) != 0)
			return "create it with `roster migrate`";
		if (access(path, R_OK | W_OK) != 0)
			return "roster needs to read and write the file and to create files "
			       "in its directory: check their owner and permissions";
		return "the file is not a roster SQLite database, or it is damaged: check --db "
		       "(a backup restores a damaged one, docs/operations.md)";
	}
	return "check that PostgreSQL is running and the database exists (createdb), "
	       "then run `roster migrate`";
}

const char *
store_status_str(enum store_status st)
{
	static const char *const names[] = {
	    [STORE_OK] = "ok",
	    [STORE_NOT_FOUND] = "not found",
	    [STORE_CONFLICT_USERNAME] = "username taken",
	    [STORE_CONFLICT_EMAIL] = "email taken",
	    [STORE_CONFLICT] = "conflict",
	    [STORE_CONFLICT_PENDING] = "invitation pending",
	    [STORE_BUSY] = "busy",
	    [STORE_UNAVAILABLE] = "unavailable",
	    [STORE_ERROR] = "error",
	};

	return (unsigned)st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

enum store_status
store_open(const char *url, enum store_open_mode mode, struct store **out)
{
	const struct store_driver *ops = backend_for(url);

	*out = NULL;
	if (ops == NULL)
		return STORE_ERROR;
	return ops->open(url + strlen(ops->scheme), mode, out);
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	store_audit_disarm(s);
	s->drv->close(s);
}

void
store_fault_after(struct store *s, unsigned n, enum store_status st)
{
	s->fault_after = n;
	s->fault_st = st;
	s->fault_fired = false;
}

bool
store_fault_fired(const struct store *s)
{
	return s->fault_fired;
}

void
store_set_deadline_ms(struct store *s, unsigned ms)
{
	s->deadline_ms = ms;
}

/* True when this call is the armed fault: the driver is then not called. */
static bool
faulted(struct store *s)
{
	if (s->fault_after == 0 || --s->fault_after != 0)
		return false;
	s->fault_fired = true;
	return true;
}

enum store_status
store_db_exec(
    struct store *s, enum store_stmt id, const struct store_arg *args, int n, int64_t *changed)
{
	if (changed != NULL)
		*changed = 0;
	if (faulted(s))
		return s->fault_st;
	return s->drv->exec(s, id, args, n, changed);
}

enum store_status
store_db_query(struct store *s, enum store_stmt id, const struct store_arg *args, int n,
    store_row_fn fn, void *arg)
{
	if (faulted(s))
		return s->fault_st;
	return s->drv->query(s, id, args, n, fn, arg);
}

enum store_status
store_db_script(struct store *s, const char *sql)
{
	if (faulted(s))
		return s->fault_st;
	return s->drv->script(s, sql);
}

struct one_args {
	store_row_fn fn;
	void *arg;
	bool seen;
};

static enum store_status
one_row(const struct store_row *r, void *arg)
{
	struct one_args *a = arg;

	if (a->seen)
		return STORE_OK; /* a unique key: cannot happen */
	a->seen = true;
	return a->fn(r, a->arg);
}

enum store_status
store_db_one(struct store *s, enum store_stmt id, const struct store_arg *args, int n,
    store_row_fn fn, void *arg)
{
	struct one_args a = {fn, arg, false};
	enum store_status st = store_db_query(s, id, args, n, one_row, &a);

	return st == STORE_OK && !a.seen ? STORE_NOT_FOUND : st;
}

enum store_status
store_tx(struct store *s, store_tx_body body, void *arg)
{
	enum store_status st = STORE_BUSY;

	for (int attempt = 0; attempt < TX_ATTEMPTS; attempt++) {
		st = faulted(s) ? s->fault_st : s->drv->begin(s);
		store_audit_tx_begin(s);
		if (st == STORE_OK)
			st = body(s, arg);
		if (st == STORE_OK)
			st = store_audit_tx_precommit(s);
		if (st == STORE_OK)
			st = faulted(s) ? s->fault_st : s->drv->commit(s);
		if (st == STORE_OK) {
			store_audit_tx_committed(s);
			break;
		}
		s->drv->rollback(s);
		if (!s->drv->retryable(s, st))
			break;
	}
	store_audit_disarm(s);
	return st;
}

struct exec_args {
	enum store_stmt id;
	const struct store_arg *args;
	int n;
	int64_t *changed;
};

static enum store_status
exec_body(struct store *s, void *arg)
{
	const struct exec_args *a = arg;

	if (a->changed != NULL)
		*a->changed = 0; /* an attempt that was rolled back changed nothing */
	return store_db_exec(s, a->id, a->args, a->n, a->changed);
}

enum store_status
store_tx_exec(
    struct store *s, enum store_stmt id, const struct store_arg *args, int n, int64_t *changed)
{
	struct exec_args a = {id, args, n, changed};

	if (changed != NULL)
		*changed = 0;
	return store_tx(s, exec_body, &a);
}

void *
store_grow(void *items, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return items;
	*cap = *cap != 0 ? *cap * 2 : 16;
	return xrealloc(items, *cap * size);
}

char *
store_col_dup(const struct store_row *r, int col)
{
	return xstrdup_or_null(store_col_text(r, col));
}

enum store_status
store_row_int(const struct store_row *r, void *out)
{
	*(int64_t *)out = store_col_int(r, 0);
	return STORE_OK;
}

enum store_status
store_row_bool(const struct store_row *r, void *out)
{
	*(bool *)out = store_col_bool(r, 0);
	return STORE_OK;
}

enum store_status
store_row_dup(const struct store_row *r, void *out)
{
	char **p = out;

	free(*p);
	*p = store_col_dup(r, 0);
	return *p != NULL ? STORE_OK : STORE_ERROR;
}

void
store_time_rfc3339(long long ahead_s, char out[64])
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)ahead_s;
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
	    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

void
store_user_clear(struct store_user *u)
{
	free(u->username);
	free(u->email);
	free(u->date_joined);
	free(u->last_login);
	free(u->role);
	free(u->bio);
	free(u->first_name);
	free(u->last_name);
	memset(u, 0, sizeof(*u));
}

void
store_users_clear(struct store_users *list)
{
	for (size_t i = 0; i < list->n; i++)
		store_user_clear(&list->items[i]);
	free(list->items);
	memset(list, 0, sizeof(*list));
}

void
store_invitation_clear(struct store_invitation *inv)
{
	free(inv->inviter);
	free(inv->email);
	free(inv->created_at);
	free(inv->expires_at);
	free(inv->accepted_at);
	memset(inv, 0, sizeof(*inv));
}

void
store_invitations_clear(struct store_invitations *list)
{
	for (size_t i = 0; i < list->n; i++)
		store_invitation_clear(&list->items[i]);
	free(list->items);
	memset(list, 0, sizeof(*list));
}
