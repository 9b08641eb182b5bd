/* libFuzzer: the Authorization header parser. */
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

	if (header == NULL)
		return 0;
	if (api_auth_token(header, token) && strlen(token) != 64)
		abort();
	free(header);
	return 0;
}
