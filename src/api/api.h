/*
 * api: one file per resource. Handlers take a parsed request from http/, apply
 * the rules of accounts/ and the operations of store/, and set a JSON reply.
 * errors.c holds the one table of every error the API can answer and the one
 * mapping from store statuses to it. Only api/ knows that a worker's state is
 * a database connection (api_thread_open, api_store).
 */
#ifndef ROSTER_API_H
#define ROSTER_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/req.h"
#include "store/store.h"

struct config;

enum api_err {
	API_ERR_NONE = 0,
	API_ERR_MALFORMED_JSON,
	API_ERR_BAD_REQUEST,
	API_ERR_INVALID,
	API_ERR_USERNAME_TAKEN,
	API_ERR_EMAIL_TAKEN,
	API_ERR_INVALID_CREDENTIALS,
	API_ERR_INVITATION_INVALID,
	API_ERR_INVITATION_EXPIRED,
	API_ERR_INVITATION_USED,
	API_ERR_INVITATION_REVOKED,
	API_ERR_NOT_AUTHENTICATED,
	API_ERR_FORBIDDEN,
	API_ERR_ROLE_NOT_ALLOWED,
	API_ERR_INVITATION_EMAIL_MISMATCH,
	API_ERR_NOT_FOUND,
	API_ERR_METHOD_NOT_ALLOWED,
	API_ERR_INVITATION_PENDING,
	API_ERR_CONFLICT,
	API_ERR_RATE_LIMITED,
	API_ERR_LENGTH_REQUIRED,
	API_ERR_BODY_TOO_LARGE,
	API_ERR_UNSUPPORTED_MEDIA_TYPE,
	API_ERR_NOT_IMPLEMENTED,
	API_ERR_UNAVAILABLE,
	API_ERR_INTERNAL,
	API_ERR_INTERNAL_REGISTER,
	/* The account lifecycle by email. */
	API_ERR_TOKEN_INVALID,
	API_ERR_TOKEN_EXPIRED,
	API_ERR_TOKEN_USED,
	API_ERR_EMAIL_NOT_VERIFIED,
	API_ERR_COUNT_
};

struct api_err_info {
	int status;
	const char *code;
	const char *message;
};

/* The row of `err` in the error table. */
const struct api_err_info *api_err_info(enum api_err err);

/*
 * Sets the error reply for `err`: {"error", "code", "request_id"}, with
 * Retry-After on 503. Callable on I/O and worker threads.
 */
void api_reply_error(struct http_req *req, enum api_err err);

/* The error renderer of every API route: http/'s own errors as API errors. */
void api_render_http_err(struct http_req *req, enum http_err err);

/*
 * The one mapping from a store status to an API error. What a missing row
 * means depends on the caller (`not_found`: API_ERR_NOT_FOUND, or
 * API_ERR_NOT_AUTHENTICATED when the row is the caller's own account), and
 * so does the answer to STORE_ERROR (`internal`: API_ERR_INTERNAL, or
 * registration's API_ERR_INTERNAL_REGISTER). STORE_OK gives API_ERR_NONE.
 */
enum api_err api_store_err(enum store_status st, enum api_err not_found, enum api_err internal);

struct acct_errors;

/* 400 `invalid` with "fields": every problem, per field, in order. */
void api_reply_invalid(struct http_req *req, const struct acct_errors *errs);

/* JSON nesting deeper than this is malformed input. */
#define API_JSON_MAX_DEPTH 8

/*
 * Parses a request body that must be one JSON object: valid UTF-8, no NUL in
 * strings, no duplicate keys, nesting at most API_JSON_MAX_DEPTH levels (the
 * top-level object is level 1, so `{}` has depth 1). On success
 * returns API_ERR_NONE and a new reference in `*out`; otherwise
 * API_ERR_MALFORMED_JSON and `*out` is NULL.
 */
enum api_err api_body_object_new(const char *body, size_t len, /* OUT: */ json_t **out);

/*
 * The token of an `Authorization: Token <t>` or `Bearer <t>` header (scheme
 * case-insensitive): true and `out` = the 64 lowercase hex characters of a roster
 * token, or the 40 of a Django REST framework key imported by `roster import django`.
 */
bool api_auth_token(const char *header, char out[65]);

/*
 * Authenticates the request with one database read, on a worker (deferred
 * with api_defer):
 * API_ERR_NONE with the account in `*user` (release with store_user_clear)
 * and the token's SHA-256 hex in `token_hash` (may be NULL), or
 * API_ERR_NOT_AUTHENTICATED / API_ERR_UNAVAILABLE (`*user` cleared).
 */
enum api_err api_authenticate(struct http_req *req, struct store_user *user, char *token_hash);

/*
 * The worker's database connection while a deferred handler runs (NULL on an
 * I/O thread: handlers that need the database defer first).
 */
struct store *api_store(struct http_req *req);

/*
 * Per-worker hooks for http_server_start: `app` is the struct config; opens
 * the worker's connection (STORE_OPEN_LAZY), NULL when it cannot; closes it.
 */
void *api_thread_open(const void *app);
void api_thread_close(void *ctx);

/* The configuration the server was started with (http_opts.app). */
const struct config *api_config(const struct http_req *req);

/* Defers `fn` to `pool`; when the queue is full, replies 503 `unavailable`. */
void api_defer(struct http_req *req, enum http_pool pool, http_handler fn);

/*
 * For handlers that start with api_authenticate: a request without a
 * well-formed token is answered 401 at once; any other is deferred to the
 * database pool as api_defer does.
 */
void api_defer_authenticated(struct http_req *req, http_handler fn);

/* The route table for http_server_start; `*n` routes. */
const struct http_route *api_routes(/* OUT: */ size_t *n);

/* The error for an invitation the store refused, by reason. */
enum api_err api_invite_why_err(enum store_invite_why why);

/* Hashes a well-formed invitation token (roster's: 64 hex characters; one imported from
 * Django: up to 64 URL-safe characters); false otherwise. */
bool api_invitation_token_hash(const char *token, size_t len, char out[65]);

struct acct_errors;

/*
 * Reads an optional string member of `obj`: absent or null leaves `*out`
 * NULL; another type adds "Not a valid string." under `name` to `errs`.
 * `*out` is borrowed from `obj`.
 */
void api_string_field(json_t *obj, const char *name, const char **out, /* OUT: */ size_t *len,
    struct acct_errors *errs);

/* As api_string_field, and absent or null adds "This field is required."; true when present. */
bool api_required_string(json_t *obj, const char *name, const char **out, /* OUT: */ size_t *len,
    struct acct_errors *errs);

/* The rate limits (see limits.c); each is shared by every instance through the database. */
enum api_limit {
	API_LIMIT_REGISTER_IP,    /* registration attempts per client IP */
	API_LIMIT_ACCOUNTS_IP,    /* accounts created per client IP */
	API_LIMIT_LOGIN_IP,       /* login attempts per client IP */
	API_LIMIT_LOGIN_FAILURES, /* failed logins per (account or login name, client IP) */
	API_LIMIT_LOGIN_ACCOUNT,  /* failed logins per account or login name, all IPs */
	API_LIMIT_INVITES,        /* invitations per inviter */
	API_LIMIT_RESET_EMAIL,    /* password-reset requests per address */
	API_LIMIT_RESET_IP,       /* password-reset requests per client IP */
	API_LIMIT_VERIFY_RESEND,  /* verification resends per account */
};

/*
 * Adds `add` hits of `subject` to a limit (0: only looks). API_ERR_NONE while
 * within the limit, else API_ERR_RATE_LIMITED with req->retry_after set. A
 * counter that cannot be read or written fails closed: API_ERR_UNAVAILABLE
 * (503 with Retry-After, logged), so a database that refuses writes never
 * turns a limit off (login would become unlimited guessing). Callers answer
 * the returned error. Runs on a worker (uses api_store).
 */
enum api_err api_limit(struct http_req *req, enum api_limit limit, const char *subject, int add);

/*
 * The name (the prefix of its counters' keys, before ':') and window of
 * limit `i`; false past the last limit. For the janitor.
 */
bool api_limit_window(
    const struct config *cfg, size_t i, /* OUT: */ const char **name, long long *window_s);

/*
 * The janitor (janitor.c): a thread of its own, with its own database
 * connection, that deletes rate-limit counters whose window has ended and
 * expired login tokens every cfg->janitor_interval_s seconds, in batches of
 * cfg->janitor_batch rows. NULL when the interval is 0 (or the thread cannot
 * start, logged). `cfg` must outlive it. Stop wakes it, waits for the batch
 * in flight, and frees it; NULL is a no-op.
 */
struct api_janitor *api_janitor_start(const struct config *cfg);
void api_janitor_stop(struct api_janitor *j);

/*
 * Arms the audit event of this request on the worker's connection (store.h,
 * "the audit trail"), to be recorded by the next write operation's
 * transaction: call it right before that operation. `user_id` is the
 * account it is about (0: none, or the one the operation creates),
 * `actor_id` the authenticated caller (0: "anonymous"); `detail` (may be
 * NULL) is taken over, and must hold no password, token or hash. On a worker.
 */
void api_audit_arm_new(struct http_req *req, enum store_audit_event event, int64_t user_id,
    int64_t actor_id, json_t *detail);

/*
 * The delivery loop (mailer.c): a thread of its own, with its own database
 * connection and mail transport, that sends the outbox's due mails. `port` is
 * the bound port (the default --public-url). NULL when the transport or the
 * templates cannot be made (logged): serve refuses to start. Stop waits at
 * most `timeout_s` for the send in flight; NULL is a no-op.
 */
struct api_mailer;
struct api_mailer *api_mailer_start(const struct config *cfg, unsigned port);
void api_mailer_stop(struct api_mailer *m, long long timeout_s);

/*
 * The flows shared with the pages (src/pages/): each rule and each sequence
 * of store calls is written once, here, and both the JSON handlers and the
 * page handlers call it, then answer in their own format. The *_run and
 * api_invite_* functions run on a worker (they use api_store); they count
 * metrics and rate limits as the API always did. API_ERR_INVALID means the
 * problems are in `errs`, per field.
 */
struct acct_signup_input;
struct api_signup; /* a validated registration: the input and the invitation's hash */

/* Validation and role policy; API_ERR_NONE with `*out` (free with api_signup_free). */
enum api_err api_signup_check(const struct config *cfg, const struct acct_signup_input *in,
    const char *invitation, size_t invitation_len, struct acct_errors *errs,
    /* OUT: */ struct api_signup **out);
/* On a hashing worker: limits, hashing, the one create transaction; `*user` filled when NONE. */
enum api_err api_signup_run(
    struct http_req *req, const struct api_signup *s, /* OUT: */ struct store_user *user);
void api_signup_free(struct api_signup *s);

struct api_login; /* the login names' keys and the password (wiped) */

/* The login fields (NULL: absent); API_ERR_NONE with `*out` (free with api_login_free). */
enum api_err api_login_check(const char *username, size_t ulen, const char *email, size_t elen,
    const char *password, size_t plen, struct acct_errors *errs,
    /* OUT: */ struct api_login **out);
/* On a hashing worker: limits, verification, a new token and its expiry when NONE. */
enum api_err api_login_run(struct http_req *req, const struct api_login *l,
    /* OUT: */ char token[65], char expires[64]);
void api_login_free(struct api_login *l);

/*
 * The pages' session cookie: a token of the token table. Only /auth/check
 * accepts it among the JSON endpoints; the others take the Authorization
 * header alone, so the API needs no CSRF defence.
 */
#define API_SESSION_COOKIE "roster_session"

/* True for a token of the token table's shape: 64 lowercase hex characters. */
bool api_token_well_formed(const char *token);

/* As api_authenticate, with the token given (a page's cookie) instead of the header. */
enum api_err api_authenticate_token(struct http_req *req, const char *token,
    /* OUT: */ struct store_user *user, char *token_hash);

/* The profile's members a change sets (NULL: unchanged), each with its length. */
struct api_profile_edit {
	const char *bio, *first_name, *last_name;
	size_t bio_len, first_name_len, last_name_len;
};

/* PATCH /users/me/'s rules and write of the profile (problems already in `errs` stop it). */
enum api_err api_me_update(struct http_req *req, int64_t user_id, const struct api_profile_edit *e,
    struct acct_errors *errs);

/* Invitations of `user_id` (who may invite): the token is shown once (`token`, when NONE). */
enum api_err api_invite_create(struct http_req *req, int64_t user_id, const char *email, size_t len,
    struct acct_errors *errs, /* OUT: */ struct store_invitation *inv, char token[65]);
enum api_err api_invite_resend(struct http_req *req, int64_t id, int64_t user_id,
    /* OUT: */ struct store_invitation *inv, char token[65]);
enum api_err api_invite_revoke(struct http_req *req, int64_t id, int64_t user_id);
/* Accepts the invitation of `token` for the account `user_id`. */
enum api_err api_invite_accept(
    struct http_req *req, int64_t user_id, const char *token, size_t len);

/*
 * The account lifecycle by email (lifecycle.c), each on a worker (the hashing
 * pool for the two that hash a password) but api_reset_check and
 * api_reset_free, which touch no store and run on the I/O thread. A token arrives as the client
 * sent it (NULL: absent): one not of a token's shape is API_ERR_TOKEN_INVALID, one the store
 * refuses API_ERR_TOKEN_EXPIRED / _USED / _INVALID. The answers' messages are the API_MSG_* below,
 * shown by the JSON API and the pages alike.
 */
#define API_MSG_EMAIL_VERIFIED "Your email address has been verified."
#define API_MSG_VERIFY_SENT    "A verification link has been sent."
#define API_MSG_RESET_SENT                                                                         \
	"If an account uses this email, a password reset link has been sent to it."
#define API_MSG_PASSWORD_RESET         "Your password has been reset."
#define API_MSG_PASSWORD_CHANGED       "Your password has been changed."
#define API_MSG_EMAIL_CHANGE_SENT      "A confirmation link has been sent to the new address."
#define API_MSG_EMAIL_CHANGED          "Your email address has been changed." /* the pages' */
#define API_MSG_CURRENT_PASSWORD_WRONG "Your current password is incorrect."

/* Whether a link's token of `purpose` (STORE_OTK_*) would be accepted now; reads only. */
enum api_err api_otk_peek(struct http_req *req, const char *purpose, const char *token, size_t len);
enum api_err api_email_verify_run(struct http_req *req, const char *token, size_t len);
/* Queues a new verification mail unless the address is verified (the same answer either way). */
enum api_err api_verify_resend_run(struct http_req *req, const struct store_user *user);

struct api_reset; /* a reset request's normalized address */

/* The address of a reset request (NULL: absent); API_ERR_NONE with `*out`. */
enum api_err api_reset_check(const char *email, size_t len, struct acct_errors *errs,
    /* OUT: */ struct api_reset **out);
/* The limits, then the one read and one insert; the same answer for every address. */
enum api_err api_reset_run(struct http_req *req, const struct api_reset *r);
void api_reset_free(struct api_reset *r);

/* On a hashing worker: a new password for the account of a reset link's token. */
enum api_err api_reset_confirm_run(struct http_req *req, const char *token, size_t tlen,
    const char *pw, size_t pwlen, struct acct_errors *errs);
/*
 * On a hashing worker: `user`'s password, changed after checking `cur`; every
 * token but the one whose hash is `keep` is revoked.
 */
enum api_err api_password_change_run(struct http_req *req, const struct store_user *user,
    const char *keep, const char *cur, size_t curlen, const char *pw, size_t pwlen,
    struct acct_errors *errs);
/* Queues the confirmation of `email` as `user`'s new address. */
enum api_err api_email_change_run(struct http_req *req, const struct store_user *user,
    const char *email, size_t len, struct acct_errors *errs);
/* Confirms an email change; `*user_id` is the account changed when API_ERR_NONE. */
enum api_err api_email_change_confirm_run(
    struct http_req *req, const char *token, size_t len, /* OUT: */ int64_t *user_id);

/* Handlers, called by the router with a complete request. */
void api_register(struct http_req *req);
void api_login(struct http_req *req);
void api_logout(struct http_req *req);
void api_me(struct http_req *req);
void api_invitations(struct http_req *req);
void api_invitation(struct http_req *req);
void api_invitation_resend(struct http_req *req);
void api_invitation_accept(struct http_req *req);
void api_healthz(struct http_req *req);
void api_readyz(struct http_req *req);
void api_metrics(struct http_req *req);
void api_openapi(struct http_req *req);
void api_auth_check(struct http_req *req);
/* The account lifecycle by email (lifecycle.c). */
void api_email_verify(struct http_req *req);
void api_email_verify_resend(struct http_req *req);
void api_password_reset(struct http_req *req);
void api_password_reset_confirm(struct http_req *req);
void api_password_change(struct http_req *req);
void api_email_change_confirm(struct http_req *req);
/* PATCH /users/me/ with `email` (session.c hands it over): queues the confirmation. */
void api_email_change_request(struct http_req *req, const struct store_user *user, json_t *obj);
/* 200 with the account `user_id` in the GET /users/me/ shape (session.c); 401 when it is gone. */
void api_reply_me(struct http_req *req, int64_t user_id);
/* The error for a one-time token the store refused, by reason. */
enum api_err api_otk_why_err(enum store_otk_why why);

#endif
