/*
 * Bounded worker pool; see pool.h. A ring buffer under one mutex. Jobs are
 * FIFO, so the oldest waiting job is always at the head: the reaper (when a
 * bound on the wait is set) only ever looks there.
 */
#include "pool.h"
#include "xmalloc.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

struct job {
	pool_fn fn;
	void *arg;
	uint64_t queued_us;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t nonempty;
	struct job *ring;
	unsigned capacity, limit, head, queued, reserved, running;
	bool stopping;
	bool joined;
	uint64_t max_wait_us; /* 0: no reaper */
	pool_fn expired;
	pthread_cond_t reap; /* wakes the reaper at stop; CLOCK_MONOTONIC */
	pthread_t reaper;
	void *(*init)(void *);
	void (*fini)(void *);
	void *init_arg;
	unsigned nthreads;
	pthread_t threads[];
};

uint64_t
pool_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void *
worker(void *arg)
{
	struct pool *p = arg;
	void *ctx = p->init != NULL ? p->init(p->init_arg) : NULL;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		struct job j;

		while (p->queued == 0 && !p->stopping)
			pthread_cond_wait(&p->nonempty, &p->mu);
		if (p->queued == 0)
			break; /* stopping and drained */
		j = p->ring[p->head];
		p->head = (p->head + 1) % p->capacity;
		p->queued--;
		p->running++;
		pthread_mutex_unlock(&p->mu);
		j.fn(j.arg, ctx); /* calls pool_release */
		pthread_mutex_lock(&p->mu);
		p->running--;
	}
	pthread_mutex_unlock(&p->mu);
	if (p->fini != NULL)
		p->fini(ctx);
	return NULL;
}

struct pool *
pool_new(unsigned workers, unsigned capacity, void *(*init)(void *), void (*fini)(void *),
    void *init_arg)
{
	struct pool *p = xcalloc(1, sizeof(*p) + workers * sizeof(pthread_t));

	/* Room for every reservable slot: the queue plus one job per worker. */
	p->ring = xcalloc(capacity + workers, sizeof(*p->ring));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->nonempty, NULL);
	p->capacity = capacity + workers;
	p->limit = capacity;
	p->init = init;
	p->fini = fini;
	p->init_arg = init_arg;
	for (; p->nthreads < workers; p->nthreads++)
		if (pthread_create(&p->threads[p->nthreads], NULL, worker, p) != 0)
			break;
	if (p->nthreads == 0) {
		pool_free(p);
		return NULL;
	}
	return p;
}

bool
pool_reserve(struct pool *p)
{
	bool ok;

	pthread_mutex_lock(&p->mu);
	/* `reserved` counts queued and running jobs and slots promised to callers:
	 * the queue's limit plus one running job per worker. */
	ok = !p->stopping && p->reserved < p->limit + p->nthreads;
	if (ok)
		p->reserved++;
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void
pool_submit_reserved(struct pool *p, pool_fn fn, void *arg)
{
	pthread_mutex_lock(&p->mu);
	p->ring[(p->head + p->queued) % p->capacity] = (struct job){fn, arg, pool_now_us()};
	p->queued++;
	pthread_cond_signal(&p->nonempty);
	pthread_mutex_unlock(&p->mu);
}

void
pool_release(struct pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->reserved--;
	pthread_mutex_unlock(&p->mu);
}

size_t
pool_depth(struct pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->mu);
	n = p->reserved;
	pthread_mutex_unlock(&p->mu);
	return n;
}

/*
 * Takes jobs that waited longer than max_wait_us off the head of the queue
 * and hands each to `expired` (which releases its slot), whether or not a
 * worker is free: a queue behind blocked workers still gets its answers.
 * Checks every tenth of the bound (10-250 ms), so a job expires at most that
 * late, without a wake-up per submitted job.
 */
static void *
reaper(void *arg)
{
	struct pool *p = arg;
	uint64_t tick = p->max_wait_us / 10;

	tick = tick < 10000 ? 10000 : tick > 250000 ? 250000 : tick;
	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		uint64_t now = pool_now_us(), next = now + tick;
		struct timespec ts = {(time_t)(next / 1000000u), (long)(next % 1000000u) * 1000};

		if (p->queued > 0 && now - p->ring[p->head].queued_us > p->max_wait_us) {
			struct job j = p->ring[p->head];

			p->head = (p->head + 1) % p->capacity;
			p->queued--;
			pthread_mutex_unlock(&p->mu);
			p->expired(j.arg, NULL);
			pthread_mutex_lock(&p->mu);
			continue;
		}
		pthread_cond_timedwait(&p->reap, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

bool
pool_set_max_wait(struct pool *p, uint64_t max_wait_us, pool_fn expired)
{
	pthread_condattr_t attr;

	if (max_wait_us == 0)
		return true;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->reap, &attr);
	pthread_condattr_destroy(&attr);
	p->max_wait_us = max_wait_us;
	p->expired = expired;
	if (pthread_create(&p->reaper, NULL, reaper, p) != 0) {
		pthread_cond_destroy(&p->reap);
		p->max_wait_us = 0;
		return false;
	}
	return true;
}

void
pool_stop(struct pool *p)
{
	if (p->joined)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->nonempty);
	if (p->max_wait_us > 0)
		pthread_cond_signal(&p->reap);
	pthread_mutex_unlock(&p->mu);
	if (p->max_wait_us > 0) {
		pthread_join(p->reaper, NULL);
		pthread_cond_destroy(&p->reap);
	}
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->joined = true;
}

void
pool_free(struct pool *p)
{
	if (p == NULL)
		return;
	pool_stop(p);
	pthread_cond_destroy(&p->nonempty);
	pthread_mutex_destroy(&p->mu);
	free(p->ring);
	free(p);
}
