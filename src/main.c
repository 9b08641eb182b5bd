/*
 * roster: one binary, subcommands serve, migrate, check. Configuration comes
 * from config.c; signals are taken by sigwait on the main thread, so no
 * handler runs inside a worker and shutdown is an ordinary code path.
 */
#include "accounts/acct.h"
#include "api/api.h"
#include "cli.h"
#include "import.h"
#include "config.h"
#include "http/server.h"
#include "log.h"
#include "mail/compose.h"
#include "mail/mail.h"
#include "notify.h"
#include "pages/pages.h"
#include "crypto/rcrypto.h"
#include "store/store.h"
#include "xmalloc.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
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
		fputs(
		    "  serve, migrate, check, user ..., invite ..., mail ..., audit, import django "
		    "(roster --help lists them)\n",
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
 * The schema against the binary, as one sentence: current; behind it (needs
 * `roster migrate`); ahead of it but compatible (a newer binary migrated it
 * and this one keeps serving: a rolling upgrade); ahead and incompatible
 * (needs this binary upgraded). Never "-1 pending migration(s)".
 */
static void
schema_state(const struct store_schema *sc, char *out, size_t size)
{
	switch (store_schema_fit(sc)) {
	case STORE_SCHEMA_CURRENT:
		snprintf(out, size, "schema is current (version %d)", sc->applied);
		break;
	case STORE_SCHEMA_PENDING:
		snprintf(out, size,
		    "%d migration(s) pending (database at version %d, binary at %d); "
		    "run `roster migrate` (with the same --db)",
		    sc->latest - sc->applied, sc->applied, sc->latest);
		break;
	case STORE_SCHEMA_NEWER:
		snprintf(out, size,
		    "the database schema (version %d) is newer than this binary's (%d) and "
		    "compatible with it (it needs version %d or later): this binary serves it",
		    sc->applied, sc->latest, sc->required);
		break;
	case STORE_SCHEMA_INCOMPATIBLE:
		snprintf(out, size,
		    "the database schema (version %d) is newer than this binary's (%d) and "
		    "incompatible with it: it needs a roster that knows schema version %d or "
		    "later; run that version (or newer) of roster",
		    sc->applied, sc->latest, sc->required);
		break;
	}
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
		char why[320];

		schema_state(&schema, why, sizeof(why));
		printf("%s\n", why);
		rc = store_schema_servable(&schema) ? 0 : 1;
		goto out;
	}
	if (store_schema_fit(&schema) == STORE_SCHEMA_INCOMPATIBLE) {
		char why[320];

		schema_state(&schema, why, sizeof(why));
		log_msg(RS_LOG_ERROR, "cannot migrate: %s", why);
		goto out;
	}
	if (store_migrate(s, &applied) != STORE_OK)
		goto out;
	if (store_schema_fit(&schema) == STORE_SCHEMA_NEWER)
		printf("applied 0 migration(s); schema at version %d, newer than this binary's %d "
		       "and compatible with it\n",
		    schema.applied, schema.latest);
	else
		printf("applied %d migration(s); schema at version %d\n", applied, schema.latest);
	rc = 0;
out:
	store_close(s);
	return rc;
}

/*
 * Accounts whose username is another account's email (issue 14, item 2): not
 * an error, but the operator should know, and decide which one to keep.
 */
static void
warn_clashes(struct store *s)
{
	struct store_clash c[20];
	size_t n = 0;
	enum store_status st = store_user_clashes(s, sizeof(c) / sizeof(c[0]), c, &n);

	if (st != STORE_OK) {
		printf("warning: cannot look for usernames that are another account's email: %s\n",
		    store_status_str(st));
		return;
	}
	for (size_t i = 0; i < n; i++)
		printf("warning: the username of #%lld is the email of #%lld: login by that name "
		       "reaches #%lld, the admin CLI refuses it as a bare USER (say --username, "
		       "--email or #ID); delete one of them if it is not wanted\n",
		    (long long)c[i].username_id, (long long)c[i].email_id,
		    (long long)c[i].email_id);
	if (n == sizeof(c) / sizeof(c[0]))
		printf("warning: (only the first %zu such accounts are listed)\n", n);
}

static int
cmd_check(const struct config *cfg)
{
	struct store *s = NULL;
	struct store_schema schema;
	int rc = 1, failed = -1;
	char *problem = NULL;
	enum store_status st;

	if (open_schema(cfg, STORE_OPEN_EXISTING, &s, &schema) != 0)
		goto out;
	if (!store_schema_servable(&schema)) {
		char why[320];

		schema_state(&schema, why, sizeof(why));
		printf("%s\n", why);
		goto out;
	}
	st = store_integrity(s, &problem);
	if (problem != NULL || store_damaged()) {
		printf("the database is damaged (%s): take the instances out of rotation and "
		       "restore it, docs/operations.md \"A damaged database\"\n",
		    problem != NULL ? problem : "see the log");
		free(problem);
		goto out;
	}
	if (st != STORE_OK) {
		printf("cannot check the database for damage: %s\n", store_status_str(st));
		goto out;
	}
	if (store_check_statements(s, &failed) != STORE_OK) {
		printf(
		    "statement %d does not compile against the database (see the log): its schema "
		    "differs from the one this binary's migrations make\n",
		    failed);
		goto out;
	}
	if (store_schema_fit(&schema) == STORE_SCHEMA_NEWER) {
		char why[320];

		schema_state(&schema, why, sizeof(why));
		printf("configuration ok; database reachable; %s; every statement compiles; no "
		       "damage found\n",
		    why);
	} else {
		printf("configuration ok; database reachable; schema current (version %d); "
		       "every statement compiles; no damage found\n",
		    schema.applied);
	}
	rc = 0;
	warn_clashes(s);
out:
	store_close(s);
	return rc;
}

/* The API's routes, then the pages' (one table: http/ matches in order). */
static const struct http_route *
all_routes(size_t *n)
{
	static struct http_route table[64];
	size_t na, np;
	const struct http_route *a = api_routes(&na), *p = page_routes(&np);

	assert(na + np <= sizeof(table) / sizeof(table[0]));
	memcpy(table, a, na * sizeof(*a));
	memcpy(table + na, p, np * sizeof(*p));
	*n = na + np;
	return table;
}

/* A request no route matches: an HTML 404 under /account/, the API's JSON elsewhere. */
static void
render_unrouted(struct http_req *req, enum http_err err)
{
	if (page_path(req->path))
		page_render_http_err(req, err);
	else
		api_render_http_err(req, err);
}

/* The narrow view of the configuration that http/ takes, wired to api/. */
static void
http_opts_of(const struct config *cfg, struct http_opts *o)
{
	*o = (struct http_opts){
	    .host = cfg->bind.host,
	    .port = cfg->bind.port,
	    .metrics_host = cfg->metrics_bind.set ? cfg->metrics_bind.host : NULL,
	    .metrics_port = cfg->metrics_bind.port,
	    .threads = cfg->threads,
	    .reuse_port = cfg->reuse_port,
	    .idle_timeout_s = (unsigned)cfg->idle_timeout_s,
	    .head_timeout_s = (unsigned)cfg->head_timeout_s,
	    .body_timeout_s = (unsigned)cfg->body_timeout_s,
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
	    .on_error = render_unrouted,
	    .thread_open = api_thread_open,
	    .thread_close = api_thread_close,
	    .app = cfg,
	};
	o->routes = all_routes(&o->nroutes);
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
	struct api_janitor *janitor;
	struct api_mailer *mailer;
	struct store *s = NULL;
	struct store_schema schema = {0, 0, 0};
	enum store_status st;
	sigset_t sigs;
	int sig = 0;
	json_t *fields;
	char mail_err[512];
	struct mail_templates *mail_tpl =
	    mail_templates_load(cfg->mail_templates, mail_err, sizeof(mail_err));

	/* A broken --mail-templates file stops serve here, not each mail later. */
	if (mail_tpl == NULL) {
		log_msg(RS_LOG_ERROR, "refusing to serve: %s", mail_err);
		return 1;
	}
	mail_templates_free(mail_tpl);
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
	if (!store_schema_servable(&schema)) {
		char why[320];

		schema_state(&schema, why, sizeof(why));
		log_msg(RS_LOG_ERROR, "refusing to serve: %s", why);
		return 1;
	}
	if (store_schema_fit(&schema) == STORE_SCHEMA_NEWER) {
		char why[320];

		schema_state(&schema, why, sizeof(why));
		log_msg(RS_LOG_INFO, "%s", why);
	}
	/* Block the stop signals in every thread; this one takes them with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!pages_init(cfg)) {
		log_msg(RS_LOG_ERROR, "refusing to serve: the pages cannot be set up");
		pages_fini();
		return 1;
	}
	http_opts_of(cfg, &opts);
	srv = http_server_start(&opts);
	if (srv == NULL) {
		pages_fini();
		return 1;
	}
	fields = json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:i}", "host", cfg->bind.host,
	    "port", (int)http_server_port(srv), "version", RS_VERSION, "threads", (int)cfg->threads,
	    "hash_workers", (int)cfg->hash_workers, "hash_queue", (int)cfg->hash_queue,
	    "db_workers", (int)cfg->db_workers, "db_queue", (int)cfg->db_queue);
	if (fields != NULL && cfg->metrics_bind.set) {
		json_object_set_new(fields, "metrics_host", json_string(cfg->metrics_bind.host));
		json_object_set_new(
		    fields, "metrics_port", json_integer(http_server_metrics_port(srv)));
	}
	log_json_new(RS_LOG_INFO, NULL, "listening", fields);
	/* Its own thread too: mail delivery never blocks an I/O or hashing thread. */
	mailer = api_mailer_start(cfg, http_server_port(srv));
	if (mailer == NULL) {
		http_server_stop(srv);
		return 1;
	}
	janitor = api_janitor_start(cfg); /* its own thread: never an I/O or hashing one */
	/* The schema is checked and the socket listens: systemd's Type=notify may start what
	 * comes after roster (or a deploy step may go on). */
	if (!notify_send("READY=1\nSTATUS=serving"))
		log_msg(
		    RS_LOG_WARNING, "cannot notify systemd ($NOTIFY_SOCKET): %s", strerror(errno));
	/* Logs go to stderr only (journald under systemd): there is no file to reopen. */
	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
		log_msg(RS_LOG_INFO, "SIGHUP: nothing to reopen, logs go to stderr");
	log_msg(RS_LOG_INFO, "received %s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	notify_send("STOPPING=1\nSTATUS=draining");
	api_janitor_stop(janitor); /* at most its batch in flight: one short transaction */
	/* The send in flight, within the shutdown timeout; claimed mails not tried go back. */
	api_mailer_stop(mailer, cfg->shutdown_timeout_s);
	http_server_stop(srv);
	pages_fini();
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
	    {CONFIG_MAIL_TEST, cli_mail_test},
	    {CONFIG_MAIL_LIST, cli_mail_list},
	    {CONFIG_MAIL_SHOW, cli_mail_show},
	    {CONFIG_MAIL_RETRY, cli_mail_retry},
	    {CONFIG_AUDIT, cli_audit},
	    {CONFIG_IMPORT_DJANGO, import_django},
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
	    (strcmp(argv[1], "user") == 0 || strcmp(argv[1], "invite") == 0 ||
	        strcmp(argv[1], "mail") == 0 || strcmp(argv[1], "import") == 0)) {
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
	mail_init(); /* libcurl's global init: here, before any thread starts */
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		if (runs[i].cmd == cmd->cmd) {
			int rc = runs[i].run(&cfg);

			acct_unicode_cleanup(); /* every thread has stopped: ICU's caches go */
			return rc;
		}
	return 2;
}
