/*
 * Unit tests for src/tmpl/tmpl.c: escaping in both modes, sections over each
 * kind of value, scopes and dotted names, templates refused with a position,
 * the output bound, and inputs built to make a naive renderer blow up.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tmpl/tmpl.h"

/* `src` rendered in `mode` with the JSON text `vars`; the caller frees. */
static char *
render_mode(const char *src, enum tmpl_mode mode, const char *vars)
{
	char err[128];
	json_error_t jerr;
	json_t *v = json_loads(vars, 0, &jerr);
	struct tmpl *t = tmpl_parse(src, strlen(src), mode, err, sizeof(err));
	char *out;

	cr_assert_not_null(v, "bad test JSON: %s", jerr.text);
	cr_assert_not_null(t, "parse failed: %s", err);
	out = tmpl_render(t, v, 1 << 20, NULL);
	cr_assert_not_null(out);
	tmpl_free(t);
	json_decref(v);
	return out;
}

static void
expect(const char *src, const char *vars, const char *want)
{
	char *out = render_mode(src, TMPL_HTML, vars);

	cr_expect_str_eq(out, want, "template %s", src);
	free(out);
}

/* The error message for a template that must be refused. */
static void
expect_refused(const char *src, const char *want_err)
{
	char err[128];
	struct tmpl *t = tmpl_parse(src, strlen(src), TMPL_HTML, err, sizeof(err));

	cr_expect_null(t, "accepted: %s", src);
	tmpl_free(t);
	cr_expect_str_eq(err, want_err, "template %s", src);
}

Test(tmpl, html_escapes_the_five_characters)
{
	expect("<p title=\"{{v}}\">{{v}}</p>", "{\"v\": \"a&b<c>d\\\"e'f\"}",
	    "<p title=\"a&amp;b&lt;c&gt;d&quot;e&#39;f\">a&amp;b&lt;c&gt;d&quot;e&#39;f</p>");
}

Test(tmpl, html_markup_in_values_is_text)
{
	expect("{{u}}", "{\"u\": \"<script>alert(1)</script>\"}",
	    "&lt;script&gt;alert(1)&lt;/script&gt;");
	expect("<a href=\"/x?{{u}}\">", "{\"u\": \"\\\"><img src=x onerror=alert(1)>\"}",
	    "<a href=\"/x?&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\">");
}

Test(tmpl, html_escapes_a_nul_in_a_value)
{
	json_t *v = json_pack("{s:s%}", "v", "a\0<b", (size_t)4);
	struct tmpl *t = tmpl_parse("{{v}}", 5, TMPL_HTML, NULL, 0);
	char *out = tmpl_render(t, v, 100, NULL);

	cr_assert_str_eq(out, "a\xEF\xBF\xBD&lt;b");
	free(out);
	tmpl_free(t);
	json_decref(v);
}

Test(tmpl, text_mode_inserts_values_as_they_are)
{
	char *out = render_mode("Hello {{u}} & co", TMPL_TEXT, "{\"u\": \"<b>'x'\\\"\"}");

	cr_assert_str_eq(out, "Hello <b>'x'\" & co");
	free(out);
}

Test(tmpl, template_text_is_not_escaped)
{
	expect("<b>&amp; 'q' \"x\"</b>", "{}", "<b>&amp; 'q' \"x\"</b>");
}

Test(tmpl, renders_scalars)
{
	expect("{{s}}|{{i}}|{{r}}|{{t}}|{{f}}|{{n}}|{{missing}}|{{o}}|{{a}}",
	    "{\"s\": \"x\", \"i\": -42, \"r\": 0.5, \"t\": true, \"f\": false, \"n\": null,"
	    " \"o\": {\"k\": 1}, \"a\": [1]}",
	    "x|-42|0.5|true|false||||");
}

Test(tmpl, blanks_inside_tags_are_ignored)
{
	expect("{{ v }}{{# s }}y{{/ s }}", "{\"v\": \"x\", \"s\": true}", "xy");
}

Test(tmpl, section_over_array_repeats_with_element_in_scope)
{
	expect("<ul>{{#users}}<li>{{name}} ({{role}})</li>{{/users}}</ul>",
	    "{\"role\": \"outer\", \"users\": [{\"name\": \"a\", \"role\": \"teacher\"},"
	    " {\"name\": \"<b>\"}]}",
	    "<ul><li>a (teacher)</li><li>&lt;b&gt; (outer)</li></ul>");
}

Test(tmpl, dot_is_the_current_element)
{
	expect("{{#xs}}[{{.}}]{{/xs}}", "{\"xs\": [\"a\", 2, \"<\"]}", "[a][2][&lt;]");
}

Test(tmpl, empty_array_renders_nothing_and_inverts)
{
	expect("{{#xs}}x{{/xs}}{{^xs}}none{{/xs}}", "{\"xs\": []}", "none");
}

Test(tmpl, section_over_booleans_and_scalars)
{
	expect("{{#t}}T{{/t}}{{#f}}F{{/f}}{{#s}}S{{/s}}{{#e}}E{{/e}}{{#one}}1{{/one}}"
	       "{{#zero}}0{{/zero}}{{#half}}H{{/half}}{{#n}}N{{/n}}{{#missing}}M{{/missing}}",
	    "{\"t\": true, \"f\": false, \"s\": \"x\", \"e\": \"\", \"one\": 1, \"zero\": 0,"
	    " \"half\": 0.5, \"n\": null}",
	    "TS1H");
}

Test(tmpl, inverted_sections)
{
	expect("{{^t}}T{{/t}}{{^f}}F{{/f}}{{^s}}S{{/s}}{{^e}}E{{/e}}{{^zero}}0{{/zero}}"
	       "{{^n}}N{{/n}}{{^missing}}M{{/missing}}{{^o}}O{{/o}}{{^a}}A{{/a}}",
	    "{\"t\": true, \"f\": false, \"s\": \"x\", \"e\": \"\", \"zero\": 0, \"n\": null,"
	    " \"o\": {}, \"a\": [1]}",
	    "FE0NM");
}

Test(tmpl, section_over_object_pushes_its_scope)
{
	expect("{{#user}}{{name}}/{{site}}{{/user}}",
	    "{\"site\": \"roster\", \"user\": {\"name\": \"ann\"}}", "ann/roster");
}

Test(tmpl, nested_names)
{
	expect("{{a.b.c}}|{{a.b}}|{{a.x.c}}|{{s.x}}",
	    "{\"a\": {\"b\": {\"c\": \"deep\"}}, \"s\": \"str\"}", "deep|||");
}

Test(tmpl, dotted_name_resolves_first_part_then_stays)
{
	/* Once `a` is found in the inner scope, a missing a.b is not looked for outside. */
	expect("{{#in}}{{a.b}}{{/in}}", "{\"a\": {\"b\": \"outer\"}, \"in\": {\"a\": {}}}", "");
	expect("{{#in}}{{a.b}}{{/in}}", "{\"a\": {\"b\": \"outer\"}, \"in\": {}}", "outer");
}

Test(tmpl, nested_sections)
{
	expect("{{#rows}}{{#cells}}{{v}}{{/cells}};{{/rows}}",
	    "{\"rows\": [{\"cells\": [{\"v\": 1}, {\"v\": 2}]}, {\"cells\": []}]}", "12;;");
}

Test(tmpl, comments_render_nothing)
{
	expect("a{{! a comment, {{ or a\nnewline }}b", "{\"name\": \"x\"}", "ab");
}

Test(tmpl, standalone_section_lines_disappear)
{
	char *out = render_mode("Hi\n  {{#xs}}\n- {{.}}\n  {{/xs}}\n{{! c }}\nBye\n", TMPL_TEXT,
	    "{\"xs\": [\"a\", \"b\"]}");

	cr_assert_str_eq(out, "Hi\n- a\n- b\nBye\n");
	free(out);
}

Test(tmpl, inline_section_tags_keep_their_line)
{
	expect("x {{#t}}y{{/t}} z\n", "{\"t\": true}", "x y z\n");
}

Test(tmpl, refuses_unescaped_forms)
{
	expect_refused("a{{{v}}}", "line 1, column 2: unescaped output is not supported");
	expect_refused("{{&v}}", "line 1, column 1: unescaped output is not supported");
	expect_refused("{{> partial}}", "line 1, column 1: partials are not supported");
	expect_refused("{{=<% %>=}}", "line 1, column 1: delimiter changes are not supported");
}

Test(tmpl, refuses_malformed_with_position)
{
	expect_refused("ab\ncd {{name", "line 2, column 4: unclosed tag");
	expect_refused("{{name\n}}", "line 1, column 1: unclosed tag");
	expect_refused("x\n{{#a}}\ny", "line 2, column 1: unclosed section");
	expect_refused(
	    "{{#a}}{{/b}}", "line 1, column 7: closing tag does not match the open section");
	expect_refused(
	    "{{#a}}{{/a.b}}", "line 1, column 7: closing tag does not match the open section");
	expect_refused("{{#a}}{{#b}}{{/a}}{{/b}}",
	    "line 1, column 13: closing tag does not match the open section");
	expect_refused("\n\n  {{/a}}", "line 3, column 3: closing tag without an open section");
	expect_refused("{{}}", "line 1, column 1: empty tag name");
	expect_refused("{{#}}{{/}}", "line 1, column 1: empty tag name");
	expect_refused("{{a b}}", "line 1, column 1: invalid character in tag name");
	expect_refused("{{a<b}}", "line 1, column 1: invalid character in tag name");
	expect_refused("{{.a}}", "line 1, column 1: malformed dotted name");
	expect_refused("{{a..b}}", "line 1, column 1: malformed dotted name");
	expect_refused("{{a.}}", "line 1, column 1: malformed dotted name");
}

Test(tmpl, refuses_names_too_long)
{
	char src[300];

	memset(src, 'a', sizeof(src));
	memcpy(src, "{{", 2);
	memcpy(src + sizeof(src) - 3, "}}", 3);
	expect_refused(src, "line 1, column 1: tag name too long");
}

Test(tmpl, refuses_nesting_too_deep)
{
	char src[64 * 12 + 1] = "";

	for (int i = 0; i < 33; i++)
		strcat(src, "{{#a}}");
	expect_refused(src, "line 1, column 193: sections nested too deeply");
}

Test(tmpl, accepts_nesting_at_the_limit)
{
	char src[64 * 14 + 1] = "";
	struct tmpl *t;
	json_t *v = json_loads("{\"a\": true}", 0, NULL);
	char *out;

	for (int i = 0; i < 32; i++)
		strcat(src, "{{#a}}");
	strcat(src, "x");
	for (int i = 0; i < 32; i++)
		strcat(src, "{{/a}}");
	t = tmpl_parse(src, strlen(src), TMPL_HTML, NULL, 0);
	cr_assert_not_null(t);
	out = tmpl_render(t, v, 10, NULL);
	cr_assert_str_eq(out, "x");
	free(out);
	tmpl_free(t);
	json_decref(v);
}

Test(tmpl, error_buffer_may_be_absent_or_short)
{
	char err[8];

	cr_assert_null(tmpl_parse("{{", 2, TMPL_HTML, NULL, 0));
	cr_assert_null(tmpl_parse("{{", 2, TMPL_HTML, err, sizeof(err)));
	cr_assert_str_eq(err, "line 1,");
}

Test(tmpl, length_is_respected_not_the_nul)
{
	/* Only the first 7 bytes are the template; what follows must not be read as a tag. */
	struct tmpl *t = tmpl_parse("{{v}}ab{{", 7, TMPL_HTML, NULL, 0);
	json_t *v = json_pack("{s:s}", "v", "x");
	size_t len = 0;
	char *out;

	cr_assert_not_null(t);
	out = tmpl_render(t, v, 100, &len);
	cr_assert_str_eq(out, "xab");
	cr_assert_eq(len, 3);
	free(out);
	tmpl_free(t);
	json_decref(v);
}

Test(tmpl, empty_template_renders_empty_string)
{
	struct tmpl *t = tmpl_parse("", 0, TMPL_TEXT, NULL, 0);
	size_t len = 1;
	char *out;

	cr_assert_not_null(t);
	out = tmpl_render(t, NULL, 0, &len);
	cr_assert_str_eq(out, "");
	cr_assert_eq(len, 0);
	free(out);
	tmpl_free(t);
}

Test(tmpl, output_bound_is_exact)
{
	struct tmpl *t = tmpl_parse("ab{{v}}", 7, TMPL_HTML, NULL, 0);
	json_t *v = json_pack("{s:s}", "v", "<"); /* "ab&lt;" is 6 bytes */
	char *out;

	out = tmpl_render(t, v, 6, NULL);
	cr_assert_str_eq(out, "ab&lt;");
	free(out);
	cr_assert_null(tmpl_render(t, v, 5, NULL));
	cr_assert_null(tmpl_render(t, v, 0, NULL));
	tmpl_free(t);
	json_decref(v);
}

Test(tmpl, output_bound_stops_a_large_loop)
{
	struct tmpl *t = tmpl_parse("{{#xs}}{{x}}{{/xs}}", 19, TMPL_HTML, NULL, 0);
	json_t *xs = json_array();
	json_t *v;

	for (int i = 0; i < 1000; i++)
		json_array_append_new(xs, json_pack("{s:s}", "x", "0123456789"));
	v = json_pack("{s:o}", "xs", xs);
	cr_assert_null(tmpl_render(t, v, 9999, NULL));
	char *out = tmpl_render(t, v, 10000, NULL);
	cr_assert_not_null(out);
	cr_assert_eq(strlen(out), 10000);
	free(out);
	tmpl_free(t);
	json_decref(v);
}

/* Nested loops that write nothing: without a step bound 1000^6 iterations. */
Test(tmpl, silent_nested_loops_end_quickly, .timeout = 10)
{
	const char *src =
	    "{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{#a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}{{/a}}";
	struct tmpl *t = tmpl_parse(src, strlen(src), TMPL_HTML, NULL, 0);
	json_t *a = json_array();
	json_t *v;

	for (int i = 0; i < 1000; i++)
		json_array_append_new(a, json_object());
	v = json_pack("{s:o}", "a", a);
	cr_assert_null(tmpl_render(t, v, 1 << 16, NULL));
	tmpl_free(t);
	json_decref(v);
}

/* Many unclosed-looking openers and many tags: parsing stays linear. */
Test(tmpl, parse_is_linear_on_hostile_input, .timeout = 10)
{
	size_t n = 4 << 20;
	char *src = malloc(n);
	struct tmpl *t;
	char err[128];

	for (size_t i = 0; i < n; i++)
		src[i] = "{{a}}"[i % 5];
	t = tmpl_parse(src, n - n % 5, TMPL_HTML, err, sizeof(err));
	cr_assert_not_null(t, "%s", err);
	tmpl_free(t);
	memset(src, '{', n);
	cr_assert_null(tmpl_parse(src, n, TMPL_HTML, err, sizeof(err)));
	cr_assert_str_eq(err, "line 1, column 1: unclosed tag");
	for (size_t i = 0; i < n; i++)
		src[i] = "{{#a}}"[i % 6];
	cr_assert_null(tmpl_parse(src, n, TMPL_HTML, err, sizeof(err)));
	cr_assert_str_eq(err, "line 1, column 193: sections nested too deeply");
	free(src);
}

Test(tmpl, a_parsed_template_renders_many_times)
{
	struct tmpl *t = tmpl_parse("{{#xs}}{{.}}{{/xs}}", 19, TMPL_HTML, NULL, 0);

	for (int i = 0; i < 3; i++) {
		json_t *v = json_pack("{s:[i,i]}", "xs", i, i + 1);
		char *out = tmpl_render(t, v, 100, NULL);
		char want[8];

		snprintf(want, sizeof(want), "%d%d", i, i + 1);
		cr_assert_str_eq(out, want);
		free(out);
		json_decref(v);
	}
	tmpl_free(t);
}

/*
 * Random templates over an alphabet of tag characters: whatever parses
 * renders without a fault, and with every value "<&'\"" and no '<' or '&' in
 * the template text, no '<' reaches the output (nothing inserts unescaped).
 */
Test(tmpl, random_templates_never_insert_unescaped)
{
	static const char alphabet[] = "{{}}#^/!.&>=ab \n";
	json_t *v = json_loads(
	    "{\"a\": \"<&'\\\"\", \"b\": [{\"a\": \"<\"}, \"<\", {\"b\": {\"a\": \"<\"}}]}", 0,
	    NULL);
	unsigned seed = 12345;
	int parsed = 0;

	cr_assert_not_null(v);
	for (int iter = 0; iter < 20000; iter++) {
		char src[48];
		size_t n = 1 + (size_t)(rand_r(&seed) % (sizeof(src) - 1));
		struct tmpl *t;

		for (size_t i = 0; i < n; i++)
			src[i] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
		t = tmpl_parse(src, n, TMPL_HTML, NULL, 0);
		if (t != NULL) {
			char *out = tmpl_render(t, v, 4096, NULL);

			parsed++;
			cr_assert_not_null(out);
			cr_assert_null(strchr(out, '<'), "%.*s -> %s", (int)n, src, out);
			free(out);
			tmpl_free(t);
		}
	}
	cr_assert_gt(parsed, 1000, "only %d of the random templates parsed", parsed);
	json_decref(v);
}
