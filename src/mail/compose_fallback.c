/*
 * TEMPORARY (branch `mail`): the smallest mail_compose behind src/mail/compose.h
 * until the `mailx` branch's templates land; fixed English texts, every value
 * HTML-escaped in the HTML part, control characters of the subject turned into
 * spaces. Delete this file (and its meson.build line) when mailx's compose.c
 * is merged: the interface is theirs, this only keeps the outbox testable.
 */
#include "mail/compose.h"
#include "xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *name, *subject,
	    *text; /* text: %1$s link, %2$s username/inviter, %3$s new_email */
	bool link;
} kinds[MAIL_KIND_COUNT] = {
    [MAIL_KIND_VERIFY] = {"verify", "Verify your email address",
        "Hello %2$s,\n\nconfirm your address by opening this link:\n%1$s\n%3$s", true},
    [MAIL_KIND_RESET] = {"reset", "Reset your password",
        "Hello %2$s,\n\nset a new password by opening this link:\n%1$s\n%3$s"
        "\nIf you did not ask for this, ignore this mail.\n",
        true},
    [MAIL_KIND_RESET_UNKNOWN] = {"reset_unknown", "Password reset request",
        "Someone asked to reset a password for this address, which has no account.%1$s%2$s%3$s\n",
        false},
    [MAIL_KIND_PASSWORD_CHANGED] = {"password_changed", "Your password was changed",
        "Hello %2$s,\n\nyour password was changed.%1$s%3$s\n", false},
    [MAIL_KIND_EMAIL_CHANGE] = {"email_change", "Confirm your new email address",
        "Hello %2$s,\n\nconfirm %3$s as your new address by opening this link:\n%1$s\n", true},
    [MAIL_KIND_EMAIL_CHANGE_NOTICE] = {"email_change_notice", "Your email address is changing",
        "Hello %2$s,\n\na change of your address to %3$s was asked.%1$s\n", false},
    [MAIL_KIND_INVITATION] = {"invitation", "You are invited to teach",
        "%2$s invites you as a teacher. Accept by opening this link:\n%1$s\n%3$s", true},
    [MAIL_KIND_TEST] = {"test", "Test mail", "This is a test mail.%1$s%2$s%3$s\n", false},
};

const char *
mail_kind_name(enum mail_kind kind)
{
	return (unsigned)kind < MAIL_KIND_COUNT ? kinds[kind].name : "unknown";
}

bool
mail_kind_parse(const char *name, enum mail_kind *kind)
{
	for (int i = 0; i < MAIL_KIND_COUNT; i++)
		if (strcmp(kinds[i].name, name) == 0) {
			*kind = (enum mail_kind)i;
			return true;
		}
	return false;
}

struct mail_templates {
	int unused;
};

struct mail_templates *
mail_templates_load(const char *dir, char *err, size_t errlen)
{
	(void)dir;
	(void)err;
	(void)errlen;
	return xcalloc(1, sizeof(struct mail_templates));
}

void
mail_templates_free(struct mail_templates *t)
{
	free(t);
}

static const char *
var(const json_t *vars, const char *name)
{
	const char *v = json_string_value(json_object_get(vars, name));

	return v != NULL ? v : "";
}

static char *
html_escaped(const char *s)
{
	size_t n = 0;
	char *out = xmalloc(6 * strlen(s) + 1);

	for (; *s != '\0'; s++) {
		const char *e = NULL;

		switch (*s) {
		case '&':
			e = "&amp;";
			break;
		case '<':
			e = "&lt;";
			break;
		case '>':
			e = "&gt;";
			break;
		case '"':
			e = "&quot;";
			break;
		case '\'':
			e = "&#39;";
			break;
		default:
			out[n++] = *s;
			continue;
		}
		memcpy(out + n, e, strlen(e));
		n += strlen(e);
	}
	out[n] = '\0';
	return out;
}

int
mail_compose(const struct mail_templates *t, enum mail_kind kind, const json_t *vars,
    const struct mail_site *site, const char *to, struct mail_message *out, char *err,
    size_t errlen)
{
	const char *link = var(vars, "link"), *who = var(vars, "username");
	char *text = NULL, *html = NULL, *subject = NULL, *e[3];
	int n;

	(void)t;
	memset(out, 0, sizeof(*out));
	if ((unsigned)kind >= MAIL_KIND_COUNT || (kinds[kind].link && link[0] == '\0')) {
		snprintf(err, errlen, "no link for a mail of kind %s", mail_kind_name(kind));
		return -1;
	}
	if (kind == MAIL_KIND_INVITATION)
		who = var(vars, "inviter");
	n = asprintf(&text, kinds[kind].text, link, who, var(vars, "new_email"));
	e[0] = html_escaped(link);
	e[1] = html_escaped(who);
	e[2] = html_escaped(var(vars, "new_email"));
	if (n >= 0 &&
	    asprintf(&html, "<!doctype html><p><a href=\"%s\">%s</a></p><p>%s %s</p>", e[0], e[0],
	        e[1], e[2]) >= 0 &&
	    asprintf(&subject, "%s: %s", site->site_name, kinds[kind].subject) >= 0) {
		for (char *c = subject; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = ' ';
		*out = (struct mail_message){.from = site->from,
		    .from_name = site->site_name,
		    .to = to,
		    .subject = subject,
		    .text = text,
		    .html = html};
		n = 0;
	} else {
		free(text);
		free(html);
		snprintf(err, errlen, "out of memory");
		n = -1;
	}
	for (int i = 0; i < 3; i++)
		free(e[i]);
	return n;
}

void
mail_composed_clear(struct mail_message *m)
{
	free((char *)m->subject);
	free((char *)m->text);
	free((char *)m->html);
	memset(m, 0, sizeof(*m));
}
