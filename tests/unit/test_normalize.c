/*
 * Unit tests for src/accounts/normalize.c: username and email normalisation
 * into display values and uniqueness keys, invisible-character detection and
 * UTF-8 length. The spec is the header comment in acct.h and shared/API.md.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "accounts/acct.h"
#include "support.h"

struct norm {
	enum acct_status st;
	char *display;
	char *key;
	const char *msg;
};

static struct norm
username_n(const char *s, size_t len)
{
	struct norm r = {.display = (char *)"sentinel", .key = (char *)"sentinel", .msg = NULL};

	r.st = acct_username_normalize(s, len, &r.display, &r.key, &r.msg);
	return r;
}

static struct norm
username(const char *s)
{
	return username_n(s, strlen(s));
}

static struct norm
email(const char *s)
{
	struct norm r = {.display = (char *)"sentinel", .key = (char *)"sentinel", .msg = NULL};

	r.st = acct_email_normalize(s, strlen(s), &r.display, &r.key, &r.msg);
	return r;
}

static void
norm_free(struct norm *r)
{
	if (r->st == ACCT_OK) {
		free(r->display);
		free(r->key);
	}
	r->display = r->key = NULL;
}

/* Asserts `s` normalises (as a username or email) to `display` and `key`. */
static void
expect_ok(struct norm r, const char *in, const char *display, const char *key)
{
	cr_assert_eq(
	    r.st, ACCT_OK, "\"%s\": status %d, msg %s", in, r.st, r.msg ? r.msg : "(null)");
	cr_assert_not_null(r.display, "\"%s\": display is NULL", in);
	cr_assert_not_null(r.key, "\"%s\": key is NULL", in);
	if (display != NULL)
		cr_assert_str_eq(r.display, display, "\"%s\": display", in);
	if (key != NULL)
		cr_assert_str_eq(r.key, key, "\"%s\": key", in);
	norm_free(&r);
}

/* Asserts rejection with `msg` (any message when NULL) and both outputs NULL. */
static void
expect_invalid(struct norm r, const char *in, const char *msg)
{
	cr_assert_eq(r.st, ACCT_INVALID, "\"%s\" should be invalid, status %d", in, r.st);
	cr_assert_null(r.display, "\"%s\": display must be NULL on ACCT_INVALID", in);
	cr_assert_null(r.key, "\"%s\": key must be NULL on ACCT_INVALID", in);
	cr_assert_not_null(r.msg, "\"%s\": no message", in);
	if (msg != NULL)
		cr_assert_str_eq(r.msg, msg, "\"%s\": message", in);
}

/* Key of a username that must be valid; the caller frees it. */
static char *
username_key(const char *s)
{
	struct norm r = username(s);

	cr_assert_eq(r.st, ACCT_OK, "\"%s\": status %d, msg %s", s, r.st, r.msg ? r.msg : "");
	free(r.display);
	return r.key;
}

static char *
email_key(const char *s)
{
	struct norm r = email(s);

	cr_assert_eq(r.st, ACCT_OK, "\"%s\": status %d, msg %s", s, r.st, r.msg ? r.msg : "");
	free(r.display);
	return r.key;
}

static char *
repeat(const char *unit, size_t n)
{
	size_t ul = strlen(unit);
	char *s = malloc(ul * n + 1);

	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ul, unit, ul);
	s[ul * n] = '\0';
	return s;
}

/* Zero-width, invisible and bidi-control characters, as UTF-8. */
static const char *const invisibles[] = {
    "\u200B",                                         /* ZERO WIDTH SPACE */
    "\u200C",                                         /* ZERO WIDTH NON-JOINER */
    "\u200D",                                         /* ZERO WIDTH JOINER */
    "\u2060",                                         /* WORD JOINER (zero width no-break) */
    "\uFEFF",                                         /* ZERO WIDTH NO-BREAK SPACE / BOM */
    "\u200E",                                         /* LEFT-TO-RIGHT MARK */
    "\u200F",                                         /* RIGHT-TO-LEFT MARK */
    "\u061C",                                         /* ARABIC LETTER MARK */
    "\u202A", "\u202B", "\u202C", "\u202D", "\u202E", /* embeddings, overrides */
    "\u2066", "\u2067", "\u2068", "\u2069",           /* isolates */
};

/* ---- usernames ---- */

Test(acct_username, ascii_kept_as_typed_key_lowercased)
{
	expect_ok(username("John"), "John", "John", "john");
}

Test(acct_username, fullwidth_folds_to_ascii)
{
	expect_ok(username("\uFF55\uFF53\uFF45\uFF52"), "ｕｓｅｒ", "user", "user");
}

Test(acct_username, fullwidth_capitals_fold_to_same_key)
{
	char *a = username_key("\uFF2A\uFF4F\uFF48\uFF4E"); /* Ｊｏｈｎ */
	char *b = username_key("john");

	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

Test(acct_username, ligature_nfkc_expanded)
{
	expect_ok(username("\uFB01le"), "ﬁle", "file", "file");
}

Test(acct_username, sharp_s_case_folds_to_ss)
{
	char *a = username_key("Stra\u00DFe");
	char *b = username_key("strasse");
	char *c = username_key("STRASSE");

	cr_assert_str_eq(a, b, "key(Straße) \"%s\" != key(strasse) \"%s\"", a, b);
	cr_assert_str_eq(b, c);
	free(a);
	free(b);
	free(c);
}

Test(acct_username, sharp_s_display_kept)
{
	expect_ok(username("Stra\u00DFe"), "Straße", "Stra\u00DFe", NULL);
}

Test(acct_username, combining_mark_composes_like_precomposed)
{
	char *decomposed = username_key("Jose\u0301");
	char *precomposed = username_key("Jos\u00E9");
	char *upper = username_key("JOS\u00C9");
	struct norm r = username("Jose\u0301");

	cr_assert_str_eq(decomposed, precomposed);
	cr_assert_str_eq(upper, precomposed);
	cr_assert_str_eq(precomposed, "jos\u00E9");
	/* The display value is NFKC too: composed. */
	expect_ok(r, "Jose\\u0301", "Jos\u00E9", NULL);
	free(decomposed);
	free(precomposed);
	free(upper);
}

Test(acct_username, single_combined_letter_e_acute)
{
	char *a = username_key("e\u0301");
	char *b = username_key("\u00E9");

	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

Test(acct_username, allowed_punctuation_accepted)
{
	expect_ok(username("a@b.c+d-e_f"), "a@b.c+d-e_f", "a@b.c+d-e_f", "a@b.c+d-e_f");
	expect_ok(username("@.+-_"), "@.+-_", "@.+-_", "@.+-_");
}

Test(acct_username, digits_and_non_ascii_letters_accepted)
{
	expect_ok(username("user_1"), "user_1", "user_1", "user_1");
	expect_ok(username("Jos\u00E9"), "José", "Jos\u00E9", "jos\u00E9");
	expect_ok(username("\u7528\u6237_1"), "用户_1", "\u7528\u6237_1", "\u7528\u6237_1");
	expect_ok(username("\u03A9mega"), "Ωmega", "\u03A9mega", "\u03C9mega");
}

Test(acct_username, invisible_characters_rejected)
{
	for (size_t i = 0; i < sizeof invisibles / sizeof invisibles[0]; i++) {
		char in[64];

		snprintf(in, sizeof in, "ab%scd", invisibles[i]);
		expect_invalid(username(in), invisibles[i], ACCT_MSG_INVISIBLE);
	}
}

Test(acct_username, invisible_at_edges_rejected)
{
	expect_invalid(username("\u200Buser"), "ZWSP first", ACCT_MSG_INVISIBLE);
	expect_invalid(username("user\u200D"), "ZWJ last", ACCT_MSG_INVISIBLE);
	expect_invalid(username("\uFEFFuser"), "BOM first", ACCT_MSG_INVISIBLE);
	expect_invalid(username("\u202Eresu"), "RLO first", ACCT_MSG_INVISIBLE);
}

Test(acct_username, hangul_fillers_and_joiners_rejected)
{
	/* Letters (Lo) or marks that render as nothing: "admin<FILLER>" looks like "admin". */
	expect_invalid(username("admin\u3164"), "HANGUL FILLER", ACCT_MSG_INVISIBLE);
	expect_invalid(username("admin\uFFA0"), "HALFWIDTH HANGUL FILLER", ACCT_MSG_INVISIBLE);
	expect_invalid(username("\u115Fadmin"), "HANGUL CHOSEONG FILLER", ACCT_MSG_INVISIBLE);
	expect_invalid(username("ad\u034Fmin"), "COMBINING GRAPHEME JOINER", ACCT_MSG_INVISIBLE);
}

Test(acct_username, space_rejected)
{
	expect_invalid(username(" "), " ", ACCT_MSG_USERNAME_INVALID);
	expect_invalid(username("a b"), "a b", ACCT_MSG_USERNAME_INVALID);
	expect_invalid(username("a\tb"), "a\\tb", ACCT_MSG_USERNAME_INVALID);
}

Test(acct_username, no_break_space_rejected)
{
	/* NFKC turns U+00A0 into a plain space: still not allowed. */
	expect_invalid(username("a\u00A0b"), "a<NBSP>b", ACCT_MSG_USERNAME_INVALID);
}

Test(acct_username, symbols_rejected)
{
	static const char *const bad[] = {
	    "!",
	    "a!",
	    "a#b",
	    "a/b",
	    "a\\b",
	    "a'b",
	    "a\"b",
	    "a<b>",
	    "a,b",
	    "a;b",
	    "a=b",
	    "\u20ACuro",
	    "a\U0001F600",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_invalid(username(bad[i]), bad[i], ACCT_MSG_USERNAME_INVALID);
}

Test(acct_username, embedded_nul_rejected)
{
	expect_invalid(username_n("us\0er", 5), "us\\0er", ACCT_MSG_USERNAME_INVALID);
}

Test(acct_username, respects_len_not_nul)
{
	expect_ok(username_n("user!!!", 4), "user!!! (len 4)", "user", "user");
}

Test(acct_username, input_need_not_be_nul_terminated)
{
	size_t len;
	char *s = unterminated("Jose\u0301_1", &len);
	struct norm r = username_n(s, len);

	expect_ok(r, "unterminated Jose\\u0301_1", "Jos\u00E9_1", "jos\u00E9_1");
	unterminated_free(s, len);
	s = unterminated("a b", &len);
	expect_invalid(username_n(s, len), "unterminated \"a b\"", ACCT_MSG_USERNAME_INVALID);
	unterminated_free(s, len);
}

Test(acct_username, empty_is_blank)
{
	expect_invalid(username(""), "", ACCT_MSG_BLANK);
}

Test(acct_username, length_150_accepted)
{
	char *s = repeat("a", 150);

	expect_ok(username(s), "a*150", s, s);
	free(s);
}

Test(acct_username, length_151_too_long)
{
	char *s = repeat("a", 151);

	expect_invalid(username(s), "a*151", ACCT_MSG_USERNAME_TOO_LONG);
	free(s);
}

Test(acct_username, length_counts_characters_not_bytes)
{
	char *ok = repeat("\u00E9", 150); /* 300 bytes */
	char *bad = repeat("\u00E9", 151);

	expect_ok(username(ok), "é*150", ok, NULL);
	expect_invalid(username(bad), "é*151", ACCT_MSG_USERNAME_TOO_LONG);
	free(ok);
	free(bad);
}

/* ---- emails ---- */

Test(acct_email, lowercases_whole_address_for_key)
{
	expect_ok(
	    email("John@Example.COM"), "John@Example.COM", "John@Example.COM", "john@example.com");
}

Test(acct_email, case_variants_share_key)
{
	char *a = email_key("A@X.com");
	char *b = email_key("a@x.COM");

	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

Test(acct_email, trims_ascii_white_space)
{
	expect_ok(
	    email("  \tjohn@example.com \t\n"), "padded", "john@example.com", "john@example.com");
}

Test(acct_email, trims_unicode_white_space)
{
	/* NO-BREAK SPACE, IDEOGRAPHIC SPACE, EM SPACE. */
	expect_ok(email("\u00A0\u3000john@example.com\u2003"), "unicode-padded", "john@example.com",
	    "john@example.com");
}

Test(acct_email, fullwidth_same_key_as_ascii)
{
	char *a = email_key("\uFF4A\uFF4F\uFF48\uFF4E\uFF20\uFF45\uFF58\uFF41\uFF4D\uFF50\uFF4C"
	                    "\uFF45.\uFF43\uFF4F\uFF4D");
	char *b = email_key("john@example.com");

	cr_assert_str_eq(a, b);
	free(a);
	free(b);
}

Test(acct_email, fullwidth_display_nfkc)
{
	expect_ok(email("\uFF2A\uFF4F\uFF48\uFF4E\uFF20example\uFF0Ecom"), "Ｊｏｈｎ＠example．com",
	    "John@example.com", "john@example.com");
}

Test(acct_email, plus_tag_and_subdomains_valid)
{
	expect_ok(email("a+tag@sub.example.co.uk"), "a+tag@sub.example.co.uk",
	    "a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk");
}

Test(acct_email, dot_atom_local_parts_valid)
{
	expect_ok(email("first.last@example.com"), "first.last", NULL, "first.last@example.com");
	expect_ok(email("o'neil_x-y!#$%&*/=?^`{|}~@example.com"), "atext", NULL, NULL);
	expect_ok(email("a@b-c.example.com"), "inner hyphen", NULL, "a@b-c.example.com");
}

Test(acct_email, invalid_syntax_rejected)
{
	static const char *const bad[] = {
	    "no-at", "a@b", /* single-label domain */
	    "a@@b.com", "a@b@c.com", "@b.com", "a@", ".a@b.com", "a.@b.com", "a..b@c.com",
	    "a@-b.com", "a@b-.com", "a@.b.com", "a@b..com", "a @b.com", "a@b .com", "a(b)@c.com",
	    "a,b@c.com", "\"a b\"@example.com", /* quoted string: not a dot-atom */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_invalid(email(bad[i]), bad[i], ACCT_MSG_EMAIL_INVALID);
}

Test(acct_email, empty_rejected)
{
	expect_invalid(email(""), "", NULL);
	expect_invalid(email("   "), "   ", NULL);
}

Test(acct_email, zero_width_inside_rejected_as_invisible)
{
	expect_invalid(email("jo\u200Bhn@example.com"), "ZWSP in local part", ACCT_MSG_INVISIBLE);
	expect_invalid(email("john@exa\u200Dmple.com"), "ZWJ in domain", ACCT_MSG_INVISIBLE);
	expect_invalid(email("john@example.com\u202E"), "RLO at end", ACCT_MSG_INVISIBLE);
	expect_invalid(email("\uFEFFjohn@example.com"), "BOM at start", ACCT_MSG_INVISIBLE);
}

Test(acct_email, input_need_not_be_nul_terminated)
{
	size_t len;
	char *s = unterminated(" John@Example.com\t", &len);
	struct norm r = {0};

	r.st = acct_email_normalize(s, len, &r.display, &r.key, &r.msg);
	expect_ok(r, "unterminated John@Example.com", "John@Example.com", "john@example.com");
	unterminated_free(s, len);
	s = unterminated("john@example", &len);
	r.st = acct_email_normalize(s, len, &r.display, &r.key, &r.msg);
	expect_invalid(r, "unterminated john@example", ACCT_MSG_EMAIL_INVALID);
	unterminated_free(s, len);
}

Test(acct_email, length_254_accepted_255_rejected)
{
	/* 60 + 1 + (63 + 1 + 63 + 1 + 61 + 1 + 3) = 254 characters. */
	char *local = repeat("a", 60);
	char *l1 = repeat("b", 63), *l2 = repeat("c", 63), *l3 = repeat("d", 61);
	char ok[300], bad[301];

	snprintf(ok, sizeof ok, "%s@%s.%s.%s.com", local, l1, l2, l3);
	snprintf(bad, sizeof bad, "a%s", ok);
	cr_assert_eq(strlen(ok), 254);
	cr_assert_eq(strlen(bad), 255);
	expect_ok(email(ok), "254 chars", ok, ok);
	expect_invalid(email(bad), "255 chars", ACCT_MSG_EMAIL_INVALID);
	free(local);
	free(l1);
	free(l2);
	free(l3);
}

/* ---- emails: IDNA domains (issue 14, item 11) ---- */

Test(acct_email, idna_unicode_and_a_label_share_key_display_kept)
{
	static const char *const spellings[] = {
	    "victim@b\u00FCcher.de", "victim@xn--bcher-kva.de", "victim@B\u00DCCHER.DE",
	    "Victim@XN--BCHER-KVA.de", "victim@bu\u0308cher.de", /* decomposed: NFKC composes it */
	};

	for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
		struct norm r = email(spellings[i]);

		cr_assert_eq(r.st, ACCT_OK, "\"%s\": %s", spellings[i], r.msg ? r.msg : "");
		cr_assert_str_eq(r.key, "victim@xn--bcher-kva.de", "\"%s\"", spellings[i]);
		norm_free(&r);
	}
	expect_ok(email("Victim@B\u00FCcher.de"), "display", "Victim@B\u00FCcher.de", NULL);
}

Test(acct_email, dotted_capital_i_domain_never_becomes_ascii)
{
	char *a = email_key("victim@examplE\u0130.com");
	char *b = email_key("victim@examplei.com");

	cr_assert_str_neq(a, b, "\"examplE\u0130.com\" took the key of examplei.com");
	cr_assert_str_eq(b, "victim@examplei.com");
	cr_assert(strncmp(a, "victim@xn--", 11) == 0, "key %s", a);
	free(a);
	free(b);
}

Test(acct_email, non_transitional_sharp_s_and_final_sigma_kept)
{
	/* Transitional processing would give fass.de, someone else's domain. */
	char *a = email_key("a@fa\u00DF.de"), *b = email_key("a@fass.de");
	char *c = email_key("a@\u03C3\u03BF\u03C6\u03BF\u03C2.gr"); /* final sigma */
	char *d = email_key("a@\u03C3\u03BF\u03C6\u03BF\u03C3.gr");

	cr_assert_str_eq(a, "a@xn--fa-hia.de");
	cr_assert_str_eq(b, "a@fass.de");
	cr_assert_str_eq(c, "a@xn--0xaajbq.gr");
	cr_assert_str_neq(c, d);
	free(a);
	free(b);
	free(c);
	free(d);
}

Test(acct_email, invalid_idna_domain_rejected)
{
	char *long_label = repeat("\u00FC", 60);
	char sixty[200];
	static const char *const bad[] = {
	    "a@xn--zz.com",                /* not Punycode */
	    "a@xn--ab.com",                /* Punycode of a disallowed code point */
	    "a@ab--cd.com",                /* hyphens in positions 3 and 4 */
	    "a@\u0661\u0662\u0663abc.com", /* breaks the bidi rule */
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_invalid(email(bad[i]), bad[i], ACCT_MSG_EMAIL_INVALID);
	snprintf(sixty, sizeof sixty, "a@%s.de", long_label); /* its A-label is past 63 */
	expect_invalid(email(sixty), "60 x u-umlaut label", ACCT_MSG_EMAIL_INVALID);
	free(long_label);
}

/* ---- acct_has_invisible ---- */

Test(acct_invisible, detects_zero_width_and_bidi_controls)
{
	for (size_t i = 0; i < sizeof invisibles / sizeof invisibles[0]; i++) {
		char in[64];

		snprintf(in, sizeof in, "ab%scd", invisibles[i]);
		cr_assert(acct_has_invisible(in, strlen(in)), "not detected: U+%s", invisibles[i]);
		cr_assert(acct_has_invisible(invisibles[i], strlen(invisibles[i])));
	}
}

Test(acct_invisible, soft_hyphen_is_invisible)
{
	/* U+00AD renders as nothing inside a word: "jo<SHY>hn" looks like "john". */
	cr_assert(acct_has_invisible("jo\u00ADhn", strlen("jo\u00ADhn")));
}

Test(acct_invisible, visible_text_not_flagged)
{
	static const char *const ok[] = {
	    "",
	    "john",
	    "a b",
	    "Jos\u00E9",
	    "e\u0301",
	    "\u7528\u6237",
	    "\uFF55\uFF53",
	    "\u05E9\u05DC\u05D5\u05DD", /* Hebrew letters: RTL, but not controls */
	    "\U0001F600",
	};

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		cr_assert_not(acct_has_invisible(ok[i], strlen(ok[i])), "flagged: \"%s\"", ok[i]);
}

Test(acct_invisible, respects_len)
{
	const char *s = "abc\u200B";

	cr_assert_not(acct_has_invisible(s, 3));
	cr_assert(acct_has_invisible(s, strlen(s)));
}

/* ---- acct_utf8_chars ---- */

Test(acct_utf8, counts_code_points)
{
	cr_assert_eq(acct_utf8_chars("", 0), 0);
	cr_assert_eq(acct_utf8_chars("abc", 3), 3);
	cr_assert_eq(acct_utf8_chars("\u00E9", strlen("\u00E9")), 1);
	cr_assert_eq(acct_utf8_chars("e\u0301", strlen("e\u0301")), 2);
	cr_assert_eq(acct_utf8_chars("\u7528\u6237", strlen("\u7528\u6237")), 2);
	cr_assert_eq(acct_utf8_chars("\U0001F600!", strlen("\U0001F600!")), 2);
}

Test(acct_utf8, embedded_nul_counts_as_a_character)
{
	cr_assert_eq(acct_utf8_chars("a\0b", 3), 3);
}

Test(acct_utf8, invalid_is_minus_one)
{
	static const struct {
		const char *s;
		size_t len;
		const char *what;
	} bad[] = {
	    {"\xff", 1, "0xFF"},
	    {"a\xfe"
	     "b",
	        3, "0xFE"},
	    {"\x80", 1, "lone continuation"},
	    {"\xc3", 1, "truncated 2-byte"},
	    {"\xe2\x82", 2, "truncated 3-byte"},
	    {"\xc3\x28", 2, "bad continuation"},
	    {"\xc0\xaf", 2, "overlong 2-byte"},
	    {"\xe0\x80\xaf", 3, "overlong 3-byte"},
	    {"\xf0\x80\x80\xaf", 4, "overlong 4-byte"},
	    {"\xed\xa0\x80", 3, "UTF-16 surrogate"},
	    {"\xf4\x90\x80\x80", 4, "above U+10FFFF"},
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(acct_utf8_chars(bad[i].s, bad[i].len), -1, "%s accepted", bad[i].what);
}

Test(acct_utf8, respects_len)
{
	/* Cutting "é" in half makes it invalid; the byte after len is ignored. */
	cr_assert_eq(acct_utf8_chars("\u00E9", 1), -1);
	cr_assert_eq(acct_utf8_chars("ab\xff", 2), 2);
}

/* ---- acct_username_skeletons: the confusable keys ---- */

struct skel {
	char *key, *cased;
};

static struct skel
skeletons_of(const char *s)
{
	struct skel k = {NULL, NULL};

	cr_assert_eq(acct_username_skeletons(s, strlen(s), &k.key, &k.cased), ACCT_OK,
	    "\"%s\": no skeleton", s);
	cr_assert_not_null(k.key);
	cr_assert_not_null(k.cased);
	return k;
}

static void
skel_free(struct skel *k)
{
	free(k->key);
	free(k->cased);
}

/* What the store refuses: either confusable key of one equal to the same key of the other. */
static bool
confusable(const char *a, const char *b)
{
	struct skel x = skeletons_of(a), y = skeletons_of(b);
	bool same = strcmp(x.key, y.key) == 0 || strcmp(x.cased, y.cased) == 0;

	skel_free(&x);
	skel_free(&y);
	return same;
}

/* Look-alikes of a Latin name, one substitution each, across scripts: ICU's data decides. */
static const struct {
	const char *latin, *lookalike, *what;
} confusables[] = {
    {"admin", "\u0430dmin", "Cyrillic a"},
    {"admin", "\u0391dmin", "Greek capital Alpha"},
    {"admin", "\u03B1dmin", "Greek small alpha"},
    {"admin", "\u0251dmin", "Latin alpha"},
    {"admin", "adrnin", "rn for m"},
    {"admin", "ADMIN", "case"},
    {"info", "\u0456nfo", "Cyrillic i"},
    {"id", "\u0131d", "dotless i"},
    {"name", "\u0578ame", "Armenian vo for n"},
    {"dog", "\u0501og", "Cyrillic komi de"},
    {"iog", "\u04CFog", "Cyrillic palochka"},
    {"paypal", "\u0440\u0430\u0443\u0440\u0430l", "Cyrillic p, a, y"},
    {"scope", "\u0455\u0441\u043E\u0440\u0435", "all Cyrillic"},
    {"xbox", "\u0445box", "Cyrillic ha"},
    {"top", "\u03A4\u039F\u03A1", "all Greek capitals"},
    {"google", "g\u03BF\u03BFgle", "Greek omicron"},
    {"hello", "\u0570ello", "Armenian ho"},
    {"user", "\u057Dser", "Armenian seh"},
    {"google", "\u0261oogle", "Latin script g"},
    {"lan", "\u01C0an", "Latin dental click"},
    {"admin", "\u13AADMIN", "Cherokee A"},
    {"root", "r00t", "digit zero"},
    {"lan", "Ian", "capital I for l"},
    {"lan", "1an", "digit one for l"},
    {"hello", "he11o", "digits one for l"},
    {"admin", "\U0001D41Admin", "mathematical bold a"},
};

Test(acct_skeleton, confusable_pairs_share_a_skeleton)
{
	for (size_t i = 0; i < sizeof confusables / sizeof confusables[0]; i++)
		cr_expect(confusable(confusables[i].latin, confusables[i].lookalike),
		    "%s: \"%s\" and \"%s\" are told apart", confusables[i].what,
		    confusables[i].latin, confusables[i].lookalike);
}

Test(acct_skeleton, key_skeleton_shared_by_case_variants)
{
	/* "ADMIN" and "admin" are one account: a Cyrillic look-alike meets either. */
	struct skel upper = skeletons_of("ADMIN"), lower = skeletons_of("admin");
	struct skel cyr = skeletons_of("\u0430dmin"), greek = skeletons_of("\u0391DMIN");

	cr_assert_str_eq(upper.key, lower.key);
	cr_assert_str_eq(cyr.key, upper.key);
	cr_assert_str_eq(greek.key, upper.key);
	skel_free(&upper);
	skel_free(&lower);
	skel_free(&cyr);
	skel_free(&greek);
}

Test(acct_skeleton, cased_skeleton_meets_capital_i_and_small_l)
{
	/* Case folding first would make these "paypai" and "ian": told apart. */
	struct skel a = skeletons_of("paypaI"), b = skeletons_of("paypal");
	struct skel c = skeletons_of("PAYPAI"), d = skeletons_of("Ian"), e = skeletons_of("lan");

	cr_assert_str_eq(a.cased, b.cased);
	cr_assert_str_eq(c.cased, b.cased);
	cr_assert_str_eq(d.cased, e.cased);
	cr_assert_str_neq(a.key, b.key);
	skel_free(&a);
	skel_free(&b);
	skel_free(&c);
	skel_free(&d);
	skel_free(&e);
}

Test(acct_skeleton, distinct_names_keep_distinct_skeletons)
{
	static const char *const pairs[][2] = {
	    {"jose", "jos\u00E9"}, /* an accent is visible */
	    {"user", "\u00FCser"}, /* so is a diaeresis */
	    {"alice", "aiice"},    /* a dot over the i */
	    {"admin", "admins"}, {"anna", "hanna"}, {"user_1", "user-1"},
	    {"\u7528\u6237", "\u7528\u6238"}, /* two Han names */
	};

	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
		cr_expect_not(confusable(pairs[i][0], pairs[i][1]), "\"%s\" and \"%s\" collide",
		    pairs[i][0], pairs[i][1]);
}

Test(acct_skeleton, invalid_utf8_and_nul_refused)
{
	char *k = (char *)"sentinel", *c = (char *)"sentinel";

	cr_assert_eq(acct_username_skeletons("a\xff", 2, &k, &c), ACCT_INVALID);
	cr_assert_null(k);
	cr_assert_null(c);
	cr_assert_eq(acct_username_skeletons("a\0b", 3, &k, &c), ACCT_INVALID);
	cr_assert_null(k);
	cr_assert_null(c);
}

Test(acct_skeleton, respects_len)
{
	struct skel a = {NULL, NULL}, b = skeletons_of("adm");

	cr_assert_eq(acct_username_skeletons("admin", 3, &a.key, &a.cased), ACCT_OK);
	cr_assert_str_eq(a.key, b.key);
	cr_assert_str_eq(a.cased, b.cased);
	skel_free(&a);
	skel_free(&b);
}
