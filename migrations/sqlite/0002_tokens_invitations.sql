-- Login tokens and teacher invitations. Tokens are stored as SHA-256 hex of the
-- secret; the secret itself is shown once and never stored.
CREATE TABLE auth_tokens (
	id         INTEGER PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash TEXT    NOT NULL,
	created_at TEXT    NOT NULL,
	expires_at TEXT    NOT NULL
);
CREATE UNIQUE INDEX auth_tokens_token_hash ON auth_tokens (token_hash);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

-- status is stored as pending, accepted, revoked or expired; a pending row past
-- expires_at reads as expired. At most one pending invitation per email: the
-- partial unique index decides races between inviters.
CREATE TABLE teacher_invitations (
	id          INTEGER PRIMARY KEY,
	inviter_id  INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email       TEXT    NOT NULL,
	email_key   TEXT    NOT NULL,
	token_hash  TEXT    NOT NULL,
	status      TEXT    NOT NULL DEFAULT 'pending'
	                    CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
	created_at  TEXT    NOT NULL,
	expires_at  TEXT    NOT NULL,
	accepted_at TEXT,
	accepted_by INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX teacher_invitations_token_hash ON teacher_invitations (token_hash);
CREATE UNIQUE INDEX teacher_invitations_pending_email ON teacher_invitations (email_key)
	WHERE status = 'pending';
CREATE INDEX teacher_invitations_inviter ON teacher_invitations (inviter_id);
