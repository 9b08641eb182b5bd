/*
 * A bounded pool of worker threads for slow work (password hashing): a fixed
 * number of threads and a fixed-capacity queue, so memory is bounded by the
 * workers, not by demand. Each worker owns a context made by `init` (a
 * database connection) for its whole life.
 */
#ifndef ROSTER_POOL_H
#define ROSTER_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pool;

typedef void (*pool_fn)(void *arg, void *worker_ctx);

/* CLOCK_MONOTONIC in microseconds: the clock of the pool's waits, for callers' timings too. */
uint64_t pool_now_us(void);

/*
 * Starts `workers` threads with a queue of `capacity` jobs. `init` (may be
 * NULL) runs on each worker thread and returns its context, which may be NULL
 * when it failed (jobs then see NULL); `fini` releases it.
 */
struct pool *pool_new(unsigned workers, unsigned capacity, void *(*init)(void *),
    void (*fini)(void *), void *init_arg);

/*
 * Bounds the wait in the queue: a job that waited longer than `max_wait_us`
 * is taken off the queue by a reaper thread and handed to `expired(arg,
 * NULL)` instead of its own function, even while every worker is busy;
 * `expired` must call pool_release as the job would. 0: no bound (and no
 * thread). Call once, before the first submission; false when the thread
 * cannot start.
 */
bool pool_set_max_wait(struct pool *p, uint64_t max_wait_us, pool_fn expired);

/* Reserves a queue slot; false when the queue is full (answer 503). */
bool pool_reserve(struct pool *p);

/*
 * Queues `fn(arg, ctx)` in a slot reserved by pool_reserve; never fails. The
 * job must call pool_release once when its result is ready (before handing it
 * on), so the slot is free by the time the client can ask again.
 */
void pool_submit_reserved(struct pool *p, pool_fn fn, void *arg);

/* Gives back the slot of a job that has finished its work. */
void pool_release(struct pool *p);

/* Jobs waiting or running now. */
size_t pool_depth(struct pool *p);

/*
 * Refuses new reservations (pool_reserve answers false), runs every queued
 * job to completion and joins the workers. The pool stays allocated, so
 * pool_reserve and pool_depth remain safe to call until pool_free.
 */
void pool_stop(struct pool *p);

/* Stops the pool when pool_stop has not, then frees it. NULL is a no-op. */
void pool_free(struct pool *p);

#endif
