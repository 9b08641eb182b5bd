-- roster-compat: 6
-- The account lifecycle by email (issue 11): one-time tokens (verification,
-- password reset, email change, invitation links) stored only as SHA-256 hex,
-- and the transactional outbox (DESIGN.md I7). An outbox row never holds a
-- token: the delivery loop mints it when the mail is sent. Older binaries
-- read none of this and users.email_verified has a default: compatible.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0
	CHECK (email_verified IN (0, 1));

CREATE TABLE one_time_tokens (
	id            INTEGER PRIMARY KEY,
	user_id       INTEGER REFERENCES users (id) ON DELETE CASCADE,
	invitation_id INTEGER REFERENCES teacher_invitations (id) ON DELETE CASCADE,
	purpose       TEXT    NOT NULL
	                      CHECK (purpose IN ('verify', 'reset', 'email_change', 'invitation')),
	token_hash    TEXT    NOT NULL,
	new_email     TEXT,
	new_email_key TEXT,
	created_at    TEXT    NOT NULL,
	expires_at    TEXT    NOT NULL,
	used_at       TEXT
);
CREATE UNIQUE INDEX one_time_tokens_token_hash ON one_time_tokens (token_hash);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);
CREATE INDEX one_time_tokens_invitation ON one_time_tokens (invitation_id);
CREATE INDEX one_time_tokens_expires_at ON one_time_tokens (expires_at);

-- status: queued -> sending (claimed: next_attempt_at is then the lease's
-- end, so an expired lease is simply due again) -> sent | queued (retry) |
-- failed. `claim` names the claimer, so only it can settle the row.
CREATE TABLE mail_outbox (
	id              INTEGER PRIMARY KEY,
	kind            TEXT    NOT NULL,
	to_addr         TEXT    NOT NULL,
	user_id         INTEGER REFERENCES users (id) ON DELETE CASCADE,
	invitation_id   INTEGER REFERENCES teacher_invitations (id) ON DELETE CASCADE,
	payload         TEXT    NOT NULL DEFAULT '{}',
	status          TEXT    NOT NULL DEFAULT 'queued'
	                        CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
	attempts        INTEGER NOT NULL DEFAULT 0,
	next_attempt_at TEXT    NOT NULL,
	claim           TEXT,
	last_error      TEXT,
	created_at      TEXT    NOT NULL,
	sent_at         TEXT
);
CREATE INDEX mail_outbox_due ON mail_outbox (status, next_attempt_at);
CREATE INDEX mail_outbox_sent_at ON mail_outbox (sent_at);
