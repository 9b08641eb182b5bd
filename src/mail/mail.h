/*
 * mail: one message, rendered as RFC 5322 and handed to a transport chosen by
 * URL (`--mail-url`): `file:DIR` (one .eml file per mail), `smtp://` and
 * `smtps://` through libcurl. The outbox and its delivery loop (the
 * transactional part, DESIGN.md I7) call this; nothing here touches the
 * database or HTTP.
 *
 * Header safety is this module's job: an address that mail_address_ok refuses
 * is never sent to, and CR, LF and other control characters of a subject or
 * display name never reach a header (a non-ASCII subject is RFC 2047 encoded).
 */
#ifndef ROSTER_MAIL_H
#define ROSTER_MAIL_H

#include <stdbool.h>
#include <stddef.h>

/* One message; every string UTF-8. The bodies are complete (already rendered and escaped). */
struct mail_message {
	const char *from;      /* addr-spec (`--mail-from`) */
	const char *from_name; /* display name (`--site-name`), or NULL */
	const char *to;        /* addr-spec */
	const char *subject;
	const char *text; /* text/plain part */
	const char *html; /* text/html part, or NULL for a text-only mail */
};

/*
 * A plain addr-spec roster will send to: no control characters, no spaces, one '@', bounded length.
 * Precisely: at most 254 bytes; a dot-atom local part of at most 64 ASCII atext characters (the
 * apostrophe of o'brien@ is atext and allowed; '"', '<', '>', ',', ';', '(', ')', '[', ']', ':',
 * '\\' and spaces are not); a domain of LDH labels, or an internationalised domain that IDNA2008
 * turns into such labels (the mail then carries its A-label, as email_key does). A non-ASCII local
 * part is refused: it needs SMTPUTF8, which roster does not speak.
 */
bool mail_address_ok(const char *addr);

/*
 * `addr` as it goes on the wire: the domain as its A-label; false when mail_address_ok refuses it
 * or it does not fit `size`.
 */
bool mail_address_ascii(const char *addr, /* OUT: */ char *out, size_t size);

/* Once per process, before any thread sends (main.c calls it first): libcurl's global init. */
void mail_init(void);

/*
 * The message as RFC 5322 text with CRLF line ends, a Message-ID (at the
 * domain of `from`) and a Date, multipart/alternative when there is an HTML
 * part; malloc'd, NULL when an address is refused or memory runs out.
 */
char *mail_render(const struct mail_message *m, /* OUT: */ size_t *len);

/* Why `url` is not a usable --mail-url (never quoting a password); NULL when usable. */
const char *mail_url_problem(const char *url);
/* `url` fit for logs: a password replaced by `***`. */
void mail_url_redacted(const char *url, char *out, size_t size);

enum mail_outcome {
	MAIL_SENT,    /* accepted by the server, or written to its file */
	MAIL_RETRY,   /* temporary: connection refused, timeout, SMTP 4xx, disk full */
	MAIL_REFUSED, /* permanent: SMTP 5xx, an address refused by mail_address_ok */
};

struct mail_result {
	enum mail_outcome outcome;
	char detail[512]; /* the server's answer, an error, or the file written; never a secret */
};

struct mail_transport;

/* A transport for `url` (checked by mail_url_problem); NULL with `err` set when it cannot be made.
 */
struct mail_transport *mail_transport_open(const char *url, char *err, size_t errlen);
void mail_transport_close(struct mail_transport *t);

/*
 * Sends one message; blocks for at most the transport's timeout (the caller is
 * the delivery thread, never an HTTP or hashing thread). One transport is used
 * by one thread at a time.
 */
void mail_send(
    struct mail_transport *t, const struct mail_message *m, /* OUT: */ struct mail_result *out);

#endif
