-- Fixed-window counters for rate limits, shared by every instance on the
-- database. key names the limit and its subject (an IP or a normalised login).
CREATE TABLE rate_limits (
	key          TEXT    PRIMARY KEY,
	window_start INTEGER NOT NULL,
	count        INTEGER NOT NULL
);
