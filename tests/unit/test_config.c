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
