/*
 * Admin commands on the configured database; see cli.h and docs/cli.md.
 * Validation and normalisation are those of the API (src/accounts/), so an
 * account made here obeys every rule an account made over HTTP does.
 */
#include "cli.h"
#include "config.h"
#include "accounts/acct.h"
#include "log.h"
#include "mail/compose.h"
#include "mail/mail.h"
#include "crypto/rcrypto.h"
#include "store/store.h"
#include "xmalloc.h"

#include <jansson.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* Prints "roster: <message>" on stderr; returns `code`, the exit status. */
static int __attribute__((format(printf, 2, 3))) fail(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("roster: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

static int
store_exit(enum store_status st)
{
	switch (st) {
	case STORE_OK:
		return CLI_OK;
	case STORE_NOT_FOUND:
		return CLI_NOT_FOUND;
	case STORE_CONFLICT:
	case STORE_CONFLICT_USERNAME:
	case STORE_CONFLICT_EMAIL:
	case STORE_CONFLICT_PENDING:
		return CLI_CONFLICT;
	default:
		return CLI_FAILURE;
	}
}

/* Opens the database and insists its schema is current. */
static struct store *
open_db(const struct config *cfg)
{
	struct store_schema schema;
	struct store *s = NULL;

	if (store_open(cfg->db, STORE_OPEN_EXISTING, &s) != STORE_OK) {
		fail(CLI_FAILURE, "cannot open the database: %s", store_open_hint(cfg->db));
		return NULL;
	}
	if (store_schema(s, &schema) != STORE_OK || !store_schema_servable(&schema)) {
		fail(CLI_FAILURE, store_schema_fit(&schema) == STORE_SCHEMA_INCOMPATIBLE
		                      ? "the database schema is newer than this binary's and "
		                        "incompatible with it; run a newer roster"
		                      : "the database is not migrated; run `roster migrate`");
		store_close(s);
		return NULL;
	}
	return s;
}

/*
 * Arms the audit event of an admin command on `s`, recorded by the next
 * write operation in its own transaction (store.h): the actor is
 * "cli:<the operator's Unix user>" (by uid when it has no name). `detail`
 * (may be NULL) is taken over; it never holds a password or hash.
 */
void
cli_audit_actor(char *out, size_t size)
{
	const struct passwd *pw = getpwuid(geteuid());

	if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0')
		snprintf(out, size, "cli:%s", pw->pw_name);
	else
		snprintf(out, size, "cli:uid:%lld", (long long)geteuid());
}

static void
audit_arm_new(struct store *s, enum store_audit_event event, int64_t user_id, json_t *detail)
{
	char actor[300],
	    *text = detail != NULL ? json_dumps(detail, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	cli_audit_actor(actor, sizeof(actor));
	store_audit_arm(s, &(struct store_audit){
	                       .event = event, .user_id = user_id, .actor = actor, .detail = text});
	free(text);
	json_decref(detail);
}

/* How a command names its user: USER (or --by USER), --username NAME, --email ADDR. */
enum user_as {
	AS_ANY,
	AS_USERNAME,
	AS_EMAIL,
};

/* `spec` keyed as an email or as a username; NULL when it cannot be one. */
static char *
key_of(const char *spec, bool email)
{
	char *display = NULL, *key = NULL;
	const char *msg;

	if (email)
		acct_email_normalize(spec, strlen(spec), &display, &key, &msg);
	else
		acct_username_normalize(spec, strlen(spec), &display, &key, &msg);
	free(display);
	return key;
}

static enum store_status
get_by(struct store *s, int64_t id, const char *username_key, const char *email_key,
    struct store_user *out)
{
	struct store_user_ref ref = {id, username_key, email_key};

	if (id <= 0 && username_key == NULL && email_key == NULL)
		return STORE_NOT_FOUND;
	return store_user_get(s, &ref, out);
}

/*
 * A bare USER that is email-shaped names the account with that email, and no
 * other: the username of another account (one imported with '@' in it) never
 * answers for it, and one that only a username matches is refused, so an
 * operator who typed someone's email never changes someone else. Prints why
 * it refuses; CLI_USAGE, as the form of the argument is what is wrong.
 */
static int
email_or_refuse(struct store *s, const char *spec, const char *email_key, const char *name_key,
    bool user_cmd, struct store_user *out)
{
	const char *how = user_cmd ? ", --email ADDR or --username NAME" : "";
	struct store_user other = {0};
	enum store_status st = get_by(s, 0, NULL, email_key, out);
	enum store_status by_name = st == STORE_OK || st == STORE_NOT_FOUND
	                                ? get_by(s, 0, name_key, NULL, &other)
	                                : STORE_NOT_FOUND;
	int rc = CLI_OK;

	if (st != STORE_OK && st != STORE_NOT_FOUND)
		rc = fail(CLI_FAILURE, "cannot read %s: %s", spec, store_status_str(st));
	else if (by_name != STORE_OK && by_name != STORE_NOT_FOUND)
		rc = fail(CLI_FAILURE, "cannot read %s: %s", spec, store_status_str(by_name));
	else if (st == STORE_OK && by_name == STORE_OK && other.id != out->id)
		rc = fail(CLI_USAGE,
		    "ambiguous user %s: the email of #%lld and the username of #%lld; name one "
		    "by #ID%s",
		    spec, (long long)out->id, (long long)other.id, how);
	else if (st == STORE_NOT_FOUND && by_name == STORE_OK)
		rc = fail(CLI_USAGE,
		    "no user has the email %s; #%lld has it as username: name it by #ID%s", spec,
		    (long long)other.id, how);
	else if (st == STORE_NOT_FOUND)
		rc = fail(CLI_NOT_FOUND, "no such user: %s", spec);
	if (rc != CLI_OK)
		store_user_clear(out);
	store_user_clear(&other);
	return rc;
}

/*
 * Finds the user `spec` names, compared on the normalised keys; prints why
 * not and returns the exit code. AS_ANY: "#ID", an email when `spec` is
 * email-shaped (email_or_refuse), else a username. AS_USERNAME and AS_EMAIL
 * look in that column only.
 */
static int
find_user(struct store *s, const char *spec, enum user_as as, bool user_cmd, struct store_user *out)
{
	char *ek = as != AS_USERNAME ? key_of(spec, true) : NULL;
	char *uk = as != AS_EMAIL ? key_of(spec, false) : NULL;
	enum store_status st;
	int rc;

	if (as == AS_ANY && spec[0] == '#') {
		char *end;
		long long id = strtoll(spec + 1, &end, 10);

		st = *end == '\0' && id > 0 ? get_by(s, id, NULL, NULL, out) : STORE_NOT_FOUND;
	} else if (as == AS_ANY && ek != NULL) {
		rc = email_or_refuse(s, spec, ek, uk, user_cmd, out);
		goto out;
	} else {
		st = as == AS_EMAIL ? get_by(s, 0, NULL, ek, out) : get_by(s, 0, uk, NULL, out);
	}
	rc = store_exit(st);
	if (st == STORE_NOT_FOUND)
		fail(rc, "no such user: %s", spec);
	else if (st != STORE_OK)
		fail(rc, "cannot read %s: %s", spec, store_status_str(st));
out:
	free(ek);
	free(uk);
	return rc;
}

/* Reads the password: first line of stdin, or twice from the terminal without echo. */
static char *
read_password(const struct config *cfg, size_t *len)
{
	char buf[ACCT_PASSWORD_MAX_BYTES + 3], again[sizeof(buf)];
	struct termios old, quiet;
	FILE *tty = NULL;
	char *pw = NULL;
	bool ok;

	if (cfg->password_stdin) {
		ok = fgets(buf, sizeof(buf), stdin) != NULL;
	} else {
		tty = fopen("/dev/tty", "r+");
		if (tty == NULL || tcgetattr(fileno(tty), &old) != 0) {
			fail(CLI_USAGE,
			    "no terminal to read the password from; use --password-stdin");
			goto out;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &quiet);
		fputs("Password: ", tty);
		ok = fgets(buf, sizeof(buf), tty) != NULL;
		fputs("\nPassword (again): ", tty);
		ok = ok && fgets(again, sizeof(again), tty) != NULL && strcmp(buf, again) == 0;
		fputc('\n', tty);
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
		if (!ok)
			fail(CLI_INVALID, "the passwords do not match");
	}
	if (ok) {
		*len = strcspn(buf, "\r\n");
		buf[*len] = '\0';
		pw = xstrdup(buf);
	}
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(again, sizeof(again));
	if (tty != NULL)
		fclose(tty);
	return pw;
}

static json_t *
user_json_new(const struct store_user *u)
{
	return json_pack("{s:I, s:s, s:s, s:b, s:b, s:s, s:s?, s:{s:s, s:s, s:b}}", "id",
	    (json_int_t)u->id, "username", u->username, "email", u->email, "is_active",
	    u->is_active, "is_admin", u->is_admin, "date_joined", u->date_joined, "last_login",
	    u->last_login, "profile", "role", u->role, "bio", u->bio, "can_invite_teachers",
	    u->can_invite_teachers);
}

static void
print_json_new(json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2));

	if (text != NULL)
		puts(text);
	free(text);
	json_decref(doc);
}

static void
print_user(const struct config *cfg, const struct store_user *u)
{
	if (cfg->json) {
		print_json_new(user_json_new(u));
		return;
	}
	printf("id:                  %lld\nusername:            %s\nemail:               %s\n"
	       "role:                %s\nactive:              %s\nadmin:               %s\n"
	       "can_invite_teachers: %s\ndate_joined:         %s\nlast_login:          %s\n",
	    (long long)u->id, u->username, u->email, u->role, u->is_active ? "yes" : "no",
	    u->is_admin ? "yes" : "no", u->can_invite_teachers ? "yes" : "no", u->date_joined,
	    u->last_login != NULL ? u->last_login : "never");
}

static void
print_errors(const struct acct_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "roster: %s: %s\n", errs->items[i].field, errs->items[i].message);
}

int
cli_user_create(const struct config *cfg)
{
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct acct_errors errs = {.n = 0};
	struct acct_signup su = {0};
	struct store_user user = {0};
	enum store_invite_why why;
	struct store *s = open_db(cfg);
	char hash[RCRYPTO_HASH_MAX];
	size_t pwlen = 0;
	char *pw = NULL;
	int rc = CLI_FAILURE;
	enum store_status st;

	if (s == NULL)
		goto out;
	pw = read_password(cfg, &pwlen);
	if (pw == NULL) {
		rc = CLI_USAGE;
		goto out;
	}
	if (acct_signup_validate(&(struct acct_signup_input){.username = cfg->arg,
	                             .username_len = strlen(cfg->arg),
	                             .email = cfg->email,
	                             .email_len = strlen(cfg->email),
	                             .password = pw,
	                             .password_len = pwlen,
	                             .role = cfg->role,
	                             .bio = cfg->bio,
	                             .bio_len = cfg->bio != NULL ? strlen(cfg->bio) : 0},
	        &su, &errs) != ACCT_OK) {
		print_errors(&errs);
		rc = CLI_INVALID;
		goto out;
	}
	if (rcrypto_pwhash(su.password, su.password_len, &cost, hash) != 0) {
		fail(CLI_FAILURE, "password hashing failed");
		goto out;
	}
	audit_arm_new(s, STORE_AUDIT_USER_CREATED, 0,
	    json_pack("{s:s, s:b, s:b}", "role", su.role, "admin", cfg->admin,
	        "can_invite_teachers", cfg->can_invite));
	st = store_user_create(s,
	    &(struct store_new_user){.username = su.username,
	        .username_key = su.username_key,
	        .username_skeleton = su.username_skeleton,
	        .username_skeleton_cased = su.username_skeleton_cased,
	        .email = su.email,
	        .email_key = su.email_key,
	        .email_username_key = su.email_username_key,
	        .password_hash = hash,
	        .role = su.role,
	        .bio = su.bio,
	        .can_invite_teachers = cfg->can_invite,
	        .is_admin = cfg->admin},
	    &user, &why);
	sodium_memzero(hash, sizeof(hash));
	rc = store_exit(st);
	if (st == STORE_CONFLICT_USERNAME)
		fail(rc, "Username already taken.");
	else if (st == STORE_CONFLICT_EMAIL)
		fail(rc, "Email already registered.");
	else if (st != STORE_OK)
		fail(rc, "cannot create the user: %s", store_status_str(st));
	else
		print_user(cfg, &user);
out:
	if (pw != NULL)
		sodium_memzero(pw, pwlen);
	free(pw);
	acct_signup_clear(&su);
	store_user_clear(&user);
	store_close(s);
	return rc;
}

int
cli_user_list(const struct config *cfg)
{
	struct store_users all = {0};
	struct store *s = open_db(cfg);
	enum store_status st;
	json_t *items;

	if (s == NULL)
		return CLI_FAILURE;
	st = store_user_list(s, &all);
	store_close(s);
	if (st != STORE_OK)
		return fail(store_exit(st), "cannot list users: %s", store_status_str(st));
	if (cfg->json) {
		items = json_array();
		for (size_t i = 0; i < all.n; i++)
			json_array_append_new(items, user_json_new(&all.items[i]));
		print_json_new(json_pack("{s:o}", "users", items));
	} else {
		printf("%-6s %-20s %-30s %-9s %-6s %-5s %-10s %s\n", "ID", "USERNAME", "EMAIL",
		    "ROLE", "ACTIVE", "ADMIN", "CAN_INVITE", "JOINED");
		for (size_t i = 0; i < all.n; i++) {
			const struct store_user *u = &all.items[i];

			printf("%-6lld %-20s %-30s %-9s %-6s %-5s %-10s %s\n", (long long)u->id,
			    u->username, u->email, u->role, u->is_active ? "yes" : "no",
			    u->is_admin ? "yes" : "no", u->can_invite_teachers ? "yes" : "no",
			    u->date_joined);
		}
	}
	store_users_clear(&all);
	return CLI_OK;
}

/* Opens the database and finds the user `spec` names; prints why not. */
static struct store *
open_user_as(const struct config *cfg, const char *spec, enum user_as as, bool user_cmd,
    struct store_user *u, int *rc)
{
	struct store *s = open_db(cfg);

	*rc = CLI_FAILURE;
	if (s == NULL)
		return NULL;
	*rc = find_user(s, spec, as, user_cmd, u);
	if (*rc != CLI_OK) {
		store_close(s);
		return NULL;
	}
	return s;
}

/* --by USER of the invite commands. */
static struct store *
open_user(const struct config *cfg, const char *spec, struct store_user *u, int *rc)
{
	return open_user_as(cfg, spec, AS_ANY, false, u, rc);
}

/* The user of `user show|set|set-password|delete`: USER, --username or --email (one). */
static struct store *
open_named_user(const struct config *cfg, struct store_user *u, int *rc)
{
	if (cfg->user_username != NULL)
		return open_user_as(cfg, cfg->user_username, AS_USERNAME, true, u, rc);
	if (cfg->user_email != NULL)
		return open_user_as(cfg, cfg->user_email, AS_EMAIL, true, u, rc);
	return open_user_as(cfg, cfg->arg, AS_ANY, true, u, rc);
}

int
cli_user_show(const struct config *cfg)
{
	struct store_user u = {0};
	int rc;
	struct store *s = open_named_user(cfg, &u, &rc);

	if (s != NULL)
		print_user(cfg, &u);
	store_user_clear(&u);
	store_close(s);
	return rc;
}

/* What `user set` changes, for the audit trail. */
static json_t *
changes_json_new(const struct config *cfg)
{
	json_t *d = json_object();

	if (cfg->role != NULL)
		json_object_set_new(d, "role", json_string(cfg->role));
	if (cfg->set_active >= 0)
		json_object_set_new(d, "active", json_boolean(cfg->set_active));
	if (cfg->set_admin >= 0)
		json_object_set_new(d, "admin", json_boolean(cfg->set_admin));
	if (cfg->set_can_invite >= 0)
		json_object_set_new(d, "can_invite_teachers", json_boolean(cfg->set_can_invite));
	return d;
}

int
cli_user_set(const struct config *cfg)
{
	struct store_user u = {0};
	int rc;
	struct store *s = open_named_user(cfg, &u, &rc);
	enum store_status st;
	int64_t id = u.id;

	if (s == NULL)
		goto out;
	if (cfg->role != NULL && !acct_role_known(cfg->role)) {
		rc = fail(CLI_INVALID, "role: %s", ACCT_MSG_ROLE_INVALID);
		goto out;
	}
	audit_arm_new(s, STORE_AUDIT_USER_UPDATED, id, changes_json_new(cfg));
	st = store_user_update(s, id,
	    &(struct store_user_update){.role = cfg->role,
	        .is_active = cfg->set_active,
	        .is_admin = cfg->set_admin,
	        .can_invite_teachers = cfg->set_can_invite});
	store_user_clear(&u);
	if (st == STORE_OK)
		st = store_user_get(s, &(struct store_user_ref){.id = id}, &u);
	rc = store_exit(st);
	if (st != STORE_OK)
		fail(rc, "cannot update the user: %s", store_status_str(st));
	else
		print_user(cfg, &u);
out:
	store_user_clear(&u);
	store_close(s);
	return rc;
}

int
cli_user_set_password(const struct config *cfg)
{
	const struct rcrypto_cost cost = {cfg->hash_memory_kib, cfg->hash_passes};
	struct acct_errors errs = {.n = 0};
	struct store_user u = {0};
	char hash[RCRYPTO_HASH_MAX];
	size_t pwlen = 0;
	char *pw = NULL;
	int rc;
	struct store *s = open_named_user(cfg, &u, &rc);
	enum store_status st;

	if (s == NULL)
		goto out;
	pw = read_password(cfg, &pwlen);
	if (pw == NULL) {
		rc = CLI_USAGE;
		goto out;
	}
	if (!acct_password_check(pw, pwlen, u.username, u.email, &errs)) {
		print_errors(&errs);
		rc = CLI_INVALID;
		goto out;
	}
	if (rcrypto_pwhash(pw, pwlen, &cost, hash) != 0) {
		rc = fail(CLI_FAILURE, "password hashing failed");
		goto out;
	}
	audit_arm_new(s, STORE_AUDIT_PASSWORD_SET, u.id, NULL);
	st = store_user_update(s, u.id,
	    &(struct store_user_update){
	        .password_hash = hash, .is_active = -1, .is_admin = -1, .can_invite_teachers = -1});
	sodium_memzero(hash, sizeof(hash));
	rc = store_exit(st);
	if (st != STORE_OK)
		fail(rc, "cannot set the password: %s", store_status_str(st));
	else
		printf("password changed for %s; their tokens are revoked\n", u.username);
out:
	if (pw != NULL)
		sodium_memzero(pw, pwlen);
	free(pw);
	store_user_clear(&u);
	store_close(s);
	return rc;
}

int
cli_user_delete(const struct config *cfg)
{
	struct store_user u = {0};
	int rc;
	struct store *s = open_named_user(cfg, &u, &rc);
	enum store_status st;

	if (s != NULL) {
		/* The row outlives the account: it keeps the name that is gone. */
		audit_arm_new(s, STORE_AUDIT_USER_DELETED, u.id,
		    json_pack("{s:s, s:s}", "username", u.username, "email", u.email));
		st = store_user_delete(s, u.id);
		rc = store_exit(st);
		if (st != STORE_OK)
			fail(rc, "cannot delete the user: %s", store_status_str(st));
		else
			printf("deleted user %s (#%lld)\n", u.username, (long long)u.id);
	}
	store_user_clear(&u);
	store_close(s);
	return rc;
}

static json_t *
invitation_json_new(const struct store_invitation *inv)
{
	return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s?}", "id", (json_int_t)inv->id,
	    "inviter", inv->inviter, "email", inv->email, "status", inv->status, "created_at",
	    inv->created_at, "expires_at", inv->expires_at, "accepted_at", inv->accepted_at);
}

int
cli_invite_create(const struct config *cfg)
{
	struct store_invitation inv = {0};
	struct store_user u = {0};
	char *email = NULL, *key = NULL, token[65], hash[65];
	const char *msg = NULL;
	int rc;
	struct store *s = open_user(cfg, cfg->by, &u, &rc);
	enum store_status st;
	json_t *doc;

	if (s == NULL)
		goto out;
	if (!u.can_invite_teachers) {
		rc = fail(
		    CLI_INVALID, "%s cannot invite teachers (can-invite-teachers is off)", cfg->by);
		goto out;
	}
	if (acct_email_normalize(cfg->email, strlen(cfg->email), &email, &key, &msg) != ACCT_OK) {
		rc = fail(CLI_INVALID, "email: %s", msg != NULL ? msg : ACCT_MSG_EMAIL_INVALID);
		goto out;
	}
	rcrypto_random_hex(token, 32);
	rcrypto_sha256_hex(token, 64, hash);
	audit_arm_new(s, STORE_AUDIT_INVITATION_CREATED, u.id, json_pack("{s:s}", "email", email));
	st = store_invite_create(s, u.id, email, key, hash, cfg->invitation_ttl_s, &inv);
	rc = store_exit(st);
	if (st == STORE_CONFLICT_EMAIL)
		fail(rc, "Email already registered.");
	else if (st == STORE_CONFLICT_PENDING)
		fail(rc, "An invitation is already pending for this email.");
	else if (st != STORE_OK)
		fail(rc, "cannot create the invitation: %s", store_status_str(st));
	else if (cfg->json) {
		doc = invitation_json_new(&inv);
		json_object_set_new(doc, "token", json_string(token));
		print_json_new(doc);
	} else {
		printf(
		    "id:         %lld\nemail:      %s\nstatus:     %s\nexpires_at: %s\ntoken: %s\n",
		    (long long)inv.id, inv.email, inv.status, inv.expires_at, token);
	}
out:
	sodium_memzero(token, sizeof(token));
	free(email);
	free(key);
	store_invitation_clear(&inv);
	store_user_clear(&u);
	store_close(s);
	return rc;
}

int
cli_invite_list(const struct config *cfg)
{
	struct store_invitations all = {0};
	struct store_user u = {0};
	int rc = CLI_OK;
	struct store *s = cfg->by != NULL ? open_user(cfg, cfg->by, &u, &rc) : open_db(cfg);
	enum store_status st;
	json_t *items;

	if (s == NULL)
		return rc != CLI_OK ? rc : CLI_FAILURE;
	st = store_invite_list(s, u.id, &all);
	store_user_clear(&u);
	store_close(s);
	if (st != STORE_OK)
		return fail(store_exit(st), "cannot list invitations: %s", store_status_str(st));
	if (cfg->json) {
		items = json_array();
		for (size_t i = 0; i < all.n; i++)
			json_array_append_new(items, invitation_json_new(&all.items[i]));
		print_json_new(json_pack("{s:o}", "invitations", items));
	} else {
		printf("%-6s %-20s %-30s %-9s %s\n", "ID", "INVITER", "EMAIL", "STATUS", "EXPIRES");
		for (size_t i = 0; i < all.n; i++)
			printf("%-6lld %-20s %-30s %-9s %s\n", (long long)all.items[i].id,
			    all.items[i].inviter, all.items[i].email, all.items[i].status,
			    all.items[i].expires_at);
	}
	store_invitations_clear(&all);
	return CLI_OK;
}

int
cli_invite_revoke(const struct config *cfg)
{
	struct store *s;
	enum store_status st;
	char *end;
	long long id = strtoll(cfg->arg, &end, 10);

	if (*end != '\0' || id <= 0)
		return fail(CLI_USAGE, "not an invitation id: %s", cfg->arg);
	s = open_db(cfg);
	if (s == NULL)
		return CLI_FAILURE;
	audit_arm_new(
	    s, STORE_AUDIT_INVITATION_REVOKED, 0, json_pack("{s:I}", "invitation_id", id));
	st = store_invite_revoke(s, id, 0);
	store_close(s);
	if (st == STORE_NOT_FOUND)
		return fail(CLI_NOT_FOUND, "no such invitation: %s", cfg->arg);
	if (st == STORE_CONFLICT)
		return fail(CLI_CONFLICT, "invitation %s is not pending", cfg->arg);
	if (st != STORE_OK)
		return fail(store_exit(st), "cannot revoke: %s", store_status_str(st));
	printf("revoked invitation %s\n", cfg->arg);
	return CLI_OK;
}

/*
 * roster mail test ADDRESS: one mail of the `test` kind (its templates, with
 * --mail-templates) through --mail-url, as the delivery loop sends mails, and
 * the transport's answer printed (the server's final reply, or the file
 * written). Exit 0 sent, 1 ADDRESS refused, 5 not sent for now (connection,
 * timeout, 4xx, disk; or the templates or transport cannot be used), 6
 * refused for good (5xx).
 */
int
cli_mail_test(const struct config *cfg)
{
	/* No --public-url here: the test mail names no link. */
	const struct mail_site site = {cfg->site_name, "", cfg->mail_from};
	struct mail_templates *tpl = NULL;
	struct mail_transport *t = NULL;
	struct mail_message m = {0};
	struct mail_result r = {0};
	char url[512], err[512];
	int rc = CLI_FAILURE;

	mail_url_redacted(cfg->mail_url, url, sizeof(url));
	if (!mail_address_ok(cfg->arg))
		return fail(
		    CLI_INVALID, "mail test: not an address roster sends to: '%s'", cfg->arg);
	tpl = mail_templates_load(cfg->mail_templates, err, sizeof(err));
	if (tpl == NULL) {
		fail(CLI_FAILURE, "mail test: %s", err);
		goto out;
	}
	if (mail_compose(tpl, MAIL_KIND_TEST, NULL, &site, cfg->arg, &m, err, sizeof(err)) != 0) {
		fail(CLI_FAILURE, "mail test: %s", err);
		goto out;
	}
	t = mail_transport_open(cfg->mail_url, err, sizeof(err));
	if (t == NULL) {
		fail(CLI_FAILURE, "mail test: cannot use %s: %s", url, err);
		goto out;
	}
	mail_send(t, &m, &r);
	switch (r.outcome) {
	case MAIL_SENT:
		printf("sent to %s via %s: %s\n", cfg->arg, url, r.detail);
		rc = CLI_OK;
		break;
	case MAIL_RETRY:
		rc = fail(CLI_FAILURE,
		    "mail test: not sent (temporary, would be retried) via %s: %s", url, r.detail);
		break;
	default:
		rc = fail(CLI_REFUSED, "mail test: refused for good via %s: %s", url, r.detail);
		break;
	}
out:
	mail_transport_close(t);
	mail_composed_clear(&m);
	mail_templates_free(tpl);
	return rc;
}

/* One row of the trail as JSON: detail as an object (text the store wrote, so valid JSON). */
static json_t *
audit_json_new(const struct store_audit_row *r)
{
	json_t *detail = json_loads(r->detail, 0, NULL);

	return json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:o}", "id", (json_int_t)r->id, "ts",
	    r->ts, "event", r->event, "user_id",
	    r->user_id > 0 ? json_integer((json_int_t)r->user_id) : json_null(), "actor", r->actor,
	    "ip", r->ip != NULL ? json_string(r->ip) : json_null(), "request_id",
	    r->request_id != NULL ? json_string(r->request_id) : json_null(), "detail",
	    detail != NULL ? detail : json_object());
}

/* The account --user names: "#ID" as it is (a deleted account keeps its rows), else by key. */
static int
audit_user(struct store *s, const char *spec, int64_t *id)
{
	struct store_user u = {0};
	int rc;

	if (spec[0] == '#') {
		char *end;
		long long v = strtoll(spec + 1, &end, 10);

		if (*end != '\0' || v <= 0)
			return fail(CLI_USAGE, "not a user id: %s", spec);
		*id = v;
		return CLI_OK;
	}
	rc = find_user(s, spec, AS_ANY, false, &u);
	*id = u.id;
	store_user_clear(&u);
	return rc;
}

int
cli_audit(const struct config *cfg)
{
	struct store_audit_filter f = {.event = cfg->audit_event, .limit = (int)cfg->audit_limit};
	struct store_audit_rows rows = {0};
	enum store_audit_event ev;
	struct store *s = NULL;
	enum store_status st;
	int rc = CLI_OK;

	if (cfg->audit_event != NULL && !store_audit_event_parse(cfg->audit_event, &ev))
		return fail(
		    CLI_USAGE, "unknown event: %s (docs/security.md lists them)", cfg->audit_event);
	if (cfg->audit_since != NULL) {
		f.since = config_parse_since(cfg->audit_since, (long long)time(NULL));
		if (f.since <= 0)
			return fail(CLI_USAGE,
			    "--since: not a duration (1h, 7d) or an RFC 3339 time: %s",
			    cfg->audit_since);
	}
	s = open_db(cfg);
	if (s == NULL)
		return CLI_FAILURE;
	if (cfg->audit_user != NULL)
		rc = audit_user(s, cfg->audit_user, &f.user_id);
	if (rc != CLI_OK)
		goto out;
	st = store_audit_list(s, &f, &rows);
	if (st != STORE_OK) {
		rc = fail(store_exit(st), "cannot read the audit trail: %s", store_status_str(st));
		goto out;
	}
	if (!cfg->json)
		printf("%-27s %-24s %-8s %-22s %-39s %s\n", "TIME", "EVENT", "USER", "ACTOR", "IP",
		    "DETAIL");
	for (size_t i = 0; i < rows.n; i++) {
		const struct store_audit_row *r = &rows.items[i];
		char user[24] = "-";
		json_t *doc;
		char *line;

		if (!cfg->json) {
			if (r->user_id > 0)
				snprintf(user, sizeof(user), "#%lld", (long long)r->user_id);
			printf("%-27s %-24s %-8s %-22s %-39s %s\n", r->ts, r->event, user, r->actor,
			    r->ip != NULL ? r->ip : "-", r->detail);
			continue;
		}
		doc = audit_json_new(r);
		line = json_dumps(doc, JSON_COMPACT);
		if (line != NULL)
			puts(line);
		free(line);
		json_decref(doc);
	}
out:
	store_audit_rows_clear(&rows);
	store_close(s);
	return rc;
}

/* ---- the outbox: mail list, mail show, mail retry ---- */

/* One mail as JSON: headers and state; the outbox holds no token, so none can show. */
static json_t *
mail_json_new(const struct store_mail *m)
{
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:i, s:s?, s:s?, s:s?, s:s}", "id",
	    (json_int_t)m->id, "kind", m->kind, "to", m->to, "status", m->status, "attempts",
	    m->attempts, "next_attempt_at", m->next_attempt_at, "last_error", m->last_error,
	    "sent_at", m->sent_at, "created_at", m->created_at);

	json_object_set_new(o, "user_id", m->user_id > 0 ? json_integer(m->user_id) : json_null());
	json_object_set_new(o, "invitation_id",
	    m->invitation_id > 0 ? json_integer(m->invitation_id) : json_null());
	return o;
}

#define MAIL_LIST_MAX 1000

int
cli_mail_list(const struct config *cfg)
{
	struct store_mails all = {0};
	struct store *s = open_db(cfg);
	enum store_status st;
	json_t *items;

	if (s == NULL)
		return CLI_FAILURE;
	st = store_mail_list(
	    s, cfg->mail_status != NULL ? cfg->mail_status : "", MAIL_LIST_MAX, &all);
	store_close(s);
	if (st != STORE_OK)
		return fail(store_exit(st), "cannot list mails: %s", store_status_str(st));
	if (cfg->json) {
		items = json_array();
		for (size_t i = 0; i < all.n; i++)
			json_array_append_new(items, mail_json_new(&all.items[i]));
		print_json_new(json_pack("{s:o}", "mails", items));
	} else {
		printf("%-6s %-20s %-30s %-8s %-4s %s\n", "ID", "KIND", "TO", "STATUS", "TRY",
		    "LAST ERROR");
		for (size_t i = 0; i < all.n; i++)
			printf("%-6lld %-20s %-30s %-8s %-4d %s\n", (long long)all.items[i].id,
			    all.items[i].kind, all.items[i].to, all.items[i].status,
			    all.items[i].attempts,
			    all.items[i].last_error != NULL ? all.items[i].last_error : "");
	}
	store_mails_clear(&all);
	return CLI_OK;
}

static bool
mail_id(const struct config *cfg, long long *id)
{
	char *end;

	*id = strtoll(cfg->arg, &end, 10);
	return *end == '\0' && *id > 0;
}

/*
 * The headers `m` has when it is sent, composed now from its templates (with
 * --mail-templates, --site-name, --mail-from): the link is a placeholder, as
 * its token is minted only at send time and is never stored. Subject NULL
 * when the mail cannot be composed (`err` says why).
 */
static void
mail_headers(const struct config *cfg, struct store *s, const struct store_mail *row,
    /* OUT: */ struct mail_message *out, char *err, size_t errlen)
{
	const struct mail_site site = {cfg->site_name, "", cfg->mail_from};
	struct mail_templates *tpl = mail_templates_load(cfg->mail_templates, err, errlen);
	json_t *vars = json_loads(row->payload != NULL ? row->payload : "{}", 0, NULL);
	enum mail_kind kind;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(vars)) {
		json_decref(vars);
		vars = json_object();
	}
	json_object_set_new(vars, "link", json_string("(a link minted when the mail is sent)"));
	if (row->user_id > 0) {
		struct store_user u = {0};

		if (store_user_get(s, &(struct store_user_ref){row->user_id, NULL, NULL}, &u) ==
		    STORE_OK)
			json_object_set_new(vars, row->invitation_id > 0 ? "inviter" : "username",
			    json_string(u.username));
		store_user_clear(&u);
	}
	if (tpl != NULL && !mail_kind_parse(row->kind, &kind))
		snprintf(err, errlen, "unknown kind %s", row->kind);
	else if (tpl != NULL)
		(void)mail_compose(tpl, kind, vars, &site, row->to, out, err, errlen);
	json_decref(vars);
	mail_templates_free(tpl);
}

int
cli_mail_show(const struct config *cfg)
{
	struct store_mail m = {0};
	struct mail_message msg = {0};
	char err[256] = "";
	struct store *s;
	enum store_status st;
	long long id;

	if (!mail_id(cfg, &id))
		return fail(CLI_USAGE, "not a mail id: %s", cfg->arg);
	s = open_db(cfg);
	if (s == NULL)
		return CLI_FAILURE;
	st = store_mail_get(s, id, &m);
	if (st == STORE_OK)
		mail_headers(cfg, s, &m, &msg, err, sizeof(err));
	store_close(s);
	if (st == STORE_NOT_FOUND)
		return fail(CLI_NOT_FOUND, "no such mail: %s", cfg->arg);
	if (st != STORE_OK)
		return fail(store_exit(st), "cannot read the mail: %s", store_status_str(st));
	if (cfg->json) {
		json_t *doc = mail_json_new(&m);

		json_object_set_new(doc, "from", json_string(cfg->mail_from));
		json_object_set_new(
		    doc, "subject", msg.subject != NULL ? json_string(msg.subject) : json_null());
		print_json_new(doc);
	} else {
		printf("from:        %s\nsubject:     %s\n", cfg->mail_from,
		    msg.subject != NULL ? msg.subject : err);
	}
	if (!cfg->json)
		printf("id:          %lld\nkind:        %s\nto:          %s\nstatus:      %s\n"
		       "attempts:    %d\ncreated_at:  %s\nnext_try:    %s\nsent_at:     %s\n"
		       "last_error:  %s\n",
		    (long long)m.id, m.kind, m.to, m.status, m.attempts, m.created_at,
		    m.next_attempt_at != NULL ? m.next_attempt_at : "-",
		    m.sent_at != NULL ? m.sent_at : "-", m.last_error != NULL ? m.last_error : "-");
	mail_composed_clear(&msg);
	store_mail_clear(&m);
	return CLI_OK;
}

int
cli_mail_retry(const struct config *cfg)
{
	struct store *s;
	enum store_status st;
	long long id;

	if (!mail_id(cfg, &id))
		return fail(CLI_USAGE, "not a mail id: %s", cfg->arg);
	s = open_db(cfg);
	if (s == NULL)
		return CLI_FAILURE;
	st = store_mail_requeue(s, id);
	store_close(s);
	if (st == STORE_NOT_FOUND)
		return fail(CLI_NOT_FOUND, "no such mail: %s", cfg->arg);
	if (st == STORE_CONFLICT)
		return fail(CLI_CONFLICT, "mail %s is sent or being sent", cfg->arg);
	if (st != STORE_OK)
		return fail(
		    store_exit(st), "cannot queue the mail again: %s", store_status_str(st));
	printf("mail %s queued again; a running roster serve sends it\n", cfg->arg);
	return CLI_OK;
}
