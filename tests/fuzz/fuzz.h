/* Shared by the fuzz targets. */
#ifndef ROSTER_FUZZ_H
#define ROSTER_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*
 * A NUL-terminated copy of fuzz input (which has none). Not strndup: with
 * ASan's strict_string_checks it reads the source as a C string.
 */
static inline char *
fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (s != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

#endif
