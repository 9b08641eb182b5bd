/*
 * Allocation that cannot fail: on out-of-memory the process logs and aborts,
 * so callers carry no OOM branch that no test reaches. Sizes a client chooses
 * are capped before they get here (STYLE.md, Ownership). main.c points
 * jansson at xmalloc too (json_set_alloc_funcs). No I/O library here, so
 * accounts/ and crypto/ may use it.
 */
#ifndef ROSTER_XMALLOC_H
#define ROSTER_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n) __attribute__((malloc, returns_nonnull, alloc_size(1)));
void *xcalloc(size_t count, size_t size) __attribute__((malloc, returns_nonnull, alloc_size(1, 2)));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull, alloc_size(2)));
char *xstrdup(const char *s) __attribute__((malloc, returns_nonnull));
/* NULL stays NULL; anything else is copied. */
char *xstrdup_or_null(const char *s) __attribute__((malloc));

#endif
