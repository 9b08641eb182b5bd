/*
 * Schema versions, written once for every backend: the migrations embedded
 * in the binary (generated from migrations/<backend>/) against what the
 * database has recorded in schema_migrations (version, name, applied_at and
 * compat: the oldest binary version that can serve the schema it leaves).
 * Each migration is applied in its own transaction under the driver's
 * migration lock, so several processes migrating at once apply each version
 * exactly once.
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

/* What STMT_HAS_MIGRATIONS says: the table exists; it has the compat column. */
struct bookkeeping {
	int64_t table, compat;
};

static enum store_status
bookkeeping_row(const struct store_row *r, void *out)
{
	struct bookkeeping *b = out;

	b->table = store_col_int(r, 0);
	b->compat = store_col_int(r, 1);
	return STORE_OK;
}

static enum store_status
applied_row(const struct store_row *r, void *out)
{
	struct store_schema *sc = out;

	sc->applied = (int)store_col_int(r, 0);
	sc->required = (int)store_col_int(r, 1);
	return STORE_OK;
}

enum store_status
store_schema(struct store *s, struct store_schema *out)
{
	struct bookkeeping b = {0, 0};
	enum store_status st = store_db_one(s, STMT_HAS_MIGRATIONS, NULL, 0, bookkeeping_row, &b);

	out->latest = latest_version(s->drv->migrations);
	out->applied = 0;
	out->required = 0;
	if (st == STORE_OK && b.table != 0)
		st = store_db_one(s, b.compat != 0 ? STMT_APPLIED_COMPAT : STMT_APPLIED_VERSION,
		    NULL, 0, applied_row, out);
	return st == STORE_NOT_FOUND ? STORE_ERROR : st;
}

enum store_schema_fit
store_schema_fit(const struct store_schema *sc)
{
	if (sc->required > sc->latest)
		return STORE_SCHEMA_INCOMPATIBLE;
	if (sc->applied < sc->latest)
		return STORE_SCHEMA_PENDING;
	return sc->applied == sc->latest ? STORE_SCHEMA_CURRENT : STORE_SCHEMA_NEWER;
}

bool
store_schema_servable(const struct store_schema *sc)
{
	enum store_schema_fit fit = store_schema_fit(sc);

	return fit == STORE_SCHEMA_CURRENT || fit == STORE_SCHEMA_NEWER;
}

/* schema_migrations as this binary records it (compat column included), under the lock. */
static enum store_status
bookkeeping_body(struct store *s, void *arg)
{
	struct bookkeeping b = {0, 0};
	enum store_status st = store_db_exec(s, STMT_MIGRATION_LOCK, NULL, 0, NULL);

	(void)arg;
	if (st == STORE_OK)
		st = store_db_exec(s, STMT_MIGRATIONS_TABLE, NULL, 0, NULL);
	if (st == STORE_OK)
		st = store_db_one(s, STMT_HAS_MIGRATIONS, NULL, 0, bookkeeping_row, &b);
	if (st == STORE_OK && b.compat == 0)
		st = store_db_exec(s, STMT_MIGRATIONS_COMPAT, NULL, 0, NULL);
	return st;
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
	struct store_arg record[] = {
	    ARG_I(a->m->version), ARG_T(a->m->name), ARG_T(now), ARG_I(a->m->compat)};
	int64_t seen = 0;
	enum store_status st = bookkeeping_body(s, NULL);

	a->did = false;
	store_time_rfc3339(0, now);
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
	switch (store_schema_fit(&schema)) {
	case STORE_SCHEMA_INCOMPATIBLE:
		log_msg(RS_LOG_ERROR,
		    "database schema version %d needs a roster that knows version %d or later; "
		    "this binary knows %d",
		    schema.applied, schema.required, schema.latest);
		return STORE_ERROR;
	case STORE_SCHEMA_NEWER:
		return STORE_OK; /* a newer binary migrated it: nothing of ours is missing */
	case STORE_SCHEMA_CURRENT:
	case STORE_SCHEMA_PENDING:
		break;
	}
	/* A table an older binary made gets its compat column, even with nothing to apply. */
	st = store_tx(s, bookkeeping_body, NULL);
	for (const struct store_migration *m = s->drv->migrations;
	     st == STORE_OK && m->version != 0; m++) {
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
	return st;
}

enum store_status
store_check_statements(struct store *s, int *failed)
{
	struct bookkeeping b = {0, 0};
	enum store_status st;

	*failed = -1;
	st = store_db_one(s, STMT_HAS_MIGRATIONS, NULL, 0, bookkeeping_row, &b);
	for (int id = 0; id < STMT_COUNT_ && st == STORE_OK; id++) {
		/* migrate's own DDL, and what names the compat column before migrate adds it */
		if (id == STMT_MIGRATIONS_COMPAT ||
		    (b.compat == 0 && (id == STMT_APPLIED_COMPAT || id == STMT_MIGRATION_RECORD)))
			continue;
		st = s->drv->prepare(s, (enum store_stmt)id);
		if (st != STORE_OK)
			*failed = id;
	}
	return st;
}
