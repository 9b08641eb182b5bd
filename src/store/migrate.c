/*
 * Schema versions, written once for every backend: the migrations embedded
 * in the binary (generated from migrations/<backend>/) against what the
 * database has recorded in schema_migrations. Each migration is applied in
 * its own transaction under the driver's migration lock, so several
 * processes migrating at once apply each version exactly once.
 */
#include "store/driver.h"
#include "log.h"

static int
latest_version(const struct store_migration *m)
{
	int v = 0;

	for (; m->version != 0; m++)
		v = m->version;
	return v;
}

enum store_status
store_schema(struct store *s, struct store_schema *out)
{
	int64_t has = 0, applied = 0;
	enum store_status st = store_db_one(s, STMT_HAS_MIGRATIONS, NULL, 0, store_row_int, &has);

	out->latest = latest_version(s->drv->migrations);
	out->applied = 0;
	if (st == STORE_OK && has != 0)
		st = store_db_one(s, STMT_APPLIED_VERSION, NULL, 0, store_row_int, &applied);
	out->applied = (int)applied;
	return st == STORE_NOT_FOUND ? STORE_ERROR : st;
}

struct apply_args {
	const struct store_migration *m;
	bool did;
};

/*
 * What a migration needs that SQL cannot do, run right after its file in the
 * same transaction: 0004 computes each account's confusable key with ICU.
 */
static enum store_status
after_script(struct store *s, int version)
{
	int filled = 0, kept = 0;
	enum store_status st;

	if (version != 4)
		return STORE_OK;
	st = store_user_fill_keys_locked(s, &filled, &kept);
	if (st == STORE_OK && filled + kept > 0)
		log_msg(RS_LOG_INFO,
		    "migration 0004: %d confusable key(s) set, %d left NULL "
		    "(look-alikes of older accounts)",
		    filled, kept);
	return st;
}

static enum store_status
apply_body(struct store *s, void *arg)
{
	struct apply_args *a = arg;
	char now[64];
	struct store_arg record[] = {ARG_I(a->m->version), ARG_T(a->m->name), ARG_T(now)};
	int64_t seen = 0;
	enum store_status st = store_db_exec(s, STMT_MIGRATION_LOCK, NULL, 0, NULL);

	a->did = false;
	store_time_rfc3339(0, now);
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_MIGRATIONS_TABLE, NULL, 0, NULL);
	if (st == STORE_OK)
		st = store_db_one(s, STMT_MIGRATION_APPLIED, record, 1, store_row_int, &seen);
	if (st != STORE_NOT_FOUND)
		return st; /* STORE_OK: another process got there first */
	st = store_db_script(s, a->m->sql);
	if (st == STORE_OK)
		st = after_script(s, a->m->version);
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_MIGRATION_RECORD, record, NARGS(record), NULL);
	a->did = st == STORE_OK;
	return st;
}

enum store_status
store_migrate(struct store *s, int *applied)
{
	struct store_schema schema;
	enum store_status st;

	*applied = 0;
	st = store_schema(s, &schema);
	if (st != STORE_OK)
		return st;
	if (schema.applied > schema.latest) {
		log_msg(RS_LOG_ERROR, "database schema version %d is newer than this binary's %d",
		    schema.applied, schema.latest);
		return STORE_ERROR;
	}
	for (const struct store_migration *m = s->drv->migrations; m->version != 0; m++) {
		struct apply_args a = {m, false};

		if (m->version <= schema.applied)
			continue;
		st = store_tx(s, apply_body, &a);
		if (st != STORE_OK) {
			log_msg(RS_LOG_ERROR, "migration %04d_%s failed: %s", m->version, m->name,
			    store_status_str(st));
			return st;
		}
		if (a.did) {
			log_msg(RS_LOG_INFO, "applied migration %04d_%s", m->version, m->name);
			(*applied)++;
		}
	}
	return STORE_OK;
}

enum store_status
store_check_statements(struct store *s, int *failed)
{
	enum store_status st = STORE_OK;

	*failed = -1;
	for (int id = 0; id < STMT_COUNT_ && st == STORE_OK; id++) {
		st = s->drv->prepare(s, (enum store_stmt)id);
		if (st != STORE_OK)
			*failed = id;
	}
	return st;
}
