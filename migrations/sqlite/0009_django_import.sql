-- roster-compat: 9
-- What `roster import django` needs (issue 13): Django's first and last names;
-- accounts that must reset their password (an unusable or unverifiable Django
-- hash: login answers "Invalid credentials." until a reset sets one); accounts
-- without an email (Django allows a blank one: email '' and email_key NULL, which
-- the unique index lets any number of accounts share); and import_rows, one row
-- per source row imported, with a digest of what was read, so a second run
-- changes only what changed. Older binaries cannot fill keys of accounts with a
-- NULL email_key: only binaries that carry this migration serve it.
ALTER TABLE users ADD COLUMN first_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN password_must_reset INTEGER NOT NULL DEFAULT 0
	CHECK (password_must_reset IN (0, 1));
-- SQLite cannot drop a NOT NULL: the column is replaced, and its index with it.
DROP INDEX users_email_key;
ALTER TABLE users RENAME COLUMN email_key TO email_key_0009;
ALTER TABLE users ADD COLUMN email_key TEXT;
UPDATE users SET email_key = email_key_0009;
ALTER TABLE users DROP COLUMN email_key_0009;
CREATE UNIQUE INDEX users_email_key ON users (email_key);
-- tbl: user, profile, token, invitation; source_id: the Django row's id (a
-- token's: its user_id); outcome: imported, merged, refused.
CREATE TABLE import_rows (
	tbl        TEXT    NOT NULL,
	source_id  INTEGER NOT NULL,
	digest     TEXT    NOT NULL,
	outcome    TEXT    NOT NULL,
	imported_at TEXT   NOT NULL,
	PRIMARY KEY (tbl, source_id)
);
