/*
 * The Django database `roster import django` reads: auth_user, DRF's
 * authtoken_token, the seed's users_profile and users_teacherinvitation (their
 * names configurable), read-only and in one consistent snapshot, through the
 * SQLite and libpq client libraries directly (store/django.c). Nothing here
 * writes; the import writes into roster through store.h.
 */
#ifndef ROSTER_STORE_DJANGO_H
#define ROSTER_STORE_DJANGO_H

#include "store/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One auth_user row with its profile and token; strings owned (NULL: SQL NULL). */
struct dj_user {
	int64_t id;
	char *password;
	char *last_login; /* RFC 3339 UTC with microseconds, or NULL */
	bool is_superuser, is_staff, is_active;
	char *username, *first_name, *last_name, *email;
	char *date_joined;
	bool has_profile;
	char *role, *bio; /* NULL without a profile */
	bool can_invite_teachers;
	char *token; /* the DRF key in clear, or NULL */
};

/* One invitation row; ids 0 for NULL. */
struct dj_invitation {
	int64_t id;
	char *email, *token, *status;
	char *created_at, *expires_at, *accepted_at;
	int64_t accepted_by, invited_by;
};

struct dj_source {
	struct dj_user *users; /* by id */
	size_t n_users;
	struct dj_invitation *invs; /* by id */
	size_t n_invs;
	size_t n_profiles, n_tokens;
	size_t orphan_profiles, orphan_tokens; /* rows naming no user (not imported) */
	bool has_can_invite;                   /* the profile table has can_invite_teachers */
	bool has_invitations;                  /* the invitation table exists */
};

/*
 * Reads the whole source at `url` ("sqlite:PATH" or "postgresql://..."): users,
 * profiles (table `profile_table`), tokens (authtoken_token, may be absent) and
 * invitations (`invitation_table`, may be absent). Table names must be plain
 * identifiers. STORE_OK; otherwise `*problem` is a static sentence for the
 * operator (never quoting the URL) and `out` is empty.
 */
RS_MUSTCHECK enum store_status store_django_read(const char *url, const char *profile_table,
    const char *invitation_table, /* OUT: */ struct dj_source *out, const char **problem);

void store_django_clear(struct dj_source *src);

/* Django's SQLite "YYYY-MM-DD HH:MM:SS[.ffffff][+00:00]" as roster's RFC 3339; false if not. */
bool store_django_time(const char *in, /* OUT: */ char out[64]);

#endif
