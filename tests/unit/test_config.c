/* config.c: durations and their bound. */
#include "config.h"

#include <criterion/criterion.h>

Test(config_duration, units)
{
	cr_assert_eq(config_parse_duration("30"), 30);
	cr_assert_eq(config_parse_duration("30s"), 30);
	cr_assert_eq(config_parse_duration("15m"), 900);
	cr_assert_eq(config_parse_duration("2h"), 7200);
	cr_assert_eq(config_parse_duration("14d"), 14 * 86400);
}

Test(config_duration, rejects_garbage)
{
	cr_assert_eq(config_parse_duration(""), -1);
	cr_assert_eq(config_parse_duration("-5s"), -1);
	cr_assert_eq(config_parse_duration("5w"), -1);
	cr_assert_eq(config_parse_duration("5 s"), -1);
	cr_assert_eq(config_parse_duration("99999999999999999999"), -1);
}

/* Issue 9: the bound was checked before the unit, so 3153600000d (8.6 million
 * years) was accepted and then broke login with a 500. */
Test(config_duration, bound_applies_after_the_unit)
{
	cr_assert_eq(config_parse_duration("3153600000d"), -1);
	cr_assert_eq(config_parse_duration("3153600000"), CONFIG_DURATION_MAX_S);
	cr_assert_eq(config_parse_duration("36500d"), CONFIG_DURATION_MAX_S);
	cr_assert_eq(config_parse_duration("36501d"), -1);
	cr_assert_eq(config_parse_duration("876001h"), -1);
	cr_assert_eq(config_parse_duration("52560001m"), -1);
}

Test(config_since, durations_count_back_from_now)
{
	cr_assert_eq(config_parse_since("1h", 1000000), 1000000 - 3600);
	cr_assert_eq(config_parse_since("7d", 1000000), 1000000 - 7 * 86400);
	cr_assert_eq(config_parse_since("0", 5), 5);
}

Test(config_since, rfc3339_times_with_fraction_and_offset)
{
	/* 2026-12-01T08:00:00Z */
	const long long t = 1796112000LL;

	cr_assert_eq(config_parse_since("2026-12-01T08:00:00Z", 0), t);
	cr_assert_eq(config_parse_since("2026-12-01t08:00:00.123456z", 0), t);
	cr_assert_eq(config_parse_since("2026-12-01T09:30:00+01:30", 0), t);
	cr_assert_eq(config_parse_since("2026-12-01T06:00:00-02:00", 0), t);
	cr_assert_eq(config_parse_since("2026-12-01", 0), t - 8 * 3600);
	cr_assert_eq(config_parse_since("1970-01-01T00:00:00Z", 0), 0);
	cr_assert_eq(config_parse_since("2000-02-29T00:00:00Z", 0), 951782400LL);
}

Test(config_since, rejects_what_is_neither)
{
	const char *bad[] = {"", "yesterday", "1w", "2026-13-01", "2026-02-30", "2026-12-01T08",
	    "2026-12-01T08:00", "2026-12-01T08:00:00", "2026-12-01T24:00:00Z",
	    "2026-12-01T08:00:00+01", "2026-12-01T08:00:00+01:00x", "2026-12-01X08:00:00Z", "-1h"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(config_parse_since(bad[i], 1000), -1, "%s", bad[i]);
}
