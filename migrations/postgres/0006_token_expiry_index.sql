-- roster-compat: 5
-- The janitor (api/janitor.c) deletes expired login tokens of every account a
-- batch at a time: each batch finds its rows by expires_at, not by a scan of
-- the table under the write lock. Older binaries never read it: compatible.
CREATE INDEX auth_tokens_expires_at ON auth_tokens (expires_at);
