/*
 * mail_render: one message as RFC 5322 text (CRLF), MIME multipart/alternative
 * with quoted-printable UTF-8 parts. Header safety: addresses pass
 * mail_address_ascii or the message is not rendered; a subject or display name
 * is cleaned (every control character, CR, LF and NUL included, and every
 * invalid UTF-8 byte becomes one space or U+FFFD) and then written either as
 * plain printable ASCII or as RFC 2047 encoded-words, so no value can end a
 * header line. Lines stay within 78 characters.
 */
#include "mail/mail.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HEADER_TEXT_MAX 998 /* bytes of a cleaned subject or display name */
#define QP_LINE         76

struct buf {
	char *p;
	size_t len, cap;
};

static void
put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 1024;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* The length of the valid UTF-8 sequence at s (1-4), its code point in *cp; 0 when invalid. */
static size_t
utf8_seq(const unsigned char *s, uint32_t *cp)
{
	size_t n;
	uint32_t c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, c &= 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, c &= 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, c &= 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
	    (n == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	*cp = c;
	return n;
}

/*
 * `in` fit for a header: controls (C0 with CR, LF, TAB and NUL; DEL; C1; the
 * line and paragraph separators) become a space, runs of spaces one space,
 * invalid UTF-8 U+FFFD; trimmed; at most HEADER_TEXT_MAX bytes, cut at a
 * character boundary. Stripping rather than refusing: the value comes from a
 * user (an inviter's name) and refusing would let that user block the mail.
 */
static char *
header_clean(const char *in)
{
	struct buf b = {0};
	const unsigned char *s = (const unsigned char *)(in != NULL ? in : "");
	bool space = true; /* drops leading spaces */

	put(&b, "", 0);
	while (*s != '\0') {
		uint32_t cp = 0;
		size_t n = utf8_seq(s, &cp);

		if (n == 0) {
			n = 1;
			cp = 0xfffd;
		}
		bool ctl = cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) || cp == 0x2028 ||
		           cp == 0x2029 || cp == ' ';
		size_t add = ctl ? 1 : cp == 0xfffd && n == 1 ? 3 : n;

		if (b.len + add > HEADER_TEXT_MAX)
			break;
		if (ctl) {
			if (!space)
				put(&b, " ", 1);
			space = true;
		} else {
			put(&b, cp == 0xfffd && n == 1 ? "\xef\xbf\xbd" : (const char *)s,
			    cp == 0xfffd && n == 1 ? 3 : n);
			space = false;
		}
		s += n;
	}
	while (b.len > 0 && b.p[b.len - 1] == ' ')
		b.p[--b.len] = '\0';
	return b.p;
}

static bool
plain_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return false;
	return true;
}

/*
 * `text` as RFC 2047 "B" encoded-words, each at most 42 bytes of UTF-8 (68
 * characters encoded, never splitting a character), separated by CRLF SP: a
 * first line "Subject: " plus one word is 77 characters.
 */
static void
put_encoded_words(struct buf *b, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t len = strlen(text), i = 0;

	while (i < len) {
		size_t chunk = 0;
		char b64[64];

		while (i + chunk < len) {
			uint32_t cp;
			size_t n = utf8_seq(s + i + chunk, &cp);

			if (n == 0)
				n = 1; /* header_clean left none; stay bounded regardless */
			if (chunk + n > 42)
				break;
			chunk += n;
		}
		sodium_bin2base64(b64, sizeof(b64), s + i, chunk, sodium_base64_VARIANT_ORIGINAL);
		if (i > 0)
			puts_(b, "\r\n ");
		puts_(b, "=?UTF-8?B?");
		puts_(b, b64);
		puts_(b, "?=");
		i += chunk;
	}
}

static void
put_subject(struct buf *b, const char *subject)
{
	char *s = header_clean(subject);

	puts_(b, "Subject: ");
	if (plain_ascii(s) && strlen(s) <= 78 - 9 && strstr(s, "=?") == NULL)
		puts_(b, s);
	else
		put_encoded_words(b, s);
	puts_(b, "\r\n");
	free(s);
}

/* "From: name <addr>": the name a quoted-string when plain ASCII, else encoded-words. */
static void
put_mailbox(struct buf *b, const char *field, const char *name, const char *addr)
{
	char *n = header_clean(name);

	puts_(b, field);
	if (n[0] == '\0') {
		puts_(b, addr);
		goto out;
	}
	bool quoted =
	    plain_ascii(n) && strlen(field) + strlen(n) + 2 <= 78 && strstr(n, "=?") == NULL;

	if (quoted) {
		put(b, "\"", 1);
		for (const char *p = n; *p != '\0'; p++) {
			if (*p == '"' || *p == '\\')
				put(b, "\\", 1);
			put(b, p, 1);
		}
		put(b, "\"", 1);
	} else {
		put_encoded_words(b, n);
	}
	/* Quoted names are short; after encoded-words the address takes a line of its own. */
	puts_(
	    b, quoted && strlen(field) + strlen(n) + 2 + strlen(addr) + 3 <= 78 ? " <" : "\r\n <");
	puts_(b, addr);
	puts_(b, ">");
out:
	puts_(b, "\r\n");
	free(n);
}

static void
put_date(struct buf *b)
{
	static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const months[] = {
	    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t now = time(NULL);
	struct tm tm;
	char line[64];

	gmtime_r(&now, &tm);
	snprintf(line, sizeof(line), "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	puts_(b, line);
}

static void
random_hex(char *out, size_t bytes)
{
	unsigned char r[32];

	randombytes_buf(r, bytes);
	sodium_bin2hex(out, bytes * 2 + 1, r, bytes);
}

/*
 * `text` quoted-printable (RFC 2045): line ends (LF or CRLF) become CRLF, lines
 * at most 76 characters with soft breaks, '=' and every byte outside printable
 * ASCII encoded, a space or tab before a line end encoded, a leading '.' encoded
 * (no SMTP dot-stuffing question arises).
 */
static void
put_qp(struct buf *b, const char *text)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t col = 0;

	for (const unsigned char *s = (const unsigned char *)text; *s != '\0'; s++) {
		char enc[4];
		size_t n;

		if (*s == '\r' && s[1] == '\n')
			continue;
		if (*s == '\n') {
			puts_(b, "\r\n");
			col = 0;
			continue;
		}
		bool at_end = s[1] == '\0' || s[1] == '\n' || (s[1] == '\r' && s[2] == '\n');

		if ((*s >= 33 && *s <= 126 && *s != '=' && !(*s == '.' && col == 0)) ||
		    ((*s == ' ' || *s == '\t') && !at_end)) {
			enc[0] = (char)*s;
			n = 1;
		} else {
			enc[0] = '=';
			enc[1] = hex[*s >> 4];
			enc[2] = hex[*s & 15];
			n = 3;
		}
		if (col + n > QP_LINE - 1) { /* room for the soft break's '=' */
			puts_(b, "=\r\n");
			col = 0;
			if (enc[0] == '.' && n == 1) {
				enc[0] = '=', enc[1] = '2', enc[2] = 'E';
				n = 3;
			}
		}
		put(b, enc, n);
		col += n;
	}
	if (col > 0)
		puts_(b, "\r\n");
}

static void
put_part(struct buf *b, const char *type, const char *body)
{
	puts_(b, "Content-Type: ");
	puts_(b, type);
	puts_(b, "; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n");
	put_qp(b, body);
}

char *
mail_render(const struct mail_message *m, size_t *len)
{
	char from[256], to[256], id[33], boundary[33];
	struct buf b = {0};

	if (m == NULL || !mail_address_ascii(m->from, from, sizeof(from)) ||
	    !mail_address_ascii(m->to, to, sizeof(to)))
		return NULL;
	put_mailbox(&b, "From: ", m->from_name, from);
	put_mailbox(&b, "To: ", NULL, to);
	put_subject(&b, m->subject);
	put_date(&b);
	random_hex(id, 16);
	puts_(&b, "Message-ID: <");
	puts_(&b, id);
	puts_(&b, strchr(from, '@'));
	puts_(&b, ">\r\nMIME-Version: 1.0\r\n");
	if (m->html == NULL) {
		put_part(&b, "text/plain", m->text != NULL ? m->text : "");
		goto out;
	}
	/* "=_" cannot occur in quoted-printable text, so the boundary never appears in a part. */
	random_hex(boundary, 12);
	puts_(&b, "Content-Type: multipart/alternative; boundary=\"=_");
	puts_(&b, boundary);
	puts_(&b, "\"\r\n\r\nThis is a MIME message.\r\n");
	for (int i = 0; i < 2; i++) {
		puts_(&b, "\r\n--=_");
		puts_(&b, boundary);
		puts_(&b, "\r\n");
		put_part(&b, i == 0 ? "text/plain" : "text/html",
		    i == 0 ? (m->text != NULL ? m->text : "") : m->html);
	}
	puts_(&b, "\r\n--=_");
	puts_(&b, boundary);
	puts_(&b, "--\r\n");
out:
	if (len != NULL)
		*len = b.len;
	return b.p;
}
