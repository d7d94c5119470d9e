#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/banned.h"

#define BUF_MAGIC   0x6b6d6266u /* "kmbf" */
#define BUF_MIN_CAP 64

static void buf_check(const struct buf *b)
{
    if (b == NULL || b->magic != BUF_MAGIC)
        KM_BUG("struct buf used before buf_init");
}

void buf_init(struct buf *b, size_t max)
{
    if (max == 0)
        KM_BUG("buf_init: max must be > 0");
    memset(b, 0, sizeof(*b));
    b->max = max;
    b->magic = BUF_MAGIC;
}

void buf_view(struct buf *b, const void *p, size_t len)
{
    memset(b, 0, sizeof(*b));
    /* The view never writes through data; the cast only drops const for
     * storage in the shared struct. */
    b->data = (uint8_t *)(uintptr_t)p;
    b->len = len;
    b->cap = len;
    b->max = len ? len : 1;
    b->flags = BUF_F_VIEW;
    b->magic = BUF_MAGIC;
}

void buf_release(struct buf *b)
{
    buf_check(b);
    if (!(b->flags & BUF_F_VIEW))
        free(b->data);
    size_t max = b->max;
    buf_init(b, max);
}

void buf_reset(struct buf *b)
{
    buf_check(b);
    if (b->flags & BUF_F_VIEW) {
        b->off = b->len;
        return;
    }
    b->off = 0;
    b->len = 0;
    b->flags &= ~(unsigned)BUF_F_POISONED;
    b->poison_err = KM_OK;
}

size_t buf_len(const struct buf *b)
{
    buf_check(b);
    return b->len - b->off;
}

const uint8_t *buf_peek(const struct buf *b)
{
    buf_check(b);
    return b->len > b->off ? b->data + b->off : NULL;
}

/* Fails the buffer: frees the contents and remembers why. */
static int buf_poison(struct buf *b, int err)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
    b->flags |= BUF_F_POISONED;
    b->poison_err = err;
    return err;
}

int buf_ensure(struct buf *b, size_t n)
{
    buf_check(b);
    if (b->flags & BUF_F_VIEW)
        KM_BUG("append to a read-only buf view");
    if (b->flags & BUF_F_POISONED)
        return b->poison_err;

    size_t unread = b->len - b->off;
    if (n > b->max - unread)
        return buf_poison(b, KM_ERR_TOO_LARGE);
    /* +1 keeps room for the terminator buf_cstr() adds. */
    size_t need = unread + n + 1;
    if (b->off > 0 && b->len + n + 1 > b->cap) {
        /* Compact first: consumed bytes at the front are dead space. */
        memmove(b->data, b->data + b->off, unread);
        b->off = 0;
        b->len = unread;
    }
    if (need <= b->cap)
        return KM_OK;

    size_t newcap = b->cap ? b->cap : BUF_MIN_CAP;
    while (newcap < need)
        newcap = newcap > SIZE_MAX / 2 ? need : newcap * 2;
    if (newcap > b->max + 1)
        newcap = b->max + 1;
    uint8_t *p = realloc(b->data, newcap);
    if (p == NULL)
        return buf_poison(b, KM_ERR_NOMEM);
    b->data = p;
    b->cap = newcap;
    return KM_OK;
}

uint8_t *buf_tail_direct(struct buf *b)
{
    buf_check(b);
    return b->data ? b->data + b->len : NULL;
}

size_t buf_tail_avail(const struct buf *b)
{
    buf_check(b);
    if (b->flags & BUF_F_VIEW || b->cap == 0)
        return 0;
    size_t room = b->cap - b->len - 1;
    size_t allowed = b->max - (b->len - b->off);
    return room < allowed ? room : allowed;
}

void buf_commit(struct buf *b, size_t n)
{
    if (n > buf_tail_avail(b))
        KM_BUG("buf_commit beyond reserved space");
    b->len += n;
}

const char *buf_cstr(struct buf *b)
{
    buf_check(b);
    if (b->flags & BUF_F_VIEW) {
        /* A view cannot be terminated in place. */
        KM_BUG("buf_cstr on a read-only view");
    }
    if (buf_ensure(b, 0) != KM_OK)
        return NULL;
    b->data[b->len] = '\0';
    return (const char *)b->data + b->off;
}

int buf_put(struct buf *b, const void *p, size_t n)
{
    int r = buf_ensure(b, n);
    if (r != KM_OK)
        return r;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return KM_OK;
}

int buf_put_str(struct buf *b, const char *s)
{
    return buf_put(b, s, strlen(s));
}

int buf_put_u8(struct buf *b, uint8_t v)
{
    return buf_put(b, &v, 1);
}

int buf_put_u16(struct buf *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    return buf_put(b, p, sizeof(p));
}

int buf_put_u32(struct buf *b, uint32_t v)
{
    uint8_t p[4];
    buf_store_be32(p, v);
    return buf_put(b, p, sizeof(p));
}

int buf_put_u64(struct buf *b, uint64_t v)
{
    uint8_t p[8];
    buf_store_be64(p, v);
    return buf_put(b, p, sizeof(p));
}

int buf_putf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return buf_poison(b, KM_ERR_INVALID);
    if ((size_t)n < sizeof(small))
        return buf_put(b, small, (size_t)n);

    int r = buf_ensure(b, (size_t)n);
    if (r != KM_OK)
        return r;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return KM_OK;
}

int buf_get(struct buf *b, void *out, size_t n)
{
    if (n > buf_len(b))
        return KM_ERR_INCOMPLETE;
    if (n > 0)
        memcpy(out, b->data + b->off, n);
    b->off += n;
    return KM_OK;
}

int buf_consume(struct buf *b, size_t n)
{
    if (n > buf_len(b))
        return KM_ERR_INCOMPLETE;
    b->off += n;
    if (b->off == b->len && !(b->flags & BUF_F_VIEW))
        b->off = b->len = 0;
    return KM_OK;
}

int buf_get_u8(struct buf *b, uint8_t *v)
{
    return buf_get(b, v, 1);
}

int buf_get_u16(struct buf *b, uint16_t *v)
{
    uint8_t p[2];
    int r = buf_get(b, p, sizeof(p));
    if (r == KM_OK)
        *v = (uint16_t)((p[0] << 8) | p[1]);
    return r;
}

int buf_get_u32(struct buf *b, uint32_t *v)
{
    uint8_t p[4];
    int r = buf_get(b, p, sizeof(p));
    if (r == KM_OK)
        *v = buf_load_be32(p);
    return r;
}

int buf_get_u64(struct buf *b, uint64_t *v)
{
    uint8_t p[8];
    int r = buf_get(b, p, sizeof(p));
    if (r == KM_OK)
        *v = buf_load_be64(p);
    return r;
}

uint32_t buf_load_be32(const uint8_t p[4])
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

void buf_store_be32(uint8_t p[4], uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint64_t buf_load_be64(const uint8_t p[8])
{
    return (uint64_t)buf_load_be32(p) << 32 | buf_load_be32(p + 4);
}

void buf_store_be64(uint8_t p[8], uint64_t v)
{
    buf_store_be32(p, (uint32_t)(v >> 32));
    buf_store_be32(p + 4, (uint32_t)v);
}
