/* Bounded worker pool; see pool.h. A ring buffer under one mutex. */
#include "pool.h"

#include <pthread.h>
#include <stdlib.h>

struct job {
	pool_fn fn;
	void *arg;
};

struct pool {
	pthread_mutex_t mu;
	pthread_cond_t nonempty;
	struct job *ring;
	unsigned capacity, limit, head, queued, reserved, running;
	bool stopping;
	bool joined;
	void *(*init)(void *);
	void (*fini)(void *);
	void *init_arg;
	unsigned nthreads;
	pthread_t threads[];
};

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
	struct pool *p = calloc(1, sizeof(*p) + workers * sizeof(pthread_t));

	if (p == NULL)
		return NULL;
	/* Room for every reservable slot: the queue plus one job per worker. */
	p->ring = calloc(capacity + workers, sizeof(*p->ring));
	if (p->ring == NULL) {
		free(p);
		return NULL;
	}
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
	p->ring[(p->head + p->queued) % p->capacity] = (struct job){fn, arg};
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

void
pool_stop(struct pool *p)
{
	if (p->joined)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->nonempty);
	pthread_mutex_unlock(&p->mu);
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
