-- Login tokens and teacher invitations. Tokens are stored as SHA-256 hex of the
-- secret; the secret itself is shown once and never stored.
CREATE TABLE auth_tokens (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id    bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	token_hash text        NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	CONSTRAINT auth_tokens_token_hash UNIQUE (token_hash)
);
CREATE INDEX auth_tokens_user ON auth_tokens (user_id);

-- status is stored as pending, accepted, revoked or expired; a pending row past
-- expires_at reads as expired. At most one pending invitation per email: the
-- partial unique index decides races between inviters.
CREATE TABLE teacher_invitations (
	id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	inviter_id  bigint      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	email       text        NOT NULL,
	email_key   text        NOT NULL,
	token_hash  text        NOT NULL,
	status      text        NOT NULL DEFAULT 'pending'
	                        CHECK (status IN ('pending', 'accepted', 'revoked', 'expired')),
	created_at  timestamptz NOT NULL,
	expires_at  timestamptz NOT NULL,
	accepted_at timestamptz,
	accepted_by bigint      REFERENCES users (id) ON DELETE SET NULL,
	CONSTRAINT teacher_invitations_token_hash UNIQUE (token_hash)
);
CREATE UNIQUE INDEX teacher_invitations_pending_email ON teacher_invitations (email_key)
	WHERE status = 'pending';
CREATE INDEX teacher_invitations_inviter ON teacher_invitations (inviter_id);
