/*
 * The profile /account/ and its forms, each a POST to its own path that ends
 * in a 303 back to the profile with what was done (?done=...), or the profile
 * again with the problems next to their fields:
 *   POST /account/                     first_name, last_name, bio
 *   POST /account/password             current_password, new_password
 *   POST /account/email                email (a confirmation link to the new address)
 *   POST /account/email/verify/resend  a new verification link
 * Each calls the API's flow (api/api.h), so every rule is the JSON API's.
 * A password change keeps the page's own session and ends every other one.
 */
#include "pages/pages.h"
#include "pages/internal.h"
#include "accounts/acct.h"
#include "api/api.h"
#include "store/store.h"
#include "xmalloc.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/*
 * On a worker: the flow of one of the profile's forms, with the account
 * logged in, `keep` its session token's hash and `f` the form posted.
 */
typedef enum api_err (*profile_run)(struct http_req *req, const struct store_user *u,
    const char *keep, const struct page_form *f, struct acct_errors *errs);

/* One of the profile's forms: its flow, the ?done= it answers with, its pool. */
struct profile_form {
	profile_run run;
	const char *done;
	enum http_pool pool;
};

/* What a profile form's worker needs: its fields and which form it is. */
struct profile_ctx {
	struct page_form form;
	const struct profile_form *kind;
};

static void
ctx_free(void *p)
{
	struct profile_ctx *c = p;

	if (c != NULL)
		page_form_clear(&c->form);
	free(c);
}

/* At the top of a profile whose form was refused: the problems are next to their fields. */
#define PROFILE_REFUSED "Nothing was changed: see the field marked below."

/* What ?done= says on the profile; an unknown value says nothing. */
static const char *
done_message(const char *done)
{
	static const struct {
		const char *done, *message;
	} msgs[] = {
	    {"profile", "Your profile was saved."},
	    {"password", API_MSG_PASSWORD_CHANGED},
	    {"email", API_MSG_EMAIL_CHANGE_SENT},
	    {"verify", API_MSG_VERIFY_SENT},
	};

	for (size_t i = 0; done != NULL && i < sizeof(msgs) / sizeof(msgs[0]); i++)
		if (strcmp(msgs[i].done, done) == 0)
			return msgs[i].message;
	return NULL;
}

/*
 * The profile of `u`. `typed` (may be NULL) is the form just refused: its
 * values stay in their boxes (never a password), its problems `errs` next to
 * them, `form_error` at the top.
 */
static void
profile_page(struct http_req *req, int status, const struct store_user *u, const char *csrf,
    const struct page_form *typed, const struct acct_errors *errs, const char *form_error)
{
	bool verified = false;
	json_t *vars, *user;
	static const char *const kept[] = {"first_name", "last_name", "bio"};
	enum store_status st = store_user_email_verified(api_store(req), u->id, &verified);

	if (st == STORE_NOT_FOUND) { /* deleted meanwhile: as a session that no longer works */
		page_login_first(req, NULL);
		return;
	}
	if (st != STORE_OK) { /* as GET /users/me/ answers it: 500, or 503 with Retry-After */
		page_reply_error(req, api_store_err(st, API_ERR_INTERNAL, API_ERR_INTERNAL));
		return;
	}
	user = page_user_json_new(u);
	json_object_set_new(user, "email_verified", json_boolean(verified));
	json_object_set_new(
	    user, "has_email", json_boolean(u->email != NULL && u->email[0] != '\0'));
	vars = json_pack("{s:s, s:s, s:o, s:s?, s:s?}", "title", "Your account", "csrf_token", csrf,
	    "user", user, "done", typed == NULL ? done_message(http_query(req, "done")) : NULL,
	    "form_error", form_error);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		const char *v = typed != NULL ? page_form_get(typed, kept[i], NULL) : NULL;

		page_set_field(vars, kept[i],
		    v != NULL ? v : json_string_value(json_object_get(user, kept[i])), NULL);
	}
	page_set_field(vars, "email", typed != NULL ? page_field(typed, "email") : "", NULL);
	page_set_field(vars, "current_password", "", NULL);
	page_set_field(vars, "new_password", "", NULL);
	if (errs != NULL)
		page_set_errors(vars, errs);
	page_reply(req, status, "profile.html", vars, 0);
}

/* A flow's answer on the profile: 303 with ?done=`done`, the problems, or the error page. */
static void
profile_answer(struct http_req *req, enum api_err err, const struct store_user *u, const char *csrf,
    const struct acct_errors *errs, const char *done)
{
	const struct api_err_info *info = api_err_info(err);
	char loc[64];

	if (err == API_ERR_NONE) {
		snprintf(loc, sizeof(loc), "/account/?done=%s", done);
		page_redirect(req, loc);
	} else if (err == API_ERR_INVALID) {
		profile_page(req, 400, u, csrf, &((struct profile_ctx *)req->ctx)->form, errs,
		    PROFILE_REFUSED);
	} else if (err == API_ERR_EMAIL_TAKEN) {
		struct acct_errors taken = {.n = 0};

		acct_errors_add(&taken, "email", info->message);
		profile_page(req, info->status, u, csrf, &((struct profile_ctx *)req->ctx)->form,
		    &taken, PROFILE_REFUSED);
	} else if (err == API_ERR_NOT_AUTHENTICATED) {
		page_login_first(req, NULL);
	} else {
		page_reply_error(req, err);
	}
}

/* On a worker: who is logged in (else the login page), then the form's flow (a GET: the profile).
 */
static void
profile_finish(struct http_req *req)
{
	const struct profile_form *kind = ((struct profile_ctx *)req->ctx)->kind;
	profile_run run = req->method == HTTP_POST ? kind->run : NULL;
	const char *done = kind->done;
	struct store_user user;
	struct acct_errors errs = {.n = 0};
	char csrf[65], keep[65];
	enum api_err err = page_authenticate(req, &user, csrf, keep);

	if (err == API_ERR_NONE && run == NULL) {
		profile_page(req, 200, &user, csrf, NULL, NULL, NULL);
	} else if (err == API_ERR_NONE) {
		err = run(req, &user, keep, &((struct profile_ctx *)req->ctx)->form, &errs);
		profile_answer(req, err, &user, csrf, &errs, done);
	} else {
		profile_answer(req, err, &user, csrf, &errs, done);
	}
	store_user_clear(&user);
	sodium_memzero(keep, sizeof(keep));
}

/*
 * The I/O thread's half of every profile form: a session cookie (else the
 * login page), the form and its CSRF token, then the flow on its pool.
 */
static void
profile_post(struct http_req *req, const struct profile_form *kind)
{
	struct profile_ctx *c = xcalloc(1, sizeof(*c));
	char token[65];
	bool ok;

	c->kind = kind;
	req->ctx = c;
	req->ctx_free = ctx_free;
	if (!page_session_token(req, token)) {
		page_login_first(req, NULL);
		return;
	}
	ok = req->method != HTTP_POST || page_session_form(req, &c->form, token);
	sodium_memzero(token, sizeof(token));
	if (ok)
		page_defer(req, kind->pool, profile_finish);
}

/* ---- POST /account/: names and bio ---- */

static enum api_err
run_profile(struct http_req *req, const struct store_user *u, const char *keep,
    const struct page_form *f, struct acct_errors *errs)
{
	struct api_profile_edit e = {0};

	(void)keep;
	e.bio = page_form_get(f, "bio", &e.bio_len);
	e.first_name = page_form_get(f, "first_name", &e.first_name_len);
	e.last_name = page_form_get(f, "last_name", &e.last_name_len);
	return api_me_update(req, u->id, &e, errs);
}

static const struct profile_form names_form = {run_profile, "profile", HTTP_POOL_DB};

void
page_profile(struct http_req *req)
{
	profile_post(req, &names_form);
}

/* ---- POST /account/password ---- */

static enum api_err
run_password(struct http_req *req, const struct store_user *u, const char *keep,
    const struct page_form *f, struct acct_errors *errs)
{
	size_t curlen, pwlen;
	const char *cur = page_form_get(f, "current_password", &curlen);
	const char *pw = page_form_get(f, "new_password", &pwlen);

	if (cur == NULL || curlen == 0)
		acct_errors_add(errs, "current_password", ACCT_MSG_REQUIRED);
	if (pw == NULL || pwlen == 0)
		acct_errors_add(errs, "new_password", ACCT_MSG_REQUIRED);
	if (errs->n > 0)
		return API_ERR_INVALID;
	return api_password_change_run(req, u, keep, cur, curlen, pw, pwlen, errs);
}

static const struct profile_form password_form = {run_password, "password", HTTP_POOL_HASH};

void
page_password_change(struct http_req *req)
{
	profile_post(req, &password_form);
}

/* ---- POST /account/email ---- */

static enum api_err
run_email(struct http_req *req, const struct store_user *u, const char *keep,
    const struct page_form *f, struct acct_errors *errs)
{
	size_t len;
	const char *email = page_form_get(f, "email", &len);

	(void)keep;
	if (email == NULL || len == 0) {
		acct_errors_add(errs, "email", ACCT_MSG_REQUIRED);
		return API_ERR_INVALID;
	}
	return api_email_change_run(req, u, email, len, errs);
}

static const struct profile_form email_form = {run_email, "email", HTTP_POOL_DB};

void
page_email_change_request(struct http_req *req)
{
	profile_post(req, &email_form);
}

/* ---- POST /account/email/verify/resend ---- */

static enum api_err
run_resend(struct http_req *req, const struct store_user *u, const char *keep,
    const struct page_form *f, struct acct_errors *errs)
{
	(void)keep, (void)f, (void)errs;
	return api_verify_resend_run(req, u);
}

static const struct profile_form resend_form = {run_resend, "verify", HTTP_POOL_DB};

void
page_verify_resend(struct http_req *req)
{
	profile_post(req, &resend_form);
}
