-- Accounts and profiles. Uniqueness lives here, on the normalised keys, never
-- in a SELECT before an INSERT. A profile cannot exist without its user.
-- Constraint names are part of the code: src/store/postgres.c maps them.
CREATE TABLE users (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username      text        NOT NULL,
	username_key  text        NOT NULL,
	email         text        NOT NULL,
	email_key     text        NOT NULL,
	password_hash text        NOT NULL,
	is_active     boolean     NOT NULL DEFAULT true,
	is_admin      boolean     NOT NULL DEFAULT false,
	date_joined   timestamptz NOT NULL,
	last_login    timestamptz,
	CONSTRAINT users_username_key UNIQUE (username_key),
	CONSTRAINT users_email_key UNIQUE (email_key)
);

CREATE TABLE profiles (
	user_id             bigint  PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	role                text    NOT NULL CHECK (role IN ('explorer', 'teacher')),
	bio                 text    NOT NULL DEFAULT '',
	can_invite_teachers boolean NOT NULL DEFAULT false
);
