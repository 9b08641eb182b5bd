/*
 * Schema versions: the migrations embedded in the binary (generated from
 * migrations/<backend>/) against what the database has recorded in
 * schema_migrations. Backends apply one migration per transaction.
 */
#include "store/backend.h"
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
	out->latest = latest_version(s->ops->migrations);
	return s->ops->applied_version(s, &out->applied);
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
	for (const struct store_migration *m = s->ops->migrations; m->version != 0; m++) {
		bool did = false;

		if (m->version <= schema.applied)
			continue;
		st = s->ops->apply(s, m, &did);
		if (st != STORE_OK) {
			log_msg(RS_LOG_ERROR, "migration %04d_%s failed: %s", m->version, m->name,
			    store_status_str(st));
			return st;
		}
		if (did) {
			log_msg(RS_LOG_INFO, "applied migration %04d_%s", m->version, m->name);
			(*applied)++;
		}
	}
	return STORE_OK;
}
