-- roster-compat: 9
-- What `roster import django` needs (issue 13): Django's first and last names;
-- accounts that must reset their password (an unusable or unverifiable Django
-- hash: login answers "Invalid credentials." until a reset sets one); accounts
-- without an email (Django allows a blank one: email '' and email_key NULL, which
-- the unique constraint lets any number of accounts share); and import_rows, one
-- row per source row imported, with a digest of what was read, so a second run
-- changes only what changed. Older binaries cannot fill keys of accounts with a
-- NULL email_key: only binaries that carry this migration serve it.
ALTER TABLE users ADD COLUMN first_name text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN last_name text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN password_must_reset boolean NOT NULL DEFAULT false;
ALTER TABLE users ALTER COLUMN email_key DROP NOT NULL;
-- tbl: user, profile, token, invitation; source_id: the Django row's id (a
-- token's: its user_id); outcome: imported, merged, refused.
CREATE TABLE import_rows (
	tbl         text        NOT NULL,
	source_id   bigint      NOT NULL,
	digest      text        NOT NULL,
	outcome     text        NOT NULL,
	imported_at timestamptz NOT NULL,
	PRIMARY KEY (tbl, source_id)
);
