/*
 * The admin commands (roster user ..., roster invite ...): they work directly
 * on the configured database with the same rules as the API (src/accounts/)
 * and return the exit codes of docs/cli.md.
 */
#ifndef ROSTER_CLI_H
#define ROSTER_CLI_H

#include <stddef.h>

struct config;

enum cli_exit {
	CLI_OK = 0,
	CLI_INVALID = 1,
	CLI_USAGE = 2,
	CLI_NOT_FOUND = 3,
	CLI_CONFLICT = 4,
	CLI_FAILURE = 5,
	CLI_REFUSED = 6, /* mail test: the mail server refused the mail for good (5xx) */
};

int cli_user_create(const struct config *cfg);
int cli_user_list(const struct config *cfg);
int cli_user_show(const struct config *cfg);
int cli_user_set(const struct config *cfg);
int cli_user_set_password(const struct config *cfg);
int cli_user_delete(const struct config *cfg);
int cli_invite_create(const struct config *cfg);
int cli_invite_list(const struct config *cfg);
int cli_invite_revoke(const struct config *cfg);
/* roster mail test ADDRESS: one mail through the configured transport; 0 when sent. */
int cli_mail_test(const struct config *cfg);
/* The outbox (roster mail list|show|retry): exit codes as the others. */
int cli_mail_list(const struct config *cfg);
int cli_mail_show(const struct config *cfg);
int cli_mail_retry(const struct config *cfg);

/* roster audit: the audit trail, newest first, filtered (docs/cli.md). */
int cli_audit(const struct config *cfg);

/* The audit trail's actor of an admin command: "cli:<the operator's Unix user>" (by effective uid).
 */
void cli_audit_actor(char *out, size_t size);

#endif
