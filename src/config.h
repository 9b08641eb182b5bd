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
};

struct config {
	const char *db;
	char host[256];
	unsigned port;
	unsigned threads;
	bool reuse_port;
	unsigned hash_workers;
	unsigned hash_queue;
	unsigned hash_memory_kib;
	unsigned hash_passes;
	const char *self_register_roles;
	long long token_ttl_s;
	long long invitation_ttl_s;
	long long shutdown_timeout_s;
	long long idle_timeout_s;
	unsigned max_connections;
	unsigned body_limit;
	int log_level;
	bool migrate_check;	/* migrate --check */
};

enum config_result {
	CONFIG_OK = 0,
	CONFIG_HELP = 1,	/* --help was printed: exit 0 */
	CONFIG_USAGE = 2,	/* a one-line error was printed: exit 2 */
};

/*
 * Fills `c` for the command `cmd` from defaults, the environment and
 * argv[0..argc) (the command's own arguments, without its name). Strings
 * point into argv, the environment or static storage.
 */
enum config_result config_load(struct config *c, enum config_cmd cmd, const char *name, int argc,
    char **argv);

/* Parses "30s", "15m", "2h", "14d" (or plain seconds); -1 when invalid. */
long long config_parse_duration(const char *s);

#endif
