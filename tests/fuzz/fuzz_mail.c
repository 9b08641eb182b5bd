/*
 * libFuzzer: mail_address_ok and mail_render on raw bytes. The input is split
 * at '\n\n' into a display name, a subject, a recipient and a body. Checked:
 * an accepted address holds no control character, space or '<' '>' ',' ';';
 * a rendered head is ASCII, CRLF-only, with exactly one From, To and Subject
 * field, and a refused recipient renders nothing.
 */
#include <stdint.h>

#include "fuzz.h"
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/mail.h"

static char *
field(char **rest)
{
	char *s = *rest, *sep;

	if (s == NULL)
		return "";
	sep = strstr(s, "\n\n");
	if (sep == NULL) {
		*rest = NULL;
		return s;
	}
	*sep = '\0';
	*rest = sep + 2;
	return s;
}

static int
fields_named(const char *head, const char *name)
{
	int n = 0;

	for (const char *p = head; p != NULL && *p != '\0';) {
		if (strncasecmp(p, name, strlen(name)) == 0)
			n++;
		p = strstr(p, "\r\n");
		p = p != NULL ? p + 2 : NULL;
	}
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = fuzz_cstr(data, size), *rest = copy, *name, *subject, *to, *body, *out, *end;
	struct mail_message m = {"roster@example.org", NULL, NULL, NULL, NULL, NULL};
	size_t len = 0;

	if (copy == NULL)
		return 0;
	name = field(&rest);
	subject = field(&rest);
	to = field(&rest);
	body = field(&rest);
	if (mail_address_ok(to))
		for (const char *p = to; *p != '\0'; p++)
			if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("<>,;\"", *p) != NULL)
				abort();
	m.from_name = name;
	m.subject = subject;
	m.to = to;
	m.text = body;
	m.html = body;
	out = mail_render(&m, &len);
	if ((out == NULL) != !mail_address_ok(to))
		abort();
	if (out != NULL) {
		end = strstr(out, "\r\n\r\n");
		if (end == NULL || strlen(out) != len)
			abort();
		end[2] = '\0';
		for (const char *p = out; *p != '\0'; p++) {
			if ((unsigned char)*p >= 0x80 || (*p < 0x20 && *p != '\r' && *p != '\n'))
				abort();
			if (*p == '\r' && p[1] != '\n')
				abort(); /* a bare CR */
			if (*p == '\n' && (p == out || p[-1] != '\r'))
				abort(); /* a bare LF */
		}
		if (fields_named(out, "From:") != 1 || fields_named(out, "To:") != 1 ||
		    fields_named(out, "Subject:") != 1 || fields_named(out, "Bcc:") != 0)
			abort();
		free(out);
	}
	free(copy);
	return 0;
}
