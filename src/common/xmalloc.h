/*
 * xmalloc.h - allocation that cannot fail, and overflow-checked sizes.
 *
 * Host-side processes (gateway, CLI) treat out-of-memory as fatal: simpler
 * and safer than half-recovered state (openssh xmalloc). Parsers of untrusted
 * bytes still bound every size before allocating, so a peer cannot trigger
 * this path.
 */
#ifndef KM_COMMON_XMALLOC_H
#define KM_COMMON_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* a + b and a * b, aborting on overflow (sizes we compute ourselves). */
size_t st_add(size_t a, size_t b);
size_t st_mult(size_t a, size_t b);

#define XALLOC_ARRAY(type, n) ((type *)xcalloc((n), sizeof(type)))

#endif /* KM_COMMON_XMALLOC_H */
