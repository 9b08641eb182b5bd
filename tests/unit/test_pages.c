/*
 * Unit tests for src/pages/form.c (urlencoded forms as browsers send them)
 * and for the embedded templates: every page parses inside the layout.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "config.h"
#include "pages/internal.h"
#include "pages/pages.h"

Test(page_form, decodes_pairs_plus_and_escapes)
{
	struct page_form f;
	const char *body = "username=ann+b&email=a%40b.c&empty=&flag&bio=%C3%A9%0D%0Ax";
	size_t len = 0;

	cr_assert(page_form_parse(body, strlen(body), &f));
	cr_assert_eq(f.n, 5);
	cr_assert_str_eq(page_form_get(&f, "username", NULL), "ann b");
	cr_assert_str_eq(page_form_get(&f, "email", NULL), "a@b.c");
	cr_assert_str_eq(page_form_get(&f, "empty", &len), "");
	cr_assert_eq(len, 0);
	cr_assert_str_eq(page_form_get(&f, "flag", NULL), "");
	cr_assert_str_eq(page_form_get(&f, "bio", &len), "\xC3\xA9\r\nx");
	cr_assert_eq(len, 5);
	cr_assert_null(page_form_get(&f, "missing", NULL));
	page_form_clear(&f);
}

Test(page_form, refuses_what_no_page_sends)
{
	static const char *const bad[] = {
	    "a=%", "a=%4", "a=%zz", "a=%00", "a=1&a=2", "a=%FF", "a=%C3", "%=1"};
	struct page_form f;
	char many[400] = "";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(page_form_parse(bad[i], strlen(bad[i]), &f), "%s", bad[i]);
	for (int i = 0; i < PAGE_FORM_MAX + 1; i++)
		sprintf(many + strlen(many), "f%d=x&", i);
	cr_assert_not(page_form_parse(many, strlen(many), &f));
	cr_assert(page_form_parse("", 0, &f));
	cr_assert_eq(f.n, 0);
	cr_assert(page_form_parse("&&a=1&&", 7, &f));
	cr_assert_eq(f.n, 1);
	page_form_clear(&f);
}

Test(page_form, reads_only_its_length)
{
	struct page_form f;

	cr_assert(page_form_parse("a=1&b=2", 3, &f));
	cr_assert_eq(f.n, 1);
	cr_assert_null(page_form_get(&f, "b", NULL));
	page_form_clear(&f);
}

Test(pages, every_template_parses_in_the_layout)
{
	struct config cfg = {.site_name = "roster"};

	cr_assert(pages_init(&cfg));
	pages_fini();
	cfg.site_css = "/nonexistent/site.css";
	cr_assert_not(pages_init(&cfg));
	pages_fini();
}

Test(pages, owns_the_account_paths)
{
	cr_assert(page_path("/account"));
	cr_assert(page_path("/account/"));
	cr_assert(page_path("/account/anything"));
	cr_assert_not(page_path("/accounts"));
	cr_assert_not(page_path("/users/me/"));
}
