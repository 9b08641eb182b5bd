/* store.h dispatch: picks the backend by URL scheme and forwards each call. */
#include "store/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const struct store_ops *const backends[] = {&store_sqlite_ops, &store_postgres_ops};

static const struct store_ops *
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
	const struct store_ops *ops = backend_for(url);

	return ops != NULL && url[strlen(ops->scheme)] != '\0';
}

void
store_url_redacted(const char *url, char *out, size_t size)
{
	const char *scheme = strstr(url, "://"), *at, *colon, *pw;
	size_t n;

	snprintf(out, size, "%s", url);
	if (scheme != NULL && (at = strchr(scheme + 3, '@')) != NULL &&
	    (colon = memchr(scheme + 3, ':', (size_t)(at - scheme - 3))) != NULL) {
		n = (size_t)(colon + 1 - url);
		snprintf(out, size, "%.*s***%s", (int)n, url, at);
	}
	pw = strstr(out, "password=");
	if (pw != NULL) {
		size_t keep = (size_t)(pw - out) + strlen("password=");
		const char *rest = url + (strstr(url, "password=") - url) + strlen("password=");

		rest += strcspn(rest, "& ");
		if (keep + 3 < size)
			snprintf(out + keep, size - keep, "***%s", rest);
	}
}

const char *
store_open_hint(const char *url)
{
	if (strncmp(url, "sqlite:", 7) == 0)
		return "create it with `roster migrate`";
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
	const struct store_ops *ops = backend_for(url);

	*out = NULL;
	if (ops == NULL)
		return STORE_ERROR;
	return ops->open(url + strlen(ops->scheme), mode, out);
}

void
store_close(struct store *s)
{
	if (s != NULL)
		s->ops->close(s);
}

enum store_status
store_user_keys_taken(struct store *s, const char *username_key, const char *email_key)
{
	return s->ops->user_keys_taken(s, username_key, email_key);
}

enum store_status
store_user_create(struct store *s, const struct store_new_user *in, struct store_user *out,
    enum store_invite_why *why)
{
	memset(out, 0, sizeof(*out));
	*why = STORE_INVITE_OK;
	return s->ops->user_create(s, in, out, why);
}

enum store_status
store_user_get(struct store *s, const struct store_user_ref *ref, struct store_user *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->user_get(s, ref, out, NULL);
}

enum store_status
store_user_credentials(struct store *s, const struct store_user_ref *ref, struct store_user *user,
    char **password_hash)
{
	memset(user, 0, sizeof(*user));
	*password_hash = NULL;
	return s->ops->user_get(s, ref, user, password_hash);
}

enum store_status
store_user_list(struct store *s, struct store_users *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->user_list(s, out);
}

enum store_status
store_user_update(struct store *s, int64_t id, const struct store_user_update *u)
{
	return s->ops->user_update(s, id, u);
}

enum store_status
store_user_delete(struct store *s, int64_t id)
{
	return s->ops->user_delete(s, id);
}

enum store_status
store_token_create(
    struct store *s, int64_t user_id, const char *token_hash, long long ttl_s, char expires_at[64])
{
	return s->ops->token_create(s, user_id, token_hash, ttl_s, expires_at);
}

enum store_status
store_token_user(struct store *s, const char *token_hash, struct store_user *out)
{
	enum store_status st;

	memset(out, 0, sizeof(*out));
	st = s->ops->token_user(s, token_hash, out);
	if (st != STORE_OK)
		store_user_clear(out);
	return st;
}

enum store_status
store_token_revoke(struct store *s, const char *token_hash)
{
	return s->ops->token_revoke(s, token_hash);
}

enum store_status
store_invite_create(struct store *s, int64_t inviter_id, const char *email, const char *email_key,
    const char *token_hash, long long ttl_s, struct store_invitation *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->invite_create(s, inviter_id, email, email_key, token_hash, ttl_s, out);
}

enum store_status
store_invite_list(struct store *s, int64_t inviter_id, struct store_invitations *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->invite_list(s, inviter_id, out);
}

enum store_status
store_invite_resend(struct store *s, int64_t id, int64_t inviter_id, const char *token_hash,
    long long ttl_s, struct store_invitation *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->invite_resend(s, id, inviter_id, token_hash, ttl_s, out);
}

enum store_status
store_invite_revoke(struct store *s, int64_t id, int64_t inviter_id)
{
	return s->ops->invite_revoke(s, id, inviter_id);
}

enum store_status
store_invite_accept(
    struct store *s, const char *token_hash, int64_t user_id, enum store_invite_why *why)
{
	*why = STORE_INVITE_OK;
	return s->ops->invite_accept(s, token_hash, user_id, why);
}

enum store_status
store_rate_count(struct store *s, const char *key, long long window_s, int add, long long *count,
    long long *retry_after_s)
{
	long long now = (long long)time(NULL), start = now - now % window_s;

	*count = 0;
	*retry_after_s = start + window_s - now;
	return s->ops->rate_count(s, key, start, add, count);
}

enum store_status
store_user_from_new(
    const struct store_new_user *in, int64_t id, const char *joined, struct store_user *out)
{
	out->id = id;
	out->username = strdup(in->username);
	out->email = strdup(in->email);
	out->date_joined = strdup(joined);
	out->role = strdup(in->role);
	out->bio = strdup(in->bio != NULL ? in->bio : "");
	out->is_active = true;
	out->is_admin = in->is_admin;
	out->can_invite_teachers = in->can_invite_teachers;
	if (out->username == NULL || out->email == NULL || out->date_joined == NULL ||
	    out->role == NULL || out->bio == NULL) {
		store_user_clear(out);
		return STORE_ERROR;
	}
	return STORE_OK;
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
