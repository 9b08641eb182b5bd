/* Configuration: one option table, env then flags; see config.h. */
#include "config.h"
#include "log.h"
#include "store/store.h"
#include "accounts/acct.h"
#include "http/proxy.h"
#include "mail/mail.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type {
	OPT_PROXIES,
	OPT_STR,
	OPT_UINT,
	OPT_FLAG,
	OPT_TRISTATE,
	OPT_DURATION,
	OPT_LOGLEVEL,
	OPT_BIND,
	OPT_DB,
	OPT_ROLES,
	OPT_MAIL_URL, /* may hold a password: never quoted back */
	OPT_MAIL_ADDR
};

struct opt {
	const char *flag; /* without the leading "--" */
	const char *env;
	enum opt_type type;
	size_t offset;
	unsigned cmds;
	unsigned min, max; /* OPT_UINT bounds */
	const char *metavar;
	const char *help;
};

#define ADMIN                                                                                      \
	(CONFIG_USER_CREATE | CONFIG_USER_LIST | CONFIG_USER_SHOW | CONFIG_USER_SET |              \
	    CONFIG_USER_PASSWORD | CONFIG_USER_DELETE | CONFIG_INVITE_CREATE |                     \
	    CONFIG_INVITE_LIST | CONFIG_INVITE_REVOKE)
#define MAIL_CMDS (CONFIG_MAIL_LIST | CONFIG_MAIL_SHOW | CONFIG_MAIL_RETRY)
#define ALL                                                                                        \
	(CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_CHECK | ADMIN | MAIL_CMDS | CONFIG_AUDIT |         \
	    CONFIG_IMPORT_DJANGO)
#define HASHING (CONFIG_SERVE | CONFIG_USER_CREATE | CONFIG_USER_PASSWORD)
#define PRINTS_JSON                                                                                \
	(CONFIG_USER_CREATE | CONFIG_USER_LIST | CONFIG_USER_SHOW | CONFIG_USER_SET |              \
	    CONFIG_INVITE_CREATE | CONFIG_INVITE_LIST | CONFIG_MAIL_LIST | CONFIG_MAIL_SHOW)
/* Commands that take one existing user: USER, --username NAME or --email ADDR. */
#define USER_REF (CONFIG_USER_SHOW | CONFIG_USER_SET | CONFIG_USER_PASSWORD | CONFIG_USER_DELETE)
#define OFF(f)   offsetof(struct config, f)
#define MAILING  (CONFIG_SERVE | CONFIG_MAIL_TEST | CONFIG_MAIL_SHOW)

static const struct opt opts[] = {
    {"db", "ROSTER_DB", OPT_DB, OFF(db), ALL, 0, 0, "URL",
        "database: sqlite:PATH or postgresql://... (default sqlite:var/roster.db)"},
    {"bind", "ROSTER_BIND", OPT_BIND, OFF(bind), CONFIG_SERVE, 0, 0, "HOST:PORT",
        "address to listen on (default 127.0.0.1:8000; port 0 picks a free one)"},
    {"metrics-bind", "ROSTER_METRICS_BIND", OPT_BIND, OFF(metrics_bind), CONFIG_SERVE, 0, 0,
        "HOST:PORT",
        "serve GET /metrics only on this address, and not on --bind (default: unset, "
        "/metrics on --bind)"},
    {"threads", "ROSTER_THREADS", OPT_UINT, OFF(threads), CONFIG_SERVE, 1, 256, "N",
        "HTTP I/O threads (default: number of cores)"},
    {"reuse-port", "ROSTER_REUSE_PORT", OPT_FLAG, OFF(reuse_port), CONFIG_SERVE, 0, 0, NULL,
        "let several processes bind the same port (SO_REUSEPORT)"},
    {"hash-workers", "ROSTER_HASH_WORKERS", OPT_UINT, OFF(hash_workers), CONFIG_SERVE, 1, 256, "N",
        "password-hashing threads (default: number of cores)"},
    {"hash-queue", "ROSTER_HASH_QUEUE", OPT_UINT, OFF(hash_queue), CONFIG_SERVE, 1, 65536, "N",
        "requests waiting for a hashing thread before 503 (default 256)"},
    {"db-workers", "ROSTER_DB_WORKERS", OPT_UINT, OFF(db_workers), CONFIG_SERVE, 1, 256, "N",
        "database threads: every database read and write of a request (default: 2 x cores)"},
    {"db-queue", "ROSTER_DB_QUEUE", OPT_UINT, OFF(db_queue), CONFIG_SERVE, 1, 65536, "N",
        "requests waiting for a database thread before 503 (default 256)"},
    {"db-queue-timeout", "ROSTER_DB_QUEUE_TIMEOUT", OPT_DURATION, OFF(db_queue_timeout_s),
        CONFIG_SERVE, 0, 0, "D",
        "a request that waited this long for a database thread gets 503; 0 = no bound (default "
        "5s)"},
    {"hash-memory", "ROSTER_HASH_MEMORY_KIB", OPT_UINT, OFF(hash_memory_kib), HASHING, 8, 4194304,
        "KIB", "argon2id memory per hash in KiB (default 19456)"},
    {"hash-passes", "ROSTER_HASH_PASSES", OPT_UINT, OFF(hash_passes), HASHING, 1, 64, "N",
        "argon2id passes (default 2)"},
    {"self-register-roles", "ROSTER_SELF_REGISTER_ROLES", OPT_ROLES, OFF(self_register_roles),
        CONFIG_SERVE, 0, 0, "LIST", "roles open to self-registration (default explorer)"},
    {"trusted-proxies", "ROSTER_TRUSTED_PROXIES", OPT_PROXIES, OFF(trusted_proxies), CONFIG_SERVE,
        0, 0, "LIST",
        "proxies whose X-Forwarded-For is believed: addresses or CIDRs (default none)"},
    {"rate-limits", "ROSTER_RATE_LIMITS", OPT_FLAG, OFF(rate_limits), CONFIG_SERVE, 0, 0, "on|off",
        "enforce the rate limits below, shared by all instances (default on)"},
    {"limit-register-per-ip", "ROSTER_LIMIT_REGISTER_PER_IP", OPT_UINT, OFF(limit_register_ip),
        CONFIG_SERVE, 1, 1000000, "N",
        "registration attempts per IP per 10 minutes, refused ones too (default 600)"},
    {"limit-accounts-per-ip", "ROSTER_LIMIT_ACCOUNTS_PER_IP", OPT_UINT, OFF(limit_accounts_ip),
        CONFIG_SERVE, 1, 1000000, "N", "accounts created per IP per hour (default 300)"},
    {"limit-login-per-ip", "ROSTER_LIMIT_LOGIN_PER_IP", OPT_UINT, OFF(limit_login_ip), CONFIG_SERVE,
        1, 1000000, "N", "login attempts per IP per minute (default 300)"},
    {"limit-login-failures", "ROSTER_LIMIT_LOGIN_FAILURES", OPT_UINT, OFF(limit_login_failures),
        CONFIG_SERVE, 1, 1000000, "N",
        "failed logins per account (or unknown name) from one IP per 5 minutes (default 5)"},
    {"limit-login-account-failures", "ROSTER_LIMIT_LOGIN_ACCOUNT_FAILURES", OPT_UINT,
        OFF(limit_login_account_failures), CONFIG_SERVE, 1, 1000000, "N",
        "failed logins per account (or unknown name) from all IPs per window (default 50)"},
    {"limit-login-account-window", "ROSTER_LIMIT_LOGIN_ACCOUNT_WINDOW", OPT_DURATION,
        OFF(limit_login_account_window_s), CONFIG_SERVE, 1, 3600, "D",
        "window of --limit-login-account-failures, the longest lockout it makes; 1s to 1h "
        "(default 1m)"},
    {"limit-invites", "ROSTER_LIMIT_INVITES", OPT_UINT, OFF(limit_invites), CONFIG_SERVE, 1,
        1000000, "N", "invitations per inviter per hour (default 20)"},
    {"token-ttl", "ROSTER_TOKEN_TTL", OPT_DURATION, OFF(token_ttl_s),
        CONFIG_SERVE | CONFIG_IMPORT_DJANGO, 0, 0, "D", "login token lifetime (default 14d)"},
    {"invitation-ttl", "ROSTER_INVITATION_TTL", OPT_DURATION, OFF(invitation_ttl_s),
        CONFIG_SERVE | CONFIG_INVITE_CREATE, 0, 0, "D", "invitation lifetime (default 7d)"},
    {"janitor-interval", "ROSTER_JANITOR_INTERVAL", OPT_DURATION, OFF(janitor_interval_s),
        CONFIG_SERVE, 0, 0, "D",
        "delete ended rate-limit windows, expired tokens and audit rows past retention this "
        "often; 0 = never (default 60s)"},
    {"janitor-batch", "ROSTER_JANITOR_BATCH", OPT_UINT, OFF(janitor_batch), CONFIG_SERVE, 1, 100000,
        "N", "rows the janitor deletes per transaction (default 500)"},
    {"shutdown-timeout", "ROSTER_SHUTDOWN_TIMEOUT", OPT_DURATION, OFF(shutdown_timeout_s),
        CONFIG_SERVE, 0, 0, "D", "time given to in-flight requests on SIGTERM (default 10s)"},
    {"idle-timeout", "ROSTER_IDLE_TIMEOUT", OPT_DURATION, OFF(idle_timeout_s), CONFIG_SERVE, 0, 0,
        "D", "close a connection idle this long (default 30s)"},
    {"head-timeout", "ROSTER_HEAD_TIMEOUT", OPT_DURATION, OFF(head_timeout_s), CONFIG_SERVE, 0, 0,
        "D", "a whole request head within this, however it trickles; 0 = no bound (default 15s)"},
    {"body-timeout", "ROSTER_BODY_TIMEOUT", OPT_DURATION, OFF(body_timeout_s), CONFIG_SERVE, 0, 0,
        "D", "a whole request body within this after its head; 0 = no bound (default 30s)"},
    {"max-connections", "ROSTER_MAX_CONNECTIONS", OPT_UINT, OFF(max_connections), CONFIG_SERVE, 1,
        100000, "N", "open connections at most (default 1024)"},
    {"max-connections-per-ip", "ROSTER_MAX_CONNECTIONS_PER_IP", OPT_UINT,
        OFF(max_connections_per_ip), CONFIG_SERVE, 0, 100000, "N",
        "open connections per client address; 0 = no limit (default 256)"},
    {"body-limit", "ROSTER_BODY_LIMIT", OPT_UINT, OFF(body_limit), CONFIG_SERVE, 256, 1048576,
        "BYTES", "largest request body accepted (default 16384)"},
    {"log-level", "ROSTER_LOG_LEVEL", OPT_LOGLEVEL, OFF(log_level), ALL | CONFIG_MAIL_TEST, 0, 0,
        "LEVEL", "debug, info, warning or error (default info)"},
    {"mail-url", "ROSTER_MAIL_URL", OPT_MAIL_URL, OFF(mail_url), MAILING, 0, 0, "URL",
        "how mails leave: file:DIR (one .eml each), smtp://[user:pass@]host[:port][?starttls="
        "required] or smtps://... (default file:var/mail)"},
    {"mail-from", "ROSTER_MAIL_FROM", OPT_MAIL_ADDR, OFF(mail_from), MAILING, 0, 0, "ADDR",
        "sender address of the mails (default roster@localhost)"},
    {"site-name", "ROSTER_SITE_NAME", OPT_STR, OFF(site_name), MAILING, 0, 0, "TEXT",
        "the site's name in mails and in the pages' titles and headings (default roster)"},
    {"site-css", "ROSTER_SITE_CSS", OPT_STR, OFF(site_css), CONFIG_SERVE, 0, 0, "FILE",
        "a stylesheet that replaces the pages' built-in one (default: built in)"},
    {"mail-templates", "ROSTER_MAIL_TEMPLATES", OPT_STR, OFF(mail_templates), MAILING, 0, 0, "DIR",
        "mail templates that replace the embedded ones: KIND.subject, KIND.txt, KIND.html "
        "(default: none)"},
    {"check", NULL, OPT_FLAG, OFF(migrate_check), CONFIG_MIGRATE, 0, 0, NULL,
        "apply nothing; exit 1 when migrations are pending or the schema is newer and "
        "incompatible"},
    {"email", NULL, OPT_STR, OFF(email), CONFIG_USER_CREATE | CONFIG_INVITE_CREATE, 0, 0, "EMAIL",
        "email address (required)"},
    {"username", NULL, OPT_STR, OFF(user_username), USER_REF, 0, 0, "NAME",
        "the user with this username (instead of USER; also one that looks like an email)"},
    {"email", NULL, OPT_STR, OFF(user_email), USER_REF, 0, 0, "ADDR",
        "the user with this email address (instead of USER)"},
    {"role", NULL, OPT_STR, OFF(role), CONFIG_USER_CREATE | CONFIG_USER_SET, 0, 0, "ROLE",
        "explorer or teacher (create: default explorer)"},
    {"bio", NULL, OPT_STR, OFF(bio), CONFIG_USER_CREATE, 0, 0, "TEXT", "profile bio"},
    {"admin", NULL, OPT_FLAG, OFF(admin), CONFIG_USER_CREATE, 0, 0, NULL,
        "make the user an administrator"},
    {"can-invite-teachers", NULL, OPT_FLAG, OFF(can_invite), CONFIG_USER_CREATE, 0, 0, NULL,
        "let the user invite teachers"},
    {"active", NULL, OPT_TRISTATE, OFF(set_active), CONFIG_USER_SET, 0, 0, "on|off",
        "activate or deactivate (deactivation revokes tokens)"},
    {"admin", NULL, OPT_TRISTATE, OFF(set_admin), CONFIG_USER_SET, 0, 0, "on|off",
        "administrator or not"},
    {"can-invite-teachers", NULL, OPT_TRISTATE, OFF(set_can_invite), CONFIG_USER_SET, 0, 0,
        "on|off", "may invite teachers or not"},
    {"password-stdin", NULL, OPT_FLAG, OFF(password_stdin),
        CONFIG_USER_CREATE | CONFIG_USER_PASSWORD, 0, 0, NULL,
        "read the password from the first line of standard input (else: prompt)"},
    {"by", NULL, OPT_STR, OFF(by), CONFIG_INVITE_CREATE | CONFIG_INVITE_LIST, 0, 0, "USER",
        "the inviting user: #ID, a username or an email (create: required; list: only "
        "theirs)"},
    {"json", NULL, OPT_FLAG, OFF(json), PRINTS_JSON, 0, 0, NULL, "print JSON instead of text"},
    /* The audit trail. */
    {"audit-retention", "ROSTER_AUDIT_RETENTION", OPT_DURATION, OFF(audit_retention_s),
        CONFIG_SERVE, 0, 0, "D",
        "the janitor deletes audit trail rows older than this; 0 = keep them (default 90d)"},
    {"user", NULL, OPT_STR, OFF(audit_user), CONFIG_AUDIT, 0, 0, "USER",
        "only events about this account: #ID, a username or an email"},
    {"event", NULL, OPT_STR, OFF(audit_event), CONFIG_AUDIT, 0, 0, "EVENT",
        "only this event (docs/security.md lists them)"},
    {"since", NULL, OPT_STR, OFF(audit_since), CONFIG_AUDIT, 0, 0, "D|TIME",
        "only events of the last D (1h, 7d) or at or after an RFC 3339 time"},
    {"limit", NULL, OPT_UINT, OFF(audit_limit), CONFIG_AUDIT, 1, 100000, "N",
        "the newest N events at most (default 100)"},
    {"json", NULL, OPT_FLAG, OFF(json), CONFIG_AUDIT, 0, 0, NULL,
        "print one JSON object per line instead of text"},
    /* import django (issue 13) */
    {"from", NULL, OPT_STR, OFF(import_from), CONFIG_IMPORT_DJANGO, 0, 0, "URL",
        "the Django database: sqlite:PATH or postgresql://... (required; only read)"},
    {"dry-run", NULL, OPT_FLAG, OFF(import_dry_run), CONFIG_IMPORT_DJANGO, 0, 0, NULL,
        "read everything and report, write nothing"},
    {"report", NULL, OPT_STR, OFF(import_report), CONFIG_IMPORT_DJANGO, 0, 0, "FILE",
        "write the JSON report (one entry per source row) to FILE"},
    {"on-duplicate", NULL, OPT_STR, OFF(import_on_duplicate), CONFIG_IMPORT_DJANGO, 0, 0, "POLICY",
        "most-recent-login (default: latest last_login wins, ties to the lowest id), oldest "
        "(earliest date_joined), or fail"},
    {"profile-table", NULL, OPT_STR, OFF(import_profile_table), CONFIG_IMPORT_DJANGO, 0, 0, "TABLE",
        "the Django profile table (default users_profile)"},
    {"invitation-table", NULL, OPT_STR, OFF(import_invitation_table), CONFIG_IMPORT_DJANGO, 0, 0,
        "TABLE", "the Django invitation table (default users_teacherinvitation)"},
    {"batch", NULL, OPT_UINT, OFF(import_batch), CONFIG_IMPORT_DJANGO, 1, 1000, "N",
        "accounts written per transaction (default 1000)"},
    /* The account lifecycle by email. */
    {"public-url", "ROSTER_PUBLIC_URL", OPT_STR, OFF(public_url), CONFIG_SERVE, 0, 0, "URL",
        "prefix of the links in mails (default http:// + the bound address)"},
    {"require-verified-email", "ROSTER_REQUIRE_VERIFIED_EMAIL", OPT_FLAG,
        OFF(require_verified_email), CONFIG_SERVE, 0, 0, "on|off",
        "refuse login until the account's email is verified (default off)"},
    {"mail-unknown-accounts", "ROSTER_MAIL_UNKNOWN_ACCOUNTS", OPT_FLAG, OFF(mail_unknown_accounts),
        CONFIG_SERVE, 0, 0, "on|off",
        "answer a reset request for an address without an account with a notice mail "
        "(default off)"},
    {"reset-ttl", "ROSTER_RESET_TTL", OPT_DURATION, OFF(reset_ttl_s), CONFIG_SERVE, 0, 0, "D",
        "password-reset link lifetime, from when its mail is sent (default 1h)"},
    {"verify-ttl", "ROSTER_VERIFY_TTL", OPT_DURATION, OFF(verify_ttl_s), CONFIG_SERVE, 0, 0, "D",
        "verification and email-change link lifetime, from when its mail is sent (default 3d)"},
    {"mail-retention", "ROSTER_MAIL_RETENTION", OPT_DURATION, OFF(mail_retention_s), CONFIG_SERVE,
        0, 0, "D", "the janitor deletes sent and failed mails this old (default 30d)"},
    {"mail-lease", "ROSTER_MAIL_LEASE", OPT_DURATION, OFF(mail_lease_s), CONFIG_SERVE, 0, 0, "D",
        "a mail claimed by an instance that died is sent again after this (default 5m)"},
    {"mail-retry-min", "ROSTER_MAIL_RETRY_MIN", OPT_DURATION, OFF(mail_retry_min_s), CONFIG_SERVE,
        0, 0, "D", "delay before the first retry, doubling per attempt, jittered (default 20s)"},
    {"mail-retry-max", "ROSTER_MAIL_RETRY_MAX", OPT_DURATION, OFF(mail_retry_max_s), CONFIG_SERVE,
        0, 0, "D", "longest delay between retries (default 1h)"},
    {"mail-give-up", "ROSTER_MAIL_GIVE_UP", OPT_DURATION, OFF(mail_give_up_s), CONFIG_SERVE, 0, 0,
        "D", "a mail still failing temporarily this long after it was queued fails (default 3d)"},
    {"mail-poll", "ROSTER_MAIL_POLL", OPT_DURATION, OFF(mail_poll_s), CONFIG_SERVE, 0, 0, "D",
        "how often an idle delivery loop looks for due mails (default 1s)"},
    {"limit-reset-per-email", "ROSTER_LIMIT_RESET_PER_EMAIL", OPT_UINT, OFF(limit_reset_email),
        CONFIG_SERVE, 1, 1000000, "N", "password-reset requests per address per hour (default 5)"},
    {"limit-reset-per-ip", "ROSTER_LIMIT_RESET_PER_IP", OPT_UINT, OFF(limit_reset_ip), CONFIG_SERVE,
        1, 1000000, "N", "password-reset requests per IP per hour (default 60)"},
    {"limit-verify-resend", "ROSTER_LIMIT_VERIFY_RESEND", OPT_UINT, OFF(limit_verify_resend),
        CONFIG_SERVE, 1, 1000000, "N", "verification resends per account per hour (default 5)"},
    {"status", NULL, OPT_STR, OFF(mail_status), CONFIG_MAIL_LIST, 0, 0, "STATUS",
        "only mails in this state: queued, sent or failed"},
};

static const struct config_command commands[] = {
    {CONFIG_SERVE, "serve", NULL, "serve the HTTP API (refuses to start on pending migrations)"},
    {CONFIG_MIGRATE, "migrate", NULL, "apply pending database migrations"},
    {CONFIG_CHECK, "check", NULL, "check the configuration, the database and its schema"},
    {CONFIG_USER_CREATE, "user create", "USERNAME", "create a user (password never from argv)"},
    {CONFIG_USER_LIST, "user list", NULL, "list users"},
    {CONFIG_USER_SHOW, "user show", "USER",
        "show a user (USER: #ID, a username, or an email; or --username / --email)"},
    {CONFIG_USER_SET, "user set", "USER", "change role, active, admin, can-invite-teachers"},
    {CONFIG_USER_PASSWORD, "user set-password", "USER",
        "set a new password and revoke the user's tokens"},
    {CONFIG_USER_DELETE, "user delete", "USER", "delete a user, profile and tokens"},
    {CONFIG_INVITE_CREATE, "invite create", NULL, "invite a teacher; prints the token once"},
    {CONFIG_INVITE_LIST, "invite list", NULL, "list invitations"},
    {CONFIG_INVITE_REVOKE, "invite revoke", "ID", "revoke a pending invitation"},
    {CONFIG_MAIL_TEST, "mail test", "ADDRESS",
        "send one test mail through --mail-url; print the server's answer or the file"},
    {CONFIG_AUDIT, "audit", NULL,
        "show the audit trail, newest first (--user, --event, --since, --limit, --json)"},
    {CONFIG_IMPORT_DJANGO, "import django", NULL,
        "import a Django database's users, profiles, tokens and invitations (docs/cli.md)"},
    {CONFIG_MAIL_LIST, "mail list", NULL, "list the outbox, newest first"},
    {CONFIG_MAIL_SHOW, "mail show", "ID", "show one mail: headers and status, never a token"},
    {CONFIG_MAIL_RETRY, "mail retry", "ID", "send a failed (or queued) mail again now"},
};

const struct config_command *
config_command_find(int argc, char **argv, int *words)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const char *name = commands[i].name, *sp = strchr(name, ' ');

		if (sp == NULL && argc >= 2 && strcmp(argv[1], name) == 0) {
			*words = 1;
			return &commands[i];
		}
		if (sp != NULL && argc >= 3 && strncmp(argv[1], name, (size_t)(sp - name)) == 0 &&
		    argv[1][sp - name] == '\0' && strcmp(argv[2], sp + 1) == 0) {
			*words = 2;
			return &commands[i];
		}
	}
	return NULL;
}

void
config_print_commands(void)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		char left[64];

		snprintf(left, sizeof(left), "%s%s%s", commands[i].name,
		    commands[i].args ? " " : "", commands[i].args ? commands[i].args : "");
		printf("  %-24s %s\n", left, commands[i].summary);
	}
}

long long
config_parse_duration(const char *s)
{
	static const struct {
		const char *suffix;
		long long seconds;
	} units[] = {{"", 1}, {"s", 1}, {"m", 60}, {"h", 3600}, {"d", 86400}};
	char *end;
	long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	/* The bound applies to the value in seconds, after its unit: expiry times
	 * must stay in the four-digit years the stored RFC 3339 text assumes. */
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (strcmp(end, units[i].suffix) == 0)
			return v <= CONFIG_DURATION_MAX_S / units[i].seconds ? v * units[i].seconds
			                                                     : -1;
	return -1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static long long
days_from_civil(long long y, unsigned m, unsigned d)
{
	long long era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long long)doe - 719468;
}

/* Exactly `n` digits at `s` as a number; -1 otherwise. */
static int
digits(const char *s, int n)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

static long long
parse_rfc3339(const char *s)
{
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y = digits(s, 4), mo = -1, d = -1, h = 0, mi = 0, sec = 0, off = 0;
	const char *p = s + 10;

	if (y >= 0 && s[4] == '-' && s[7] == '-') {
		mo = digits(s + 5, 2);
		d = digits(s + 8, 2);
	}
	if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1])
		return -1;
	if (*p != '\0') {
		if (strlen(p) < 9 || (*p != 'T' && *p != 't' && *p != ' ') || p[3] != ':' ||
		    p[6] != ':')
			return -1;
		h = digits(p + 1, 2);
		mi = digits(p + 4, 2);
		sec = digits(p + 7, 2);
		if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
			return -1;
		p += 9;
		if (*p == '.' && p[1] >= '0' && p[1] <= '9')
			for (p++; *p >= '0' && *p <= '9'; p++)
				; /* whole seconds are enough */
		if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
			off = 0;
		} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
		           digits(p + 1, 2) >= 0 && digits(p + 1, 2) <= 23 &&
		           digits(p + 4, 2) >= 0 && digits(p + 4, 2) <= 59) {
			off =
			    (digits(p + 1, 2) * 60 + digits(p + 4, 2)) * 60 * (*p == '-' ? -1 : 1);
		} else {
			return -1;
		}
	}
	return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec -
	       off;
}

long long
config_parse_since(const char *s, long long now)
{
	long long d = config_parse_duration(s);

	if (d >= 0)
		return now - d;
	if (strlen(s) < 10)
		return -1;
	return parse_rfc3339(s);
}

static int
parse_bind(struct config_addr *c, const char *v)
{
	const char *colon = strrchr(v, ':');
	const char *host = v;
	size_t hlen;
	char *end;
	long port;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - v);
	if (hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(c->host))
		return -1;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '\0' || port < 0 || port > 65535)
		return -1;
	memcpy(c->host, host, hlen);
	c->host[hlen] = '\0';
	c->port = (unsigned)port;
	c->set = true;
	return 0;
}

static bool
parse_bool(const char *v, bool *out)
{
	if (strcmp(v, "1") == 0 || strcmp(v, "on") == 0 || strcmp(v, "true") == 0 ||
	    strcmp(v, "yes") == 0)
		*out = true;
	else if (strcmp(v, "0") == 0 || strcmp(v, "off") == 0 || strcmp(v, "false") == 0 ||
	         strcmp(v, "no") == 0)
		*out = false;
	else
		return false;
	return true;
}

/* Sets one option from a string; -1 when the value is invalid. */
static int
set_opt(struct config *c, const struct opt *o, const char *v)
{
	char *field = (char *)c + o->offset;
	unsigned long n;
	long long d;
	char *end;
	int lvl;

	switch (o->type) {
	case OPT_PROXIES: {
		struct http_proxies p;

		if (http_proxies_parse(v, &p) != 0)
			return -1;
		*(const char **)field = v;
		return 0;
	}
	case OPT_STR:
		*(const char **)field = v;
		return 0;
	case OPT_DB:
		if (!store_url_valid(v))
			return -1;
		*(const char **)field = v;
		return 0;
	case OPT_MAIL_URL:
		if (mail_url_problem(v) != NULL)
			return -1;
		*(const char **)field = v;
		return 0;
	case OPT_MAIL_ADDR:
		if (!mail_address_ok(v))
			return -1;
		*(const char **)field = v;
		return 0;
	case OPT_ROLES:
		if (!acct_role_list_valid(v))
			return -1;
		*(const char **)field = v;
		return 0;
	case OPT_UINT:
		errno = 0;
		n = strtoul(v, &end, 10);
		if (errno != 0 || *end != '\0' || *v < '0' || *v > '9' || n < o->min || n > o->max)
			return -1;
		*(unsigned *)field = (unsigned)n;
		return 0;
	case OPT_FLAG:
		return parse_bool(v, (bool *)field) ? 0 : -1;
	case OPT_TRISTATE: {
		bool b;

		if (!parse_bool(v, &b))
			return -1;
		*(int *)field = b;
		return 0;
	}
	case OPT_DURATION:
		d = config_parse_duration(v);
		if (d < 0 || (o->max > 0 && (d < o->min || d > o->max))) /* max 0: unbounded */
			return -1;
		*(long long *)field = d;
		return 0;
	case OPT_LOGLEVEL:
		lvl = log_level_parse(v);
		if (lvl < 0)
			return -1;
		*(int *)field = lvl;
		return 0;
	case OPT_BIND:
		return parse_bind((struct config_addr *)(void *)field, v);
	}
	return -1;
}

static void
defaults(struct config *c)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned n = cores > 0 ? (unsigned)cores : 1;

	memset(c, 0, sizeof(*c));
	c->db = "sqlite:var/roster.db";
	strcpy(c->bind.host, "127.0.0.1");
	c->bind.port = 8000;
	c->threads = n;
	c->hash_workers = n;
	c->hash_queue = 256;
	c->db_workers = 2 * n;
	c->db_queue = 256;
	c->db_queue_timeout_s = 5;
	c->hash_memory_kib = 19456;
	c->hash_passes = 2;
	c->self_register_roles = "explorer";
	c->trusted_proxies = "";
	c->site_name = "roster";
	c->site_css = NULL;
	c->rate_limits = true;
	c->limit_register_ip = 600;
	c->limit_accounts_ip = 300;
	c->limit_login_ip = 300;
	c->limit_login_failures = 5;
	c->limit_login_account_failures = 50;
	c->limit_login_account_window_s = 60;
	c->limit_invites = 20;
	c->token_ttl_s = 14 * 86400;
	c->import_on_duplicate = "most-recent-login";
	c->import_profile_table = "users_profile";
	c->import_invitation_table = "users_teacherinvitation";
	c->import_batch = 1000;
	c->invitation_ttl_s = 7 * 86400;
	c->shutdown_timeout_s = 10;
	c->janitor_interval_s = 60;
	c->janitor_batch = 500;
	c->idle_timeout_s = 30;
	c->head_timeout_s = 15;
	c->body_timeout_s = 30;
	c->max_connections = 1024;
	c->max_connections_per_ip = 256;
	c->body_limit = 16384;
	c->log_level = RS_LOG_INFO;
	c->set_active = c->set_admin = c->set_can_invite = -1;
	c->mail_url = "file:var/mail";
	c->mail_from = "roster@localhost";
	c->site_name = "roster";
	c->audit_retention_s = 90 * 86400;
	c->audit_limit = 100;
	c->reset_ttl_s = 3600;
	c->verify_ttl_s = 3 * 86400;
	c->mail_retention_s = 30 * 86400;
	c->mail_lease_s = 300;
	c->mail_retry_min_s = 20;
	c->mail_retry_max_s = 3600;
	c->mail_give_up_s = 3 * 86400;
	c->mail_poll_s = 1;
	c->limit_reset_email = 5;
	c->limit_reset_ip = 60;
	c->limit_verify_resend = 5;
}

static void
usage(const struct config_command *cmd)
{
	printf("usage: roster %s%s%s [OPTIONS]\n\n%s.\n\nOptions (flag, environment variable):\n",
	    cmd->name, cmd->args ? " " : "", cmd->args ? cmd->args : "", cmd->summary);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char left[64];

		if ((opts[i].cmds & cmd->cmd) == 0)
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", opts[i].flag, opts[i].metavar ? " " : "",
		    opts[i].metavar ? opts[i].metavar : "");
		printf("  %-26s %s%s%s\n", left, opts[i].help, opts[i].env ? "; " : "",
		    opts[i].env ? opts[i].env : "");
	}
	printf("  %-26s %s\n", "-h, --help", "show this help");
}

static const struct opt *
find_opt(const char *flag, size_t len, enum config_cmd cmd)
{
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if ((opts[i].cmds & cmd) && strlen(opts[i].flag) == len &&
		    strncmp(opts[i].flag, flag, len) == 0)
			return &opts[i];
	return NULL;
}

/* A refused value, quoted unless it is a database URL (which may hold a password). */
static void
bad_value(const char *cmd, const char *what, const struct opt *o, const char *v)
{
	if (o->type == OPT_DB)
		fprintf(stderr,
		    "roster: %s%sinvalid value for %s: %s (the value is not shown: it may hold a "
		    "password)\n",
		    cmd, *cmd != '\0' ? ": " : "", what, store_url_problem(v));
	else if (o->type == OPT_MAIL_URL)
		fprintf(stderr,
		    "roster: %s%sinvalid value for %s: %s (the value is not shown: it may hold a "
		    "password)\n",
		    cmd, *cmd != '\0' ? ": " : "", what, mail_url_problem(v));
	else
		fprintf(stderr, "roster: %s%sinvalid value for %s: '%s'\n", cmd,
		    *cmd != '\0' ? ": " : "", what, v);
}

enum config_result
config_load(struct config *c, const struct config_command *cmd, int argc, char **argv)
{
	const char *name = cmd->name;

	defaults(c);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const char *v = opts[i].env != NULL ? getenv(opts[i].env) : NULL;

		if ((opts[i].cmds & cmd->cmd) == 0 || v == NULL || *v == '\0')
			continue;
		if (set_opt(c, &opts[i], v) != 0) {
			bad_value("", opts[i].env, &opts[i], v);
			return CONFIG_USAGE;
		}
	}
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq, *v;
		const struct opt *o;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(cmd);
			return CONFIG_HELP;
		}
		if (strncmp(arg, "--", 2) != 0) {
			if (cmd->args != NULL && c->arg == NULL) {
				c->arg = arg;
				continue;
			}
			fprintf(stderr, "roster: %s: unexpected argument '%s' (see --help)\n", name,
			    arg);
			return CONFIG_USAGE;
		}
		arg += 2;
		eq = strchr(arg, '=');
		o = find_opt(arg, eq != NULL ? (size_t)(eq - arg) : strlen(arg), cmd->cmd);
		if (o == NULL) {
			fprintf(stderr, "roster: %s: unknown option '%s' (see --help)\n", name,
			    argv[i]);
			return CONFIG_USAGE;
		}
		bool b;

		if (eq != NULL)
			v = eq + 1;
		else if (o->type == OPT_FLAG && i + 1 < argc && parse_bool(argv[i + 1], &b))
			v = argv[++i]; /* --flag on|off */
		else if (o->type == OPT_FLAG)
			v = "1";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "roster: %s: option --%s needs a value\n", name, o->flag);
			return CONFIG_USAGE;
		}
		if (set_opt(c, o, v) != 0) {
			char flag[80];

			snprintf(flag, sizeof(flag), "--%s", o->flag);
			bad_value(name, flag, o, v);
			return CONFIG_USAGE;
		}
	}
	if (cmd->cmd & USER_REF) {
		int refs = (c->arg != NULL) + (c->user_username != NULL) + (c->user_email != NULL);

		if (refs != 1) {
			fprintf(stderr,
			    "roster: %s: %s one of USER, --username NAME or --email ADDR (see "
			    "--help)\n",
			    name, refs == 0 ? "missing" : "give only");
			return CONFIG_USAGE;
		}
	} else if (cmd->args != NULL && c->arg == NULL) {
		fprintf(stderr, "roster: %s: missing %s (see --help)\n", name, cmd->args);
		return CONFIG_USAGE;
	}
	if ((cmd->cmd & (CONFIG_USER_CREATE | CONFIG_INVITE_CREATE)) && c->email == NULL) {
		fprintf(stderr, "roster: %s: missing --email (see --help)\n", name);
		return CONFIG_USAGE;
	}
	if (cmd->cmd == CONFIG_SERVE && (c->mail_lease_s < 1 || c->mail_poll_s < 1)) {
		fprintf(stderr, "roster: serve: --mail-lease and --mail-poll take at least 1s\n");
		return CONFIG_USAGE;
	}
	if (cmd->cmd == CONFIG_MAIL_LIST && c->mail_status != NULL &&
	    strcmp(c->mail_status, "queued") != 0 && strcmp(c->mail_status, "sent") != 0 &&
	    strcmp(c->mail_status, "failed") != 0) {
		fprintf(stderr, "roster: mail list: --status takes queued, sent or failed\n");
		return CONFIG_USAGE;
	}
	if (cmd->cmd == CONFIG_INVITE_CREATE && c->by == NULL) {
		fprintf(stderr, "roster: %s: missing --by (see --help)\n", name);
		return CONFIG_USAGE;
	}
	return CONFIG_OK;
}
