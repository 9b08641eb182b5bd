-- roster-compat: 6
-- The audit trail (store/audit.c): one row per recorded action, written in the
-- transaction of the change it records. user_id is a plain column, not a
-- foreign key: deleting an account must not delete (or blank) the history of
-- what was done to it, the delete included; the janitor bounds the table by
-- --audit-retention. No row holds a password, token or hash. Older binaries
-- never read it: compatible (they record nothing).
CREATE TABLE audit_events (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	ts         timestamptz NOT NULL,
	event      text        NOT NULL,
	user_id    bigint,
	actor      text        NOT NULL,
	ip         text,
	request_id text,
	detail     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_user_ts ON audit_events (user_id, ts);
CREATE INDEX audit_events_ts ON audit_events (ts);
