/*
 * Whether the database can serve, beyond answering reads: a write probe (one
 * upsert of a fixed rate_limits row, committed, so a read-only file, a full
 * disk or a read-only PostgreSQL shows) and the process-wide "damaged" mark a
 * driver sets on a corrupt file, logged once; the full integrity check of
 * `roster check`.
 */
#include "store/driver.h"
#include "log.h"
#include "xmalloc.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

static atomic_bool damaged;

enum store_status
store_write_probe(struct store *s)
{
	struct store_arg args[] = {ARG_I((long long)time(NULL))};

	return store_tx_exec(s, STMT_WRITE_PROBE, args, NARGS(args), NULL);
}

static enum store_status
integrity_row(const struct store_row *r, void *out)
{
	char **problem = out;
	const char *text = store_col_text(r, 0);

	if (*problem == NULL && (text == NULL || strcmp(text, "ok") != 0))
		*problem = xstrdup(text != NULL ? text : "(no text)");
	return STORE_OK;
}

enum store_status
store_integrity(struct store *s, char **problem)
{
	*problem = NULL;
	return store_db_query(s, STMT_INTEGRITY, NULL, 0, integrity_row, problem);
}

void
store_mark_damaged(const char *detail)
{
	if (atomic_exchange(&damaged, true))
		return; /* one line per process, not one per request */
	log_json_new(RS_LOG_ERROR, NULL, "database damaged",
	    json_pack("{s:s, s:s}", "detail", detail != NULL ? detail : "?", "action",
	        "/readyz answers 503 until roster is restarted on a repaired or restored "
	        "database: docs/operations.md, \"A damaged database\""));
}

bool
store_damaged(void)
{
	return atomic_load(&damaged);
}
