/*
 * roster: one binary, subcommands serve, migrate, check. Configuration comes
 * from config.c; signals are taken by sigwait on the main thread, so no
 * handler runs inside a worker and shutdown is an ordinary code path.
 */
#include "accounts/acct.h"
#include "api/api.h"
#include "cli.h"
#include "config.h"
#include "http/server.h"
#include "log.h"
#include "crypto/rcrypto.h"
#include "store/store.h"
#include "xmalloc.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void
usage(FILE *out)
{
	fputs("usage: roster COMMAND [OPTIONS]\n"
	      "\n"
	      "roster: user registration, login, profiles and teacher invitations over HTTP.\n"
	      "\n"
	      "Commands:\n",
	    out);
	if (out == stdout)
		config_print_commands();
	else
		fputs("  serve, migrate, check, user ..., invite ... (roster --help lists them)\n",
		    out);
	fputs("\n"
	      "Options:\n"
	      "  -h, --help     show this help; `roster COMMAND --help` for a command's options\n"
	      "  --version      print the version\n",
	    out);
}

/* Opens the configured database and reads its schema state; logs why not. */
static enum store_status
open_schema_status(const struct config *cfg, enum store_open_mode mode, struct store **s,
    struct store_schema *schema, enum log_level level)
{
	enum store_status st = store_open(cfg->db, mode, s);
	char db[512];

	store_url_redacted(cfg->db, db, sizeof(db));
	if (st != STORE_OK) {
		log_msg(level, "cannot open database %s (%s): %s", db, store_status_str(st),
		    store_open_hint(cfg->db));
		return st;
	}
	st = store_schema(*s, schema);
	if (st != STORE_OK)
		log_msg(
		    level, "cannot read the schema version of %s: %s", db, store_status_str(st));
	return st;
}

static int
open_schema(const struct config *cfg, enum store_open_mode mode, struct store **s,
    struct store_schema *schema)
{
	return open_schema_status(cfg, mode, s, schema, RS_LOG_ERROR) == STORE_OK ? 0 : -1;
}

/*
 * What is wrong with a schema that is not the binary's, as one sentence: a
 * database behind it needs `roster migrate`; one ahead of it (a newer binary
 * migrated it) needs this binary upgraded, never "-1 pending migration(s)".
 */
static void
schema_mismatch(const struct store_schema *sc, char *out, size_t size)
{
	if (sc->applied < sc->latest)
		snprintf(out, size,
		    "%d migration(s) pending (database at version %d, binary at %d); "
		    "run `roster migrate` (with the same --db)",
		    sc->latest - sc->applied, sc->applied, sc->latest);
	else
		snprintf(out, size,
		    "the database schema (version %d) is newer than this binary's (%d): "
		    "a newer roster migrated it; run that version (or newer) of roster",
		    sc->applied, sc->latest);
}

static int
cmd_migrate(const struct config *cfg)
{
	struct store *s = NULL;
	struct store_schema schema;
	int rc = 1, applied = 0;

	if (open_schema(cfg, cfg->migrate_check ? STORE_OPEN_EXISTING : STORE_OPEN_CREATE, &s,
	        &schema) != 0)
		goto out;
	if (cfg->migrate_check) {
		if (schema.applied == schema.latest) {
			printf("schema is current (version %d)\n", schema.applied);
			rc = 0;
		} else {
			char why[256];

			schema_mismatch(&schema, why, sizeof(why));
			printf("%s\n", why);
		}
		goto out;
	}
	if (store_migrate(s, &applied) != STORE_OK)
		goto out;
	printf("applied %d migration(s); schema at version %d\n", applied, schema.latest);
	rc = 0;
out:
	store_close(s);
	return rc;
}

static int
cmd_check(const struct config *cfg)
{
	struct store *s = NULL;
	struct store_schema schema;
	int rc = 1, failed = -1;

	if (open_schema(cfg, STORE_OPEN_EXISTING, &s, &schema) != 0)
		goto out;
	if (schema.applied != schema.latest) {
		char why[256];

		schema_mismatch(&schema, why, sizeof(why));
		printf("%s\n", why);
		goto out;
	}
	if (store_check_statements(s, &failed) != STORE_OK) {
		printf(
		    "statement %d does not compile against the database (see the log): its schema "
		    "differs from the one this binary's migrations make\n",
		    failed);
		goto out;
	}
	printf("configuration ok; database reachable; schema current (version %d); "
	       "every statement compiles\n",
	    schema.applied);
	rc = 0;
out:
	store_close(s);
	return rc;
}

/* The narrow view of the configuration that http/ takes, wired to api/. */
static void
http_opts_of(const struct config *cfg, struct http_opts *o)
{
	*o = (struct http_opts){
	    .host = cfg->host,
	    .port = cfg->port,
	    .threads = cfg->threads,
	    .reuse_port = cfg->reuse_port,
	    .idle_timeout_s = (unsigned)cfg->idle_timeout_s,
	    .max_connections = cfg->max_connections,
	    .max_connections_per_ip = cfg->max_connections_per_ip,
	    .body_limit = cfg->body_limit,
	    .trusted_proxies = cfg->trusted_proxies,
	    .shutdown_timeout_s = cfg->shutdown_timeout_s,
	    .workers = {[HTTP_POOL_DB] = cfg->db_workers, [HTTP_POOL_HASH] = cfg->hash_workers},
	    .queue = {[HTTP_POOL_DB] = cfg->db_queue, [HTTP_POOL_HASH] = cfg->hash_queue},
	    .queue_timeout_ms = {[HTTP_POOL_DB] = cfg->db_queue_timeout_s > 86400
	                                              ? 86400000u
	                                              : (unsigned)cfg->db_queue_timeout_s * 1000u},
	    .on_error = api_render_http_err,
	    .thread_open = api_thread_open,
	    .thread_close = api_thread_close,
	    .app = cfg,
	};
	o->routes = api_routes(&o->nroutes);
}

/*
 * Accounts an older binary created after migration 0004 have no confusable
 * keys yet: set them before serving. Not fatal: registrations stay
 * guarded by the keys that exist.
 */
static void
fill_keys(struct store *s)
{
	int filled = 0, kept = 0;
	enum store_status st = store_user_fill_keys(s, &filled, &kept);

	if (st != STORE_OK)
		log_msg(RS_LOG_WARNING, "cannot fill confusable keys at start: %s",
		    store_status_str(st));
	else if (filled > 0)
		log_msg(RS_LOG_INFO, "%d confusable key(s) set at start", filled);
}

static int
cmd_serve(const struct config *cfg)
{
	struct http_opts opts;
	struct http_server *srv;
	struct store *s = NULL;
	struct store_schema schema = {0, 0};
	enum store_status st;
	sigset_t sigs;
	int sig = 0;

	st = open_schema_status(cfg, STORE_OPEN_EXISTING, &s, &schema,
	    store_url_remote(cfg->db) ? RS_LOG_WARNING : RS_LOG_ERROR);
	if (st == STORE_OK && schema.applied == schema.latest)
		fill_keys(s);
	store_close(s);
	if (st == STORE_UNAVAILABLE && store_url_remote(cfg->db)) {
		/* A database server that is down (restarting, failing over) is an
		 * outage to ride out: serve 503 with Retry-After until it answers,
		 * as after losing it later. /readyz stays 503 until it answers with
		 * the current schema, so nothing routes traffic here before. */
		log_msg(RS_LOG_WARNING,
		    "database unreachable at start: serving 503 until it answers;"
		    " /readyz reports the schema once it does");
		schema.applied = schema.latest;
	} else if (st != STORE_OK) {
		return 1;
	}
	if (schema.applied != schema.latest) {
		char why[256];

		schema_mismatch(&schema, why, sizeof(why));
		log_msg(RS_LOG_ERROR, "refusing to serve: %s", why);
		return 1;
	}
	/* Block the stop signals in every thread; this one takes them with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	http_opts_of(cfg, &opts);
	srv = http_server_start(&opts);
	if (srv == NULL)
		return 1;
	log_json_new(RS_LOG_INFO, NULL, "listening",
	    json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:i}", "host", cfg->host, "port",
	        (int)http_server_port(srv), "version", RS_VERSION, "threads", (int)cfg->threads,
	        "hash_workers", (int)cfg->hash_workers, "hash_queue", (int)cfg->hash_queue,
	        "db_workers", (int)cfg->db_workers, "db_queue", (int)cfg->db_queue));
	/* Logs go to stderr only (journald under systemd): there is no file to reopen. */
	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
		log_msg(RS_LOG_INFO, "SIGHUP: nothing to reopen, logs go to stderr");
	log_msg(RS_LOG_INFO, "received %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	http_server_stop(srv);
	log_msg(RS_LOG_INFO, "stopped");
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct {
		enum config_cmd cmd;
		int (*run)(const struct config *);
	} runs[] = {
	    {CONFIG_SERVE, cmd_serve},
	    {CONFIG_MIGRATE, cmd_migrate},
	    {CONFIG_CHECK, cmd_check},
	    {CONFIG_USER_CREATE, cli_user_create},
	    {CONFIG_USER_LIST, cli_user_list},
	    {CONFIG_USER_SHOW, cli_user_show},
	    {CONFIG_USER_SET, cli_user_set},
	    {CONFIG_USER_PASSWORD, cli_user_set_password},
	    {CONFIG_USER_DELETE, cli_user_delete},
	    {CONFIG_INVITE_CREATE, cli_invite_create},
	    {CONFIG_INVITE_LIST, cli_invite_list},
	    {CONFIG_INVITE_REVOKE, cli_invite_revoke},
	};
	const struct config_command *cmd;
	struct config cfg;
	int words = 0;

	json_set_alloc_funcs(xmalloc, free); /* jansson, too, aborts on OOM */
	if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("roster %s\n", RS_VERSION);
		return 0;
	}
	cmd = config_command_find(argc, argv, &words);
	if (cmd == NULL && argc == 3 &&
	    (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) &&
	    (strcmp(argv[1], "user") == 0 || strcmp(argv[1], "invite") == 0)) {
		usage(stdout);
		return 0;
	}
	if (cmd == NULL) {
		fprintf(stderr, "roster: unknown command '%s%s%s' (see roster --help)\n", argv[1],
		    argc > 2 && argv[2][0] != '-' ? " " : "",
		    argc > 2 && argv[2][0] != '-' ? argv[2] : "");
		return 2;
	}
	switch (config_load(&cfg, cmd, argc - 1 - words, argv + 1 + words)) {
	case CONFIG_HELP:
		return 0;
	case CONFIG_USAGE:
		return 2;
	case CONFIG_OK:
		break;
	}
	log_set_level(cfg.log_level);
	if (rcrypto_init() != 0) {
		log_msg(RS_LOG_ERROR, "libsodium failed to initialise");
		return 1;
	}
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		if (runs[i].cmd == cmd->cmd) {
			int rc = runs[i].run(&cfg);

			acct_unicode_cleanup(); /* every thread has stopped: ICU's caches go */
			return rc;
		}
	return 2;
}
