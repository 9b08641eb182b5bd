/*
 * The delivery loop: a thread of every `roster serve` with its own database
 * connection and transport. It claims due mails with a lease
 * (store_mail_claim), mints each one-time token as its mail leaves (only the
 * token's hash is stored; the clear token exists only in the message handed
 * to mail_send), sends, and settles the row:
 *
 *   claimed --mail_send SENT--> sent
 *           --RETRY-----------> queued again after min(retry_min * 2^(n-1), retry_max),
 *                               jittered down to half; failed once older than --mail-give-up
 *           --REFUSED---------> failed (the server's answer kept as last_error)
 *           --stop------------> queued again now (claimed mails not yet tried)
 *           --process dies----> due again when the lease ends (at least once, never lost)
 *
 * It never runs on an HTTP I/O thread or a hashing worker; an SMTP outage
 * only delays mails. Every instance runs one: the lease keeps them from
 * sending one mail twice in normal operation.
 */
#include "api/api.h"
#include "config.h"
#include "crypto/rcrypto.h"
#include "log.h"
#include "mail/compose.h"
#include "mail/mail.h"
#include "metrics.h"
#include "store/store.h"
#include "xmalloc.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH         16 /* mails claimed at once */
#define STATS_EVERY_S 2  /* the outbox gauges are read this often */

struct api_mailer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stopping;     /* under mu */
	bool done;         /* under mu: the thread has returned */
	const struct config *cfg;
	char public_url[512];
	struct store *s;
	struct mail_transport *t;
	struct mail_templates *tpl;
	char claim[33];
	unsigned seed;
};

static const char *kind_names[MAIL_KIND_COUNT];

static bool
stopping(struct api_mailer *m)
{
	bool stop;

	pthread_mutex_lock(&m->mu);
	stop = m->stopping;
	pthread_mutex_unlock(&m->mu);
	return stop;
}

/* Waits `s` seconds or until stopped; true when stopping. */
static bool
pause_s(struct api_mailer *m, long long s)
{
	struct timespec at;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += (time_t)s;
	pthread_mutex_lock(&m->mu);
	while (!m->stopping && pthread_cond_timedwait(&m->cv, &m->mu, &at) == 0)
		;
	stop = m->stopping;
	pthread_mutex_unlock(&m->mu);
	return stop;
}

/* Seconds since the Unix epoch of a store RFC 3339 time; 0 when unreadable. */
static long long
epoch_of(const char *rfc3339)
{
	struct tm tm = {0};

	if (rfc3339 == NULL || sscanf(rfc3339, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
	                           &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm);
}

/* The delay before attempt `attempts` + 1: exponential, capped, jittered down to half. */
static long long
backoff_s(struct api_mailer *m, int attempts)
{
	long long d = m->cfg->mail_retry_min_s;

	for (int i = 1; i < attempts && d < m->cfg->mail_retry_max_s; i++)
		d *= 2;
	if (d > m->cfg->mail_retry_max_s)
		d = m->cfg->mail_retry_max_s;
	return d / 2 + (d > 1 ? rand_r(&m->seed) % (d - d / 2 + 1) : d);
}

/* What the link of a kind opens, and the purpose of its token; NULL: no link. */
static const char *
link_path(enum mail_kind kind, const char **purpose)
{
	switch (kind) {
	case MAIL_KIND_VERIFY:
		*purpose = STORE_OTK_VERIFY;
		return "/account/email/verify";
	case MAIL_KIND_RESET:
		*purpose = STORE_OTK_RESET;
		return "/account/password/reset";
	case MAIL_KIND_EMAIL_CHANGE:
		*purpose = STORE_OTK_EMAIL_CHANGE;
		return "/account/email/change";
	case MAIL_KIND_INVITATION:
		*purpose = STORE_OTK_INVITATION;
		return "/account/invitation";
	default:
		*purpose = NULL;
		return NULL;
	}
}

/* The outcome of preparing or sending one mail. */
struct verdict {
	enum store_mail_outcome outcome;
	bool suppressed;
	char detail[512];
};

/*
 * Builds the variables of mail `row` into `vars`: the account's name, the
 * payload's members and, for a kind with a link, a freshly minted token's
 * link. STORE_MAIL_SENT when ready; otherwise the verdict to settle with.
 */
static enum store_mail_outcome
prepare(struct api_mailer *m, const struct store_mail *row, enum mail_kind kind, json_t *vars,
    char token[65], struct verdict *v)
{
	const char *purpose = NULL, *path = link_path(kind, &purpose);
	json_t *payload = json_loads(row->payload, 0, NULL);
	char hash[65], link[1024];
	long long ttl = kind == MAIL_KIND_RESET ? m->cfg->reset_ttl_s : m->cfg->verify_ttl_s;
	enum store_status st = STORE_OK;

	if (json_is_object(payload))
		json_object_update(vars, payload);
	json_decref(payload);
	json_object_set_new(vars, "to", json_string(row->to));
	if (row->user_id > 0) {
		struct store_user_ref ref = {row->user_id, NULL, NULL};
		struct store_user u = {0};

		st = store_user_get(m->s, &ref, &u);
		if (st == STORE_OK) /* an invitation's account is its inviter */
			json_object_set_new(vars, row->invitation_id > 0 ? "inviter" : "username",
			    json_string(u.username));
		store_user_clear(&u);
	}
	if (st == STORE_OK && path != NULL) {
		rcrypto_random_hex(token, 32); /* 256 bits */
		rcrypto_sha256_hex(token, 64, hash);
		st = store_otk_mint(m->s, purpose, row->invitation_id > 0 ? 0 : row->user_id,
		    row->invitation_id, hash, ttl,
		    json_string_value(json_object_get(vars, "new_email")),
		    json_string_value(json_object_get(vars, "new_email_key")));
		snprintf(link, sizeof(link), "%s%s?token=%s", m->public_url, path, token);
		json_object_set_new(vars, "link", json_string(link));
		sodium_memzero(link, sizeof(link));
	}
	if (st == STORE_NOT_FOUND) {
		snprintf(v->detail, sizeof(v->detail), "%s",
		    row->invitation_id > 0 ? "not sent: the invitation is no longer pending"
		                           : "not sent: the account no longer exists");
		return STORE_MAIL_FAILED;
	}
	if (st != STORE_OK) {
		snprintf(v->detail, sizeof(v->detail), "database %s", store_status_str(st));
		return STORE_MAIL_RETRY;
	}
	return STORE_MAIL_SENT;
}

/* Sends one claimed mail and says how to settle it. */
static void
deliver(struct api_mailer *m, const struct store_mail *row, enum mail_kind kind, struct verdict *v)
{
	const struct mail_site site = {m->cfg->site_name, m->public_url, m->cfg->mail_from};
	struct mail_message msg = {0};
	struct mail_result res = {MAIL_RETRY, ""};
	json_t *vars = json_object();
	char token[65] = "", err[256] = "";

	v->outcome = prepare(m, row, kind, vars, token, v);
	if (v->outcome != STORE_MAIL_SENT)
		goto out;
	if (mail_compose(m->tpl, kind, vars, &site, row->to, &msg, err, sizeof(err)) != 0) {
		snprintf(v->detail, sizeof(v->detail), "cannot compose: %s", err);
		v->outcome = STORE_MAIL_FAILED;
		goto out;
	}
	mail_send(m->t, &msg, &res);
	snprintf(v->detail, sizeof(v->detail), "%s", res.detail);
	v->outcome = res.outcome == MAIL_SENT    ? STORE_MAIL_SENT
	             : res.outcome == MAIL_RETRY ? STORE_MAIL_RETRY
	                                         : STORE_MAIL_FAILED;
	if (msg.text != NULL)
		sodium_memzero((char *)msg.text, strlen(msg.text));
	if (msg.html != NULL)
		sodium_memzero((char *)msg.html, strlen(msg.html));
	mail_composed_clear(&msg);
out:
	sodium_memzero(token, sizeof(token));
	json_object_clear(vars); /* the link's copy is freed (not wiped: jansson owns it) */
	json_decref(vars);
}

static void
settle(struct api_mailer *m, const struct store_mail *row, enum mail_kind kind, struct verdict *v)
{
	long long delay = 0;
	enum store_status st;

	if (v->outcome == STORE_MAIL_RETRY) {
		delay = backoff_s(m, row->attempts);
		if ((long long)time(NULL) + delay - epoch_of(row->created_at) >
		    m->cfg->mail_give_up_s) {
			v->outcome = STORE_MAIL_FAILED;
			snprintf(v->detail + strlen(v->detail),
			    sizeof(v->detail) - strlen(v->detail), " (given up after %d attempts)",
			    row->attempts);
		}
	}
	st = store_mail_settle(m->s, row->id, m->claim, v->outcome, delay,
	    v->outcome == STORE_MAIL_SENT && !v->suppressed ? NULL : v->detail);
	if (st != STORE_OK)
		log_msg(RS_LOG_WARNING,
		    "mail %lld: cannot record its outcome (%s): %s; due again "
		    "when its lease ends",
		    (long long)row->id, v->detail, store_status_str(st));
	metrics_mail((size_t)kind, v->suppressed                    ? METRICS_MAIL_SUPPRESSED
	                           : v->outcome == STORE_MAIL_SENT  ? METRICS_MAIL_SENT
	                           : v->outcome == STORE_MAIL_RETRY ? METRICS_MAIL_RETRIED
	                                                            : METRICS_MAIL_FAILED);
	log_json_new(v->outcome == STORE_MAIL_FAILED ? RS_LOG_WARNING : RS_LOG_INFO, NULL,
	    v->suppressed                    ? "mail suppressed"
	    : v->outcome == STORE_MAIL_SENT  ? "mail sent"
	    : v->outcome == STORE_MAIL_RETRY ? "mail delayed"
	                                     : "mail failed",
	    json_pack("{s:I, s:s, s:i, s:s, s:I}", "mail_id", (json_int_t)row->id, "kind",
	        row->kind, "attempt", row->attempts, "detail", v->detail, "retry_in_s",
	        (json_int_t)delay));
}

/* One claimed mail, from its row to its settled state. */
static void
handle(struct api_mailer *m, const struct store_mail *row)
{
	struct verdict v = {STORE_MAIL_FAILED, false, ""};
	enum mail_kind kind = MAIL_KIND_TEST;

	if (!mail_kind_parse(row->kind, &kind) || kind == MAIL_KIND_TEST) {
		snprintf(v.detail, sizeof(v.detail), "unknown mail kind");
	} else if (kind == MAIL_KIND_RESET_UNKNOWN && !m->cfg->mail_unknown_accounts) {
		v.outcome = STORE_MAIL_SENT; /* written like any reset request, never sent */
		v.suppressed = true;
		snprintf(v.detail, sizeof(v.detail), "not sent: --mail-unknown-accounts is off");
	} else {
		deliver(m, row, kind, &v);
	}
	settle(m, row, kind, &v);
}

static void
read_stats(struct api_mailer *m)
{
	struct store_mail_stats st;

	if (store_mail_stats(m->s, &st) == STORE_OK)
		metrics_mail_outbox(st.queued, st.sending, st.sent, st.failed,
		    st.oldest_queued[0] != '\0' ? epoch_of(st.oldest_queued) : 0);
}

/* Claims and sends one batch; the number claimed, or -1 when the database failed. */
static int
batch(struct api_mailer *m, bool *failing)
{
	struct store_mails got = {0};
	time_t claimed_at = time(NULL);
	enum store_status st = store_mail_claim(m->s, BATCH, m->cfg->mail_lease_s, m->claim, &got);
	size_t i = 0;

	if (st != STORE_OK) {
		if (!*failing)
			log_msg(RS_LOG_WARNING,
			    "mail: cannot claim mails: %s; trying again (logged "
			    "once)",
			    store_status_str(st));
		*failing = true;
		return -1;
	}
	if (*failing)
		log_msg(RS_LOG_INFO, "mail: the database answers again");
	*failing = false;
	/* Half the lease at most on one claim: a batch of slow sends (timeouts) must not run
	 * past it, or another instance would send its last mails too. */
	for (; i < got.n && !stopping(m) && time(NULL) - claimed_at < m->cfg->mail_lease_s / 2 + 1;
	     i++)
		handle(m, &got.items[i]);
	/* Stopping (or half the lease gone): what was claimed and not tried is due again at once,
	 * not at the lease's end. */
	for (; i < got.n; i++)
		if (store_mail_settle(m->s, got.items[i].id, m->claim, STORE_MAIL_RETRY, 0,
		        got.items[i].last_error) != STORE_OK)
			break;
	i = got.n;
	store_mails_clear(&got);
	return (int)i; /* a full batch: look again at once */
}

static void *
mailer_main(void *arg)
{
	struct api_mailer *m = arg;
	bool failing = false;
	time_t stats_at = 0;

	while (!stopping(m)) {
		int n = 0;

		if (m->s == NULL && store_open(m->cfg->db, STORE_OPEN_LAZY, &m->s) != STORE_OK)
			n = -1;
		if (n == 0)
			n = batch(m, &failing);
		if (m->s != NULL && time(NULL) - stats_at >= STATS_EVERY_S) {
			read_stats(m);
			stats_at = time(NULL);
		}
		if (n < BATCH && pause_s(m, m->cfg->mail_poll_s))
			break;
	}
	pthread_mutex_lock(&m->mu);
	m->done = true;
	pthread_cond_broadcast(&m->cv);
	pthread_mutex_unlock(&m->mu);
	return NULL;
}

struct api_mailer *
api_mailer_start(const struct config *cfg, unsigned port)
{
	struct api_mailer *m = xcalloc(1, sizeof(*m));
	char err[256] = "";
	pthread_condattr_t ca;

	for (int i = 0; i < MAIL_KIND_COUNT; i++)
		kind_names[i] = mail_kind_name((enum mail_kind)i);
	metrics_set_mail_kinds(kind_names, MAIL_KIND_COUNT);
	m->cfg = cfg;
	if (cfg->public_url != NULL)
		snprintf(m->public_url, sizeof(m->public_url), "%s", cfg->public_url);
	else
		snprintf(m->public_url, sizeof(m->public_url),
		    strchr(cfg->bind.host, ':') != NULL ? "http://[%s]:%u" : "http://%s:%u",
		    cfg->bind.host, port);
	for (size_t n = strlen(m->public_url); n > 0 && m->public_url[n - 1] == '/'; n--)
		m->public_url[n - 1] = '\0';
	rcrypto_random_hex(m->claim, 16);
	m->seed = (unsigned)getpid() ^ (unsigned)time(NULL);
	m->tpl = mail_templates_load(cfg->mail_templates, err, sizeof(err));
	if (m->tpl != NULL)
		m->t = mail_transport_open(cfg->mail_url, err, sizeof(err));
	if (m->tpl == NULL || m->t == NULL) {
		log_msg(RS_LOG_ERROR, "mail: %s", err);
		goto fail;
	}
	pthread_mutex_init(&m->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&m->thread, NULL, mailer_main, m) != 0) {
		log_msg(RS_LOG_ERROR, "mail: cannot start the delivery thread");
		pthread_cond_destroy(&m->cv);
		pthread_mutex_destroy(&m->mu);
		goto fail;
	}
	return m;
fail:
	mail_transport_close(m->t);
	mail_templates_free(m->tpl);
	free(m);
	return NULL;
}

void
api_mailer_stop(struct api_mailer *m, long long timeout_s)
{
	struct timespec at;
	bool done;

	if (m == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &at);
	at.tv_sec += (time_t)timeout_s;
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	pthread_cond_broadcast(&m->cv);
	while (!m->done && pthread_cond_timedwait(&m->cv, &m->mu, &at) == 0)
		;
	done = m->done;
	pthread_mutex_unlock(&m->mu);
	if (!done) {
		/* A send still in flight past the shutdown timeout: its mail stays claimed and is
		 * due again when its lease ends. The process exits under it. */
		log_msg(RS_LOG_WARNING, "mail: a send is still in flight at shutdown; its mail is "
		                        "sent again after its lease");
		return;
	}
	pthread_join(m->thread, NULL);
	store_close(m->s);
	mail_transport_close(m->t);
	mail_templates_free(m->tpl);
	pthread_cond_destroy(&m->cv);
	pthread_mutex_destroy(&m->mu);
	free(m);
}
