-- Accounts and profiles. Uniqueness lives here, on the normalised keys, never
-- in a SELECT before an INSERT. A profile cannot exist without its user.
CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	username      TEXT    NOT NULL,
	username_key  TEXT    NOT NULL,
	email         TEXT    NOT NULL,
	email_key     TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	is_active     INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
	is_admin      INTEGER NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1)),
	date_joined   TEXT    NOT NULL,
	last_login    TEXT
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_email_key ON users (email_key);

CREATE TABLE profiles (
	user_id             INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	role                TEXT    NOT NULL CHECK (role IN ('explorer', 'teacher')),
	bio                 TEXT    NOT NULL DEFAULT '',
	can_invite_teachers INTEGER NOT NULL DEFAULT 0 CHECK (can_invite_teachers IN (0, 1))
);
