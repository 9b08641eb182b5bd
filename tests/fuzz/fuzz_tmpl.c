/*
 * libFuzzer: the template renderer (src/tmpl/) on any template, rendered in
 * HTML mode with values full of markup, and the pages' form parser on the
 * same bytes. Properties: nothing crashes or leaks; every render ends within
 * its bound; a template whose own text has no '<' yields no '<' (no value
 * reaches the output unescaped).
 */
#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "pages/internal.h"
#include "tmpl/tmpl.h"

static json_t *vars;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *src = (const char *)data;
	struct page_form form;
	struct tmpl *t;
	char err[128];

	if (vars == NULL)
		vars = json_loads(
		    "{\"a\": \"<&'\\\"\", \"b\": [{\"a\": \"<x>\"}, \"<\", {\"b\": {\"a\": "
		    "\"<\"}}, [1, 2]], \"c\": {\"d\": \"<d>\", \"e\": [true, false]},"
		    " \"n\": 7, \"r\": 0.5, \"t\": true, \"z\": null}",
		    0, NULL);
	t = tmpl_parse(src, size, TMPL_HTML, err, sizeof(err));
	if (t != NULL) {
		size_t len = 0;
		char *out = tmpl_render(t, vars, 1 << 16, &len);

		if (out != NULL) {
			if (len > (1 << 16) || strlen(out) > len)
				abort();
			if (memchr(src, '<', size) == NULL && strchr(out, '<') != NULL)
				abort();
			free(out);
		}
		tmpl_free(t);
	}
	if (page_form_parse(src, size, &form))
		page_form_clear(&form);
	return 0;
}
