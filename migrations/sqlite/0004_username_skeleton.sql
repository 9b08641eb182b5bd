-- roster-compat: 3
-- The confusable keys of each username (UTS #39 skeletons, src/accounts/skeleton.c):
-- username_skeleton of its username_key, shared by every case variant;
-- username_skeleton_cased of the name as typed, so a capital I meets a small l.
-- SQL cannot compute them: `roster migrate` fills both for the existing accounts in C
-- right after this file, in the same transaction (store_user_fill_keys_locked, which
-- also re-keys email_key values that the current normalisation writes differently).
-- A column stays NULL only for an existing account whose skeleton an older account
-- already holds: both keep working, the unique indexes ignore NULLs, and any new
-- look-alike of either is refused because it has the older one's skeleton.
ALTER TABLE users ADD COLUMN username_skeleton TEXT;
ALTER TABLE users ADD COLUMN username_skeleton_cased TEXT;
CREATE UNIQUE INDEX users_username_skeleton ON users (username_skeleton);
CREATE UNIQUE INDEX users_username_skeleton_cased ON users (username_skeleton_cased);
