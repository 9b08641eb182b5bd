/*
 * log.h: its names must not collide with system headers a later change may
 * include (issue 9: LOG_DEBUG... were syslog's macros, so <syslog.h> first
 * made log.h fail to compile). This file compiling is the first test.
 */
#include <syslog.h>

#include "log.h"

#include <criterion/criterion.h>

Test(log_level, parse_names)
{
	cr_assert_eq(log_level_parse("debug"), RS_LOG_DEBUG);
	cr_assert_eq(log_level_parse("info"), RS_LOG_INFO);
	cr_assert_eq(log_level_parse("warning"), RS_LOG_WARNING);
	cr_assert_eq(log_level_parse("error"), RS_LOG_ERROR);
	cr_assert_eq(log_level_parse("loud"), -1);
	/* syslog's own values stay usable beside ours */
	cr_assert_eq(LOG_ERR, 3);
}

Test(log_level, enabled_follows_the_level)
{
	log_set_level(RS_LOG_WARNING);
	cr_assert(!log_enabled(RS_LOG_INFO));
	cr_assert(log_enabled(RS_LOG_WARNING));
	cr_assert(log_enabled(RS_LOG_ERROR));
	log_set_level(RS_LOG_INFO);
}
