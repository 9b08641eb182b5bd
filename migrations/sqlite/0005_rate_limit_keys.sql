-- roster-compat: 3
-- Rate-limit keys become a keyed hash of their subject (issue 14, item 8): a
-- password typed into the login's username field must not be stored in clear
-- (I5). The hash key is a random secret of this database, so every instance
-- on it agrees: the first process that needs it stores one (store_secret).
-- Counters keyed in clear by earlier versions go, zeroed on disk: they may
-- hold such a password.
PRAGMA secure_delete = ON;
CREATE TABLE server_secrets (
	name       TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	created_at TEXT NOT NULL
);
DELETE FROM rate_limits;
-- Counters whose window is long past are purged by window_start.
CREATE INDEX rate_limits_window_start ON rate_limits (window_start);
