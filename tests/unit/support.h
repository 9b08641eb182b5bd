/* Helpers shared by the unit tests. */
#ifndef ROSTER_TEST_SUPPORT_H
#define ROSTER_TEST_SUPPORT_H

#include <stddef.h>

/*
 * A copy of `s` with no terminator, ending right before an inaccessible page:
 * any read past `len` crashes the test (with or without ASan).
 */
char *unterminated(const char *s, size_t *len);
void unterminated_free(char *p, size_t len);

#endif
