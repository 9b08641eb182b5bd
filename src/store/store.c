/* store.h dispatch: picks the backend by URL scheme and forwards each call. */
#include "backend.h"

#include <stdlib.h>
#include <string.h>

static const struct store_ops *const backends[] = { &store_sqlite_ops };

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

const char *
store_status_str(enum store_status st)
{
	static const char *const names[] = {
		[STORE_OK] = "ok",
		[STORE_NOT_FOUND] = "not found",
		[STORE_CONFLICT_USERNAME] = "username taken",
		[STORE_CONFLICT_EMAIL] = "email taken",
		[STORE_CONFLICT] = "conflict",
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
store_ping(struct store *s)
{
	return s->ops->ping(s);
}

enum store_status
store_user_keys_taken(struct store *s, const char *username_key, const char *email_key)
{
	return s->ops->user_keys_taken(s, username_key, email_key);
}

enum store_status
store_user_create(struct store *s, const struct store_new_user *in, struct store_user *out)
{
	memset(out, 0, sizeof(*out));
	return s->ops->user_create(s, in, out);
}

void
store_user_clear(struct store_user *u)
{
	free(u->username);
	free(u->email);
	free(u->role);
	free(u->date_joined);
	memset(u, 0, sizeof(*u));
}
