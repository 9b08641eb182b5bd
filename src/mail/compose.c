/*
 * mail_compose: a kind's three templates (embedded, or a --mail-templates
 * override) rendered with src/tmpl/; see compose.h. The templates are parsed
 * once, at load, so a broken override stops `serve` at start, never a mail.
 */
#include "mail/compose.h"
#include "mail/templates.h"
#include "tmpl/tmpl.h"
#include "xmalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEMPLATE_FILE_MAX (64 * 1024) /* an override bigger than this is refused */
#define RENDER_MAX        (64 * 1024) /* bytes of one rendered part */

enum part { PART_SUBJECT, PART_TEXT, PART_HTML, PART_COUNT };

static const char *const part_ext[PART_COUNT] = {"subject", "txt", "html"};
static const enum tmpl_mode part_mode[PART_COUNT] = {TMPL_TEXT, TMPL_TEXT, TMPL_HTML};

static const struct {
	const char *name;
	bool needs_link;
} kinds[MAIL_KIND_COUNT] = {
    [MAIL_KIND_VERIFY] = {"verify", true},
    [MAIL_KIND_RESET] = {"reset", true},
    [MAIL_KIND_RESET_UNKNOWN] = {"reset_unknown", false},
    [MAIL_KIND_PASSWORD_CHANGED] = {"password_changed", false},
    [MAIL_KIND_EMAIL_CHANGE] = {"email_change", true},
    [MAIL_KIND_EMAIL_CHANGE_NOTICE] = {"email_change_notice", false},
    [MAIL_KIND_INVITATION] = {"invitation", true},
    [MAIL_KIND_TEST] = {"test", false},
};

struct mail_templates {
	struct tmpl *t[MAIL_KIND_COUNT][PART_COUNT];
};

const char *
mail_kind_name(enum mail_kind kind)
{
	return (unsigned)kind < MAIL_KIND_COUNT ? kinds[kind].name : NULL;
}

bool
mail_kind_parse(const char *name, enum mail_kind *kind)
{
	for (int k = 0; name != NULL && k < MAIL_KIND_COUNT; k++)
		if (strcmp(kinds[k].name, name) == 0) {
			*kind = (enum mail_kind)k;
			return true;
		}
	return false;
}

static const struct mail_embedded_template *
embedded(const char *file)
{
	for (const struct mail_embedded_template *e = mail_embedded_templates; e->name != NULL; e++)
		if (strcmp(e->name, file) == 0)
			return e;
	return NULL;
}

/* DIR/FILE into *data (malloc'd): 1 read, 0 no such file, -1 error (err set). */
static int
read_override(const char *dir, const char *file, char **data, size_t *len, char *err, size_t errlen)
{
	char path[4096];
	FILE *f;
	size_t n;

	if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
		snprintf(err, errlen, "--mail-templates: directory name too long");
		return -1;
	}
	f = fopen(path, "rb");
	if (f == NULL && errno == ENOENT)
		return 0;
	if (f == NULL) {
		snprintf(
		    err, errlen, "cannot read the mail template %s: %s", path, strerror(errno));
		return -1;
	}
	*data = xmalloc(TEMPLATE_FILE_MAX + 1);
	n = fread(*data, 1, TEMPLATE_FILE_MAX + 1, f);
	if (ferror(f) || n > TEMPLATE_FILE_MAX) {
		snprintf(err, errlen, "cannot read the mail template %s: %s", path,
		    ferror(f) ? "read error" : "larger than 64 KiB");
		fclose(f);
		free(*data);
		*data = NULL;
		return -1;
	}
	fclose(f);
	*len = n;
	return 1;
}

struct mail_templates *
mail_templates_load(const char *dir, char *err, size_t errlen)
{
	struct mail_templates *t = xcalloc(1, sizeof(*t));

	for (int k = 0; k < MAIL_KIND_COUNT; k++)
		for (int p = 0; p < PART_COUNT; p++) {
			char file[64], perr[256];
			char *data = NULL;
			size_t len = 0;
			int got = 0;

			snprintf(file, sizeof(file), "%s.%s", kinds[k].name, part_ext[p]);
			if (dir != NULL && *dir != '\0')
				got = read_override(dir, file, &data, &len, err, errlen);
			if (got < 0)
				goto fail;
			if (got == 0) {
				const struct mail_embedded_template *e = embedded(file);

				if (e == NULL) {
					snprintf(err, errlen, "no embedded mail template %s", file);
					goto fail;
				}
				t->t[k][p] =
				    tmpl_parse(e->data, e->len, part_mode[p], perr, sizeof(perr));
			} else {
				t->t[k][p] =
				    tmpl_parse(data, len, part_mode[p], perr, sizeof(perr));
				free(data);
			}
			if (t->t[k][p] == NULL) {
				snprintf(err, errlen, "mail template %s%s%s: %s", got ? dir : "",
				    got ? "/" : "(embedded) ", file, perr);
				goto fail;
			}
		}
	return t;
fail:
	mail_templates_free(t);
	return NULL;
}

void
mail_templates_free(struct mail_templates *t)
{
	if (t == NULL)
		return;
	for (int k = 0; k < MAIL_KIND_COUNT; k++)
		for (int p = 0; p < PART_COUNT; p++)
			tmpl_free(t->t[k][p]);
	free(t);
}

/* A subject on one line: every control character a space, no space at either end. */
static void
one_line(char *s)
{
	size_t len, start = 0;

	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	len = strlen(s);
	while (len > 0 && s[len - 1] == ' ')
		s[--len] = '\0';
	while (s[start] == ' ')
		start++;
	memmove(s, s + start, len - start + 1);
}

/* The caller's string variables plus the site's (which the caller cannot override). */
static json_t *
scope_new(
    const json_t *vars, const struct mail_site *site, const char *to, char *err, size_t errlen)
{
	json_t *scope = json_object();
	const char *key;
	json_t *v;

	if (vars != NULL && !json_is_object(vars)) {
		snprintf(err, errlen, "mail variables are not a JSON object");
		goto fail;
	}
	json_object_foreach((json_t *)vars, key, v)
	{
		if (!json_is_string(v)) {
			snprintf(err, errlen, "mail variable %.64s is not a string", key);
			goto fail;
		}
		json_object_set(scope, key, v);
	}
	json_object_set_new(
	    scope, "site_name", json_string(site->site_name ? site->site_name : ""));
	json_object_set_new(
	    scope, "public_url", json_string(site->public_url ? site->public_url : ""));
	json_object_set_new(scope, "to", json_string(to));
	return scope;
fail:
	json_decref(scope);
	return NULL;
}

int
mail_compose(const struct mail_templates *t, enum mail_kind kind, const json_t *vars,
    const struct mail_site *site, const char *to, struct mail_message *out, char *err,
    size_t errlen)
{
	char *parts[PART_COUNT] = {NULL};
	json_t *scope = NULL;
	int ret = -1;

	memset(out, 0, sizeof(*out));
	if ((unsigned)kind >= MAIL_KIND_COUNT || to == NULL) {
		snprintf(err, errlen, "no such mail kind, or no recipient");
		return -1;
	}
	scope = scope_new(vars, site, to, err, errlen);
	if (scope == NULL)
		return -1;
	const char *link = json_string_value(json_object_get(scope, "link"));

	if (kinds[kind].needs_link && (link == NULL || *link == '\0')) {
		snprintf(err, errlen, "a %s mail needs its link", kinds[kind].name);
		goto out;
	}
	for (int p = 0; p < PART_COUNT; p++) {
		parts[p] = tmpl_render(t->t[kind][p], scope, RENDER_MAX, NULL);
		if (parts[p] == NULL) {
			snprintf(err, errlen, "the %s mail's %s is larger than 64 KiB",
			    kinds[kind].name, part_ext[p]);
			goto out;
		}
	}
	one_line(parts[PART_SUBJECT]);
	out->from = site->from;
	out->from_name = site->site_name;
	out->to = to;
	out->subject = parts[PART_SUBJECT];
	out->text = parts[PART_TEXT];
	out->html = parts[PART_HTML];
	memset(parts, 0, sizeof(parts));
	ret = 0;
out:
	for (int p = 0; p < PART_COUNT; p++)
		free(parts[p]);
	json_decref(scope);
	return ret;
}

void
mail_composed_clear(struct mail_message *m)
{
	free((char *)m->subject);
	free((char *)m->text);
	free((char *)m->html);
	memset(m, 0, sizeof(*m));
}
