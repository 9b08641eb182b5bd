-- roster-compat: 2
-- Fixed-window counters for rate limits, shared by every instance on the
-- database. key names the limit and its subject (an IP or a normalised login).
-- Compatible with version 2: binaries at version 2 never read this table.
CREATE TABLE rate_limits (
	key          TEXT    PRIMARY KEY,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL
);
