-- roster-compat: 6
-- Placeholder for the audit trail's 0007 (another branch, merged beside this
-- one): embed-migrations.py wants versions 1..N without gaps, and this branch
-- carries 0008. DELETE THIS FILE (and its meson.build line) when the audit
-- branch's 0007 is merged. It changes nothing.
SELECT 1;
