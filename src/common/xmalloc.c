#include "common/xmalloc.h"

#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "common/banned.h"

static void *xcheck(void *p, size_t n)
{
    if (p == NULL && n != 0)
        KM_BUG("out of memory allocating %zu bytes", n);
    return p;
}

void *xmalloc(size_t n)
{
    return xcheck(malloc(n ? n : 1), n ? n : 1);
}

void *xcalloc(size_t count, size_t size)
{
    size_t n = st_mult(count, size);
    return xcheck(calloc(n ? count : 1, n ? size : 1), n ? n : 1);
}

void *xrealloc(void *p, size_t n)
{
    return xcheck(realloc(p, n ? n : 1), n ? n : 1);
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(st_add(len, 1));
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

size_t st_add(size_t a, size_t b)
{
    size_t r;
    if (__builtin_add_overflow(a, b, &r))
        KM_BUG("size overflow: %zu + %zu", a, b);
    return r;
}

size_t st_mult(size_t a, size_t b)
{
    size_t r;
    if (__builtin_mul_overflow(a, b, &r))
        KM_BUG("size overflow: %zu * %zu", a, b);
    return r;
}
