-- Fixed-window counters for rate limits, shared by every instance on the
-- database. key names the limit and its subject (an IP or a normalised login).
CREATE TABLE rate_limits (
	key          text    PRIMARY KEY,
	window_start bigint  NOT NULL,
	count        integer NOT NULL
);
