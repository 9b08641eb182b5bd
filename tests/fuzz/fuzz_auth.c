/*
 * libFuzzer: the Authorization header parser. What it accepts is a roster
 * token (64 lowercase hex) or an imported DRF key (40), nothing else.
 */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *header = fuzz_cstr(data, size); /* MHD hands NUL-terminated values */
	char token[65];
	size_t n;

	if (header == NULL)
		return 0;
	if (api_auth_token(header, token)) {
		n = strlen(token);
		if (n != 64 && n != 40)
			abort();
		if (strspn(token, "0123456789abcdef") != n)
			abort();
	}
	free(header);
	return 0;
}
