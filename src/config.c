/* Configuration: one option table, env then flags; see config.h. */
#include "config.h"
#include "log.h"
#include "store.h"
#include "acct.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum opt_type { OPT_STR, OPT_UINT, OPT_FLAG, OPT_DURATION, OPT_LOGLEVEL, OPT_BIND, OPT_DB, OPT_ROLES };

struct opt {
	const char *flag;	/* without the leading "--" */
	const char *env;
	enum opt_type type;
	size_t offset;
	unsigned cmds;
	unsigned min, max;	/* OPT_UINT bounds */
	const char *metavar;
	const char *help;
};

#define ALL (CONFIG_SERVE | CONFIG_MIGRATE | CONFIG_CHECK)
#define OFF(f) offsetof(struct config, f)

static const struct opt opts[] = {
	{ "db", "ROSTER_DB", OPT_DB, OFF(db), ALL, 0, 0, "URL",
	    "database: sqlite:PATH (default sqlite:var/roster.db)" },
	{ "bind", "ROSTER_BIND", OPT_BIND, 0, CONFIG_SERVE, 0, 0, "HOST:PORT",
	    "address to listen on (default 127.0.0.1:8000; port 0 picks a free one)" },
	{ "threads", "ROSTER_THREADS", OPT_UINT, OFF(threads), CONFIG_SERVE, 1, 256, "N",
	    "HTTP I/O threads (default: number of cores)" },
	{ "reuse-port", "ROSTER_REUSE_PORT", OPT_FLAG, OFF(reuse_port), CONFIG_SERVE, 0, 0, NULL,
	    "let several processes bind the same port (SO_REUSEPORT)" },
	{ "hash-workers", "ROSTER_HASH_WORKERS", OPT_UINT, OFF(hash_workers), CONFIG_SERVE, 1, 256, "N",
	    "password-hashing threads (default: number of cores)" },
	{ "hash-queue", "ROSTER_HASH_QUEUE", OPT_UINT, OFF(hash_queue), CONFIG_SERVE, 1, 65536, "N",
	    "requests waiting for a hashing thread before 503 (default 256)" },
	{ "hash-memory", "ROSTER_HASH_MEMORY_KIB", OPT_UINT, OFF(hash_memory_kib), CONFIG_SERVE, 8,
	    4194304, "KIB", "argon2id memory per hash in KiB (default 19456)" },
	{ "hash-passes", "ROSTER_HASH_PASSES", OPT_UINT, OFF(hash_passes), CONFIG_SERVE, 1, 64, "N",
	    "argon2id passes (default 2)" },
	{ "self-register-roles", "ROSTER_SELF_REGISTER_ROLES", OPT_ROLES, OFF(self_register_roles),
	    CONFIG_SERVE, 0, 0, "LIST", "roles open to self-registration (default explorer)" },
	{ "token-ttl", "ROSTER_TOKEN_TTL", OPT_DURATION, OFF(token_ttl_s), CONFIG_SERVE, 0, 0, "D",
	    "login token lifetime (default 14d; used once login exists)" },
	{ "invitation-ttl", "ROSTER_INVITATION_TTL", OPT_DURATION, OFF(invitation_ttl_s),
	    CONFIG_SERVE, 0, 0, "D", "invitation lifetime (default 7d; used once invitations exist)" },
	{ "shutdown-timeout", "ROSTER_SHUTDOWN_TIMEOUT", OPT_DURATION, OFF(shutdown_timeout_s),
	    CONFIG_SERVE, 0, 0, "D", "time given to in-flight requests on SIGTERM (default 10s)" },
	{ "idle-timeout", "ROSTER_IDLE_TIMEOUT", OPT_DURATION, OFF(idle_timeout_s), CONFIG_SERVE, 0, 0,
	    "D", "close a connection idle this long (default 30s)" },
	{ "max-connections", "ROSTER_MAX_CONNECTIONS", OPT_UINT, OFF(max_connections), CONFIG_SERVE, 1,
	    100000, "N", "open connections at most (default 1024)" },
	{ "body-limit", "ROSTER_BODY_LIMIT", OPT_UINT, OFF(body_limit), CONFIG_SERVE, 256, 1048576,
	    "BYTES", "largest request body accepted (default 16384)" },
	{ "log-level", "ROSTER_LOG_LEVEL", OPT_LOGLEVEL, OFF(log_level), ALL, 0, 0, "LEVEL",
	    "debug, info, warning or error (default info)" },
	{ "check", NULL, OPT_FLAG, OFF(migrate_check), CONFIG_MIGRATE, 0, 0, NULL,
	    "apply nothing; exit 1 when migrations are pending" },
};

static const char *const summaries[] = {
	"serve the HTTP API",
	"apply pending database migrations",
	"check the configuration, the database and its schema",
};

long long
config_parse_duration(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	if (errno != 0 || v > 100LL * 365 * 86400)
		return -1;
	if (*end == '\0' || strcmp(end, "s") == 0)
		return v;
	if (strcmp(end, "m") == 0)
		return v * 60;
	if (strcmp(end, "h") == 0)
		return v * 3600;
	if (strcmp(end, "d") == 0)
		return v * 86400;
	return -1;
}

static int
parse_bind(struct config *c, const char *v)
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
	case OPT_STR:
		*(const char **)field = v;
		return 0;
	case OPT_DB:
		if (!store_url_valid(v))
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
	case OPT_DURATION:
		d = config_parse_duration(v);
		if (d < 0)
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
		return parse_bind(c, v);
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
	strcpy(c->host, "127.0.0.1");
	c->port = 8000;
	c->threads = n;
	c->hash_workers = n;
	c->hash_queue = 256;
	c->hash_memory_kib = 19456;
	c->hash_passes = 2;
	c->self_register_roles = "explorer";
	c->token_ttl_s = 14 * 86400;
	c->invitation_ttl_s = 7 * 86400;
	c->shutdown_timeout_s = 10;
	c->idle_timeout_s = 30;
	c->max_connections = 1024;
	c->body_limit = 16384;
	c->log_level = LOG_INFO;
}

static void
usage(const char *name, enum config_cmd cmd)
{
	int idx = cmd == CONFIG_SERVE ? 0 : cmd == CONFIG_MIGRATE ? 1 : 2;

	printf("usage: roster %s [OPTIONS]\n\n%s.\n\nOptions (flag, environment variable):\n", name,
	    summaries[idx]);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		char left[64];

		if ((opts[i].cmds & cmd) == 0)
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

enum config_result
config_load(struct config *c, enum config_cmd cmd, const char *name, int argc, char **argv)
{
	defaults(c);
	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
		const char *v = opts[i].env != NULL ? getenv(opts[i].env) : NULL;

		if ((opts[i].cmds & cmd) == 0 || v == NULL || *v == '\0')
			continue;
		if (set_opt(c, &opts[i], v) != 0) {
			fprintf(stderr, "roster: invalid value for %s: '%s'\n", opts[i].env, v);
			return CONFIG_USAGE;
		}
	}
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *eq, *v;
		const struct opt *o;

		if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
			usage(name, cmd);
			return CONFIG_HELP;
		}
		if (strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "roster %s: unexpected argument '%s' (see --help)\n", name, arg);
			return CONFIG_USAGE;
		}
		arg += 2;
		eq = strchr(arg, '=');
		o = find_opt(arg, eq != NULL ? (size_t)(eq - arg) : strlen(arg), cmd);
		if (o == NULL) {
			fprintf(stderr, "roster %s: unknown option '%s' (see --help)\n", name, argv[i]);
			return CONFIG_USAGE;
		}
		if (eq != NULL)
			v = eq + 1;
		else if (o->type == OPT_FLAG)
			v = "1";
		else if (i + 1 < argc)
			v = argv[++i];
		else {
			fprintf(stderr, "roster %s: option --%s needs a value\n", name, o->flag);
			return CONFIG_USAGE;
		}
		if (set_opt(c, o, v) != 0) {
			fprintf(stderr, "roster %s: invalid value for --%s: '%s'\n", name, o->flag, v);
			return CONFIG_USAGE;
		}
	}
	return CONFIG_OK;
}
