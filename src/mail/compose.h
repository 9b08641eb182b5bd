/*
 * mail_compose: one mail of a kind, from its templates (a subject, a text body
 * and an HTML body each), rendered by src/tmpl/ with the caller's variables.
 * The templates are embedded in the binary (templates/mail/, by
 * scripts/embed-mail-templates.py); `--mail-templates DIR` replaces any of
 * them by a file of the same name in DIR: KIND.subject, KIND.txt, KIND.html
 * (docs/operations.md, "Mail").
 *
 * Escaping by construction: the HTML body is a TMPL_HTML template, so every
 * value is HTML-escaped; the subject is a TMPL_TEXT template whose result has
 * every control character (CR and LF included) turned into a space, and
 * mail_render encodes it. Nothing here touches the database or the network.
 *
 * Kinds and their variables (all strings; every kind also gets `site_name`
 * and `public_url` from struct mail_site, and `to`, the recipient):
 *
 *   verify               link, username        verify your address
 *   reset                link, username        reset your password
 *   reset_unknown        (none; `to` is the address asked for)
 *                                              someone asked to reset a password for an
 *                                              address with no account (off by default)
 *   password_changed     username              your password was changed
 *   email_change         link, username, new_email
 *                                              confirm the new address (sent to the new one)
 *   email_change_notice  username, new_email   to the old address: a change was asked
 *   invitation           link, inviter         a teacher invitation from `inviter`
 *   test                 (none)                `roster mail test`
 *
 * `link` is the whole URL the caller built ({public_url}/account/..., API.md);
 * the kinds that name one refuse to compose without it.
 */
#ifndef ROSTER_MAIL_COMPOSE_H
#define ROSTER_MAIL_COMPOSE_H

#include "mail/mail.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum mail_kind {
	MAIL_KIND_VERIFY,
	MAIL_KIND_RESET,
	MAIL_KIND_RESET_UNKNOWN,
	MAIL_KIND_PASSWORD_CHANGED,
	MAIL_KIND_EMAIL_CHANGE,
	MAIL_KIND_EMAIL_CHANGE_NOTICE,
	MAIL_KIND_INVITATION,
	MAIL_KIND_TEST,
	MAIL_KIND_COUNT
};

/* "verify", "reset", ... (the names above; what the outbox stores). */
const char *mail_kind_name(enum mail_kind kind);
/* The kind named `name`; false when there is none. */
bool mail_kind_parse(const char *name, /* OUT: */ enum mail_kind *kind);

/* What every mail of a deployment shares (--site-name, --public-url, --mail-from). */
struct mail_site {
	const char *site_name;
	const char *public_url;
	const char *from;
};

struct mail_templates;

/*
 * Every kind's three templates, parsed: the embedded ones, each replaced by
 * DIR/KIND.subject, DIR/KIND.txt or DIR/KIND.html when that file exists
 * (`dir` NULL or "": embedded only). NULL with `err` set (naming the file and
 * the place) when an override cannot be read or does not parse, so `serve`
 * refuses to start on a broken template instead of failing each mail.
 * Immutable once made: any number of threads may compose with it.
 */
struct mail_templates *mail_templates_load(const char *dir, char *err, size_t errlen);
void mail_templates_free(struct mail_templates *t);

/*
 * Composes one mail of `kind` to `to` with `vars` (a JSON object of strings,
 * borrowed): fills `out` (from = site->from, from_name = site->site_name and
 * to borrowed, so they must outlive `out`; a malloc'd subject, text and html
 * that mail_composed_clear frees).
 * -1 with `err` set when `vars` lacks the kind's `link`, a value is not a
 * string, or a body exceeds 64 KiB; `out` then holds nothing to free.
 */
int mail_compose(const struct mail_templates *t, enum mail_kind kind, const json_t *vars,
    const struct mail_site *site, const char *to, /* OUT: */ struct mail_message *out, char *err,
    size_t errlen);

/* Frees what mail_compose allocated in `m` and clears it. */
void mail_composed_clear(struct mail_message *m);

#endif
