/*
 * Configuration: defaults, then ROSTER_* environment variables, then flags.
 * One option table drives parsing, --help and the README's list.
 */
#ifndef ROSTER_CONFIG_H
#define ROSTER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum config_cmd {
	CONFIG_SERVE = 1 << 0,
	CONFIG_MIGRATE = 1 << 1,
	CONFIG_CHECK = 1 << 2,
	CONFIG_USER_CREATE = 1 << 3,
	CONFIG_USER_LIST = 1 << 4,
	CONFIG_USER_SHOW = 1 << 5,
	CONFIG_USER_SET = 1 << 6,
	CONFIG_USER_PASSWORD = 1 << 7,
	CONFIG_USER_DELETE = 1 << 8,
	CONFIG_INVITE_CREATE = 1 << 9,
	CONFIG_INVITE_LIST = 1 << 10,
	CONFIG_INVITE_REVOKE = 1 << 11,
	CONFIG_MAIL_TEST = 1 << 12, /* roster mail test ADDRESS */
	/* The outbox's operator commands (cli.c). */
	CONFIG_MAIL_LIST = 1 << 20,
	CONFIG_MAIL_SHOW = 1 << 21,
	CONFIG_MAIL_RETRY = 1 << 22,
	CONFIG_AUDIT = 1 << 24,         /* roster audit */
	CONFIG_IMPORT_DJANGO = 1 << 25, /* roster import django */
};

/* A command of the binary: its words ("user create"), positional arguments, help. */
struct config_command {
	enum config_cmd cmd;
	const char *name;
	const char *args; /* synopsis of the positionals, e.g. "USER"; NULL: none */
	const char *summary;
};

/* The command named by argv[1] (and argv[2] for two-word commands), or NULL. */
const struct config_command *config_command_find(int argc, char **argv, int *words);

/* Prints the list of commands (for `roster --help`). */
void config_print_commands(void);

/* A HOST:PORT option (`[v6]:port` too). */
struct config_addr {
	char host[256];
	unsigned port;
	bool set; /* given on the command line or in the environment */
};

struct config {
	const char *db;
	struct config_addr bind; /* --bind */
	struct config_addr
	    metrics_bind; /* --metrics-bind: /metrics only there; unset: with the API */
	unsigned threads;
	bool reuse_port;
	unsigned hash_workers;
	unsigned hash_queue;
	unsigned db_workers;
	unsigned db_queue;
	long long db_queue_timeout_s; /* a database job that waited longer: 503 */
	unsigned hash_memory_kib;
	unsigned hash_passes;
	const char *self_register_roles;
	const char *trusted_proxies;
	bool rate_limits;
	unsigned limit_register_ip;             /* attempts per IP per 10 minutes */
	unsigned limit_accounts_ip;             /* accounts created per IP per hour */
	unsigned limit_login_ip;                /* login attempts per IP per minute */
	unsigned limit_login_failures;          /* failed logins per (account, IP) per 5 minutes */
	unsigned limit_login_account_failures;  /* failed logins per account, all IPs, per window */
	long long limit_login_account_window_s; /* that window (and the longest lockout it makes) */
	unsigned limit_invites; /* invitations per inviter per hour */ /* comma-separated addresses
	                                                                  or IPv4/IPv6 CIDRs */
	long long token_ttl_s;
	long long invitation_ttl_s;
	long long shutdown_timeout_s;
	long long janitor_interval_s; /* 0: no janitor */
	unsigned janitor_batch;
	long long idle_timeout_s;
	long long head_timeout_s;
	long long body_timeout_s;
	unsigned max_connections;
	unsigned max_connections_per_ip;
	unsigned body_limit;
	int log_level;
	/* site_name: below, shared by the mails and the pages */
	const char *site_css; /* pages: a stylesheet file instead of the built-in one; NULL */
	bool migrate_check;   /* migrate --check */

	/* Mail (serve, mail test): transport, sender, site name, template overrides. */
	const char *mail_url;       /* file:DIR, smtp://..., smtps://... */
	const char *mail_from;      /* an addr-spec mail_address_ok accepts */
	const char *site_name;      /* the From display name and {{site_name}} of the mails */
	const char *mail_templates; /* DIR of KIND.subject/.txt/.html overrides; NULL: none */

	/* The account lifecycle by email (api/mailer.c, api/lifecycle.c). */
	const char *public_url; /* NULL: http:// + the bound address */
	bool require_verified_email;
	bool mail_unknown_accounts; /* send reset_unknown mails */
	long long reset_ttl_s;
	long long verify_ttl_s; /* verification and email-change links */
	long long mail_retention_s;
	long long mail_lease_s;       /* a claimed mail is another instance's again after this */
	long long mail_retry_min_s;   /* the first retry's delay (jittered down to half) */
	long long mail_retry_max_s;   /* the longest delay between retries */
	long long mail_give_up_s;     /* temporary failures fail for good once a mail is this old */
	long long mail_poll_s;        /* how often an idle delivery loop looks for due mails */
	unsigned limit_reset_email;   /* reset requests per address per hour */
	unsigned limit_reset_ip;      /* reset requests per IP per hour */
	unsigned limit_verify_resend; /* verification resends per account per hour */
	const char *mail_status;      /* mail list --status */

	/* Admin commands (user ..., invite ...). */
	const char *arg;           /* the positional argument (USERNAME, USER or ID) */
	const char *user_username; /* user show|set|...: --username NAME, instead of USER */
	const char *user_email;    /* user show|set|...: --email ADDR, instead of USER */
	const char *email;
	const char *role;
	const char *bio;
	const char *by;
	bool json;
	bool password_stdin;
	bool admin;      /* user create --admin */
	bool can_invite; /* user create --can-invite-teachers */
	int set_active;  /* user set: -1 unchanged, 0 off, 1 on */
	int set_admin;
	int set_can_invite;

	/* The audit trail: serve's retention; `roster audit` filters. */
	long long audit_retention_s; /* rows older than this are deleted by the janitor */
	const char *audit_user;      /* --user USER */
	const char *audit_event;     /* --event NAME */
	const char *audit_since;     /* --since D|RFC3339 */
	unsigned audit_limit;        /* --limit N */
	/* import django (issue 13). */
	const char *import_from;
	bool import_dry_run;
	const char *import_report;
	const char *import_on_duplicate;
	const char *import_profile_table;
	const char *import_invitation_table;
	unsigned import_batch; /* accounts per transaction */
};

enum config_result {
	CONFIG_OK = 0,
	CONFIG_HELP = 1,  /* --help was printed: exit 0 */
	CONFIG_USAGE = 2, /* a one-line error was printed: exit 2 */
};

/*
 * Fills `c` for the command `cmd` from defaults, the environment and
 * argv[0..argc) (the command's own arguments, without its name). Strings
 * point into argv, the environment or static storage.
 */
enum config_result config_load(
    struct config *c, const struct config_command *cmd, int argc, char **argv);

/* The longest duration any setting takes: 100 years, in seconds. */
#define CONFIG_DURATION_MAX_S (100LL * 365 * 86400)

/*
 * Parses "30s", "15m", "2h", "14d" (or plain seconds) into seconds; -1 when
 * invalid or longer than CONFIG_DURATION_MAX_S once the unit is applied.
 */
long long config_parse_duration(const char *s);

/*
 * `roster audit --since`: a duration back from `now` ("1h", "7d") or an RFC
 * 3339 time ("2026-12-01T08:00:00Z", fraction and offset allowed; a bare
 * date is its midnight UTC), as seconds since the epoch; -1 when neither.
 */
long long config_parse_since(const char *s, long long now);

#endif
