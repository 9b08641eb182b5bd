-- roster-compat: 6
-- The account lifecycle by email (issue 11): one-time tokens (verification,
-- password reset, email change, invitation links) stored only as SHA-256 hex,
-- and the transactional outbox (DESIGN.md I7). An outbox row never holds a
-- token: the delivery loop mints it when the mail is sent. Older binaries
-- read none of this and users.email_verified has a default: compatible.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

CREATE TABLE one_time_tokens (
	id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	user_id       bigint REFERENCES users (id) ON DELETE CASCADE,
	invitation_id bigint REFERENCES teacher_invitations (id) ON DELETE CASCADE,
	purpose       text        NOT NULL
	                          CHECK (purpose IN ('verify', 'reset', 'email_change', 'invitation')),
	token_hash    text        NOT NULL,
	new_email     text,
	new_email_key text,
	created_at    timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL,
	used_at       timestamptz,
	CONSTRAINT one_time_tokens_token_hash UNIQUE (token_hash)
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_invitation ON one_time_tokens (invitation_id);
CREATE INDEX one_time_tokens_expires_at ON one_time_tokens (expires_at);

-- status: queued -> sending (claimed: next_attempt_at is then the lease's
-- end, so an expired lease is simply due again) -> sent | queued (retry) |
-- failed. `claim` names the claimer, so only it can settle the row.
CREATE TABLE mail_outbox (
	id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind            text        NOT NULL,
	to_addr         text        NOT NULL,
	user_id         bigint      REFERENCES users (id) ON DELETE CASCADE,
	invitation_id   bigint      REFERENCES teacher_invitations (id) ON DELETE CASCADE,
	payload         text        NOT NULL DEFAULT '{}',
	status          text        NOT NULL DEFAULT 'queued'
	                            CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
	attempts        integer     NOT NULL DEFAULT 0,
	next_attempt_at timestamptz NOT NULL,
	claim           text,
	last_error      text,
	created_at      timestamptz NOT NULL,
	sent_at         timestamptz
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_sent_at ON mail_outbox (sent_at);
