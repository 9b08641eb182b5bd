/*
 * mail: the addresses roster sends to (mail_address_ok, mail_address_ascii) and
 * the --mail-url checks (mail_url_problem, mail_url_redacted). An address is a
 * bare addr-spec: nothing in it can end a header line or an SMTP command.
 */
#include "mail/mail.h"

#include <curl/curl.h>
#include <idn2.h>
#include <stdio.h>
#include <string.h>

#define ADDR_MAX  254
#define LOCAL_MAX 64

static bool
atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* A dot-atom of atext: no leading, trailing or doubled dot. */
static bool
local_ok(const char *s, size_t len)
{
	if (len == 0 || len > LOCAL_MAX || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '.' && s[i + 1] == '.')
			return false;
		if (s[i] != '.' && !atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* LDH labels of 1-63 characters, no hyphen at either end; one label ("localhost") is allowed. */
static bool
ldh_domain_ok(const char *d)
{
	size_t len = strlen(d), label = 0;

	if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
		return false;
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char)d[i];

		if (c == '.' || c == '\0') {
			if (label == 0 || label > 63 || d[i - 1] == '-' || d[i - label] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		        c == '-'))
			return false;
		label++;
	}
	return true;
}

bool
mail_address_ascii(const char *addr, char *out, size_t size)
{
	const char *at;
	char *alabel = NULL;
	bool ascii = true, ok = false;
	size_t len, llen;

	if (addr == NULL)
		return false;
	len = strnlen(addr, ADDR_MAX + 1);
	at = memchr(addr, '@', len);
	if (len > ADDR_MAX || at == NULL || memchr(at + 1, '@', len - (size_t)(at - addr) - 1))
		return false;
	llen = (size_t)(at - addr);
	if (!local_ok(addr, llen))
		return false;
	for (const unsigned char *p = (const unsigned char *)at + 1; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false; /* before IDNA sees it: no control character in any form */
		if (*p >= 0x80)
			ascii = false;
		else if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		             (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'))
			return false; /* libidn2 drops a ',' or ';' of a non-ASCII domain */
	}
	if (!ascii) {
		if (idn2_to_ascii_8z(at + 1, &alabel,
		        IDN2_NONTRANSITIONAL | IDN2_USE_STD3_ASCII_RULES | IDN2_NFC_INPUT) !=
		    IDN2_OK)
			goto out;
	}
	const char *domain = ascii ? at + 1 : alabel;

	if (!ldh_domain_ok(domain) || llen + 1 + strlen(domain) > ADDR_MAX ||
	    llen + 1 + strlen(domain) >= size)
		goto out;
	memcpy(out, addr, llen + 1);
	strcpy(out + llen + 1, domain);
	ok = true;
out:
	idn2_free(alabel);
	return ok;
}

bool
mail_address_ok(const char *addr)
{
	char buf[ADDR_MAX + 1];

	return mail_address_ascii(addr, buf, sizeof(buf));
}

/* --mail-url */

static bool
has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* The parts of an smtp(s) URL; `u` is freed by the caller. NULL when it is none. */
static const char *
smtp_url_parse(const char *url, CURLU **u)
{
	char *host = NULL, *query = NULL, *path = NULL;
	const char *problem = NULL;

	*u = curl_url();
	if (*u == NULL)
		return "out of memory";
	if (curl_url_set(*u, CURLUPART_URL, url, 0) != CURLUE_OK)
		return "not a valid smtp:// or smtps:// URL (percent-encode '@', ':' and '/' in "
		       "the user "
		       "and password)";
	if (curl_url_get(*u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0')
		problem = "an smtp:// URL needs a host: smtp://[user:pass@]host[:port]";
	else if (curl_url_get(*u, CURLUPART_QUERY, &query, 0) == CURLUE_OK &&
	         strcmp(query, "starttls=required") != 0)
		problem = "the only query an smtp URL takes is ?starttls=required";
	else if (curl_url_get(*u, CURLUPART_PATH, &path, 0) == CURLUE_OK &&
	         strcmp(path, "/") != 0 && strcmp(path, "") != 0)
		problem = "an smtp URL takes no path: smtp://[user:pass@]host[:port]";
	curl_free(host);
	curl_free(query);
	curl_free(path);
	return problem;
}

const char *
mail_url_problem(const char *url)
{
	const char *problem = NULL;
	CURLU *u = NULL;

	if (url == NULL || *url == '\0')
		return "empty mail URL: use file:DIR, smtp://host[:port] or smtps://host[:port]";
	if (has_control(url))
		return "the mail URL contains a control character";
	if (strncmp(url, "file:", 5) == 0)
		return url[5] == '\0' ? "file: needs a directory: file:DIR" : NULL;
	if (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0)
		return "unsupported mail URL: use file:DIR, smtp://host[:port] or "
		       "smtps://host[:port]";
	problem = smtp_url_parse(url, &u);
	curl_url_cleanup(u);
	return problem;
}

void
mail_url_redacted(const char *url, char *out, size_t size)
{
	CURLU *u = NULL;
	char *pass = NULL, *full = NULL;

	if (size == 0)
		return;
	if (url == NULL || (strncmp(url, "smtp://", 7) != 0 && strncmp(url, "smtps://", 8) != 0)) {
		snprintf(out, size, "%s", url != NULL ? url : "");
		goto out;
	}
	if (has_control(url) || smtp_url_parse(url, &u) != NULL) {
		/* Unparsable: nothing of it is shown, it may hold a password. */
		snprintf(out, size, "%s(invalid URL, not shown)",
		    url[4] == 's' ? "smtps://" : "smtp://");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_PASSWORD, "***", 0) != CURLUE_OK) {
		snprintf(out, size, "%s(not shown)", url[4] == 's' ? "smtps://" : "smtp://");
		goto out;
	}
	if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK)
		snprintf(out, size, "%s(not shown)", url[4] == 's' ? "smtps://" : "smtp://");
	else
		snprintf(out, size, "%s", full);
out:
	curl_free(pass);
	curl_free(full);
	curl_url_cleanup(u);
}
