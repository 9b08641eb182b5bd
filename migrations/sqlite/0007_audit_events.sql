-- roster-compat: 6
-- The audit trail (store/audit.c): one row per recorded action, written in the
-- transaction of the change it records. user_id is a plain column, not a
-- foreign key: deleting an account must not delete (or blank) the history of
-- what was done to it, the delete included; the janitor bounds the table by
-- --audit-retention. No row holds a password, token or hash. Older binaries
-- never read it: compatible (they record nothing).
CREATE TABLE audit_events (
	id         INTEGER PRIMARY KEY,
	ts         TEXT    NOT NULL,
	event      TEXT    NOT NULL,
	user_id    INTEGER,
	actor      TEXT    NOT NULL,
	ip         TEXT,
	request_id TEXT,
	detail     TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user_ts ON audit_events (user_id, ts);
CREATE INDEX audit_events_ts ON audit_events (ts);
