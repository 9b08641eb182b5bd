/*
 * tmpl: a small logic-less template renderer (a subset of Mustache) that
 * escapes by construction, for the pages (src/pages/) and the mails
 * (src/mail/). There is no syntax that inserts a value unescaped.
 *
 *   {{name}}              the value of `name`, escaped for the template's mode
 *   {{a.b}}               a nested object's member
 *   {{#name}}…{{/name}}   once per element of an array (the element's members
 *                         are then in scope, `{{.}}` is the element itself), or
 *                         once when the value is true, a non-empty string, a
 *                         non-zero number or an object
 *   {{^name}}…{{/name}}   once when the value is missing, null, false, "", 0 or []
 *   {{! comment }}
 *
 * TMPL_HTML escapes & < > " ' (so a value is safe in element content and in a
 * quoted attribute); TMPL_TEXT inserts values as they are (a plain-text mail
 * body). Values come from a jansson object; strings, integers, reals and
 * booleans are rendered, null and missing names render nothing.
 *
 * A parsed template is immutable and may be rendered by many threads at once.
 */
#ifndef ROSTER_TMPL_H
#define ROSTER_TMPL_H

#include <jansson.h>
#include <stddef.h>

enum tmpl_mode { TMPL_HTML, TMPL_TEXT };

struct tmpl;

/*
 * Parses `len` bytes of `src`. NULL when the template is malformed (an
 * unclosed tag or section, a mismatched {{/name}}): `err` then says where.
 */
struct tmpl *tmpl_parse(const char *src, size_t len, enum tmpl_mode mode, char *err, size_t errlen);
void tmpl_free(struct tmpl *t);

/*
 * The template rendered with `vars` as a NUL-terminated malloc'd string
 * (`*len` without the NUL, when `len` is not NULL); NULL when the output
 * would exceed `max` bytes or memory runs out.
 */
char *tmpl_render(const struct tmpl *t, const json_t *vars, size_t max, size_t *len);

#endif
