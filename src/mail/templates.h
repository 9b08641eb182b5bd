/* The mail templates compiled into the binary (scripts/embed-mail-templates.py, templates/mail/).
 */
#ifndef ROSTER_MAIL_TEMPLATES_H
#define ROSTER_MAIL_TEMPLATES_H

#include <stddef.h>

struct mail_embedded_template {
	const char *name; /* "verify.subject", "verify.txt", "verify.html", ... */
	size_t len;
	const char *data;
};

/* Ends with an entry whose name is NULL. */
extern const struct mail_embedded_template mail_embedded_templates[];

#endif
