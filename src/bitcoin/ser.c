#include "bitcoin/ser.h"

#include <string.h>

#include "common/banned.h"

uint32_t ser_load_le32(const uint8_t p[4])
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t ser_load_le64(const uint8_t p[8])
{
    return (uint64_t)ser_load_le32(p) | (uint64_t)ser_load_le32(p + 4) << 32;
}

void ser_store_le32(uint8_t p[4], uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

void ser_store_le64(uint8_t p[8], uint64_t v)
{
    ser_store_le32(p, (uint32_t)v);
    ser_store_le32(p + 4, (uint32_t)(v >> 32));
}

int ser_get_le32(struct buf *b, uint32_t *v)
{
    uint8_t p[4];
    int r = buf_get(b, p, sizeof(p));
    if (r == KM_OK)
        *v = ser_load_le32(p);
    return r;
}

int ser_get_le64(struct buf *b, uint64_t *v)
{
    uint8_t p[8];
    int r = buf_get(b, p, sizeof(p));
    if (r == KM_OK)
        *v = ser_load_le64(p);
    return r;
}

int ser_get_compact(struct buf *b, uint64_t *v)
{
    const uint8_t *p = buf_peek(b);
    size_t avail = buf_len(b);
    uint64_t x;
    size_t n;

    if (avail < 1)
        return KM_ERR_INCOMPLETE;
    switch (p[0]) {
    case 0xfd:
        n = 3;
        break;
    case 0xfe:
        n = 5;
        break;
    case 0xff:
        n = 9;
        break;
    default:
        *v = p[0];
        return buf_consume(b, 1);
    }
    if (avail < n)
        return KM_ERR_INCOMPLETE;
    if (n == 3)
        x = (uint64_t)p[1] | (uint64_t)p[2] << 8;
    else if (n == 5)
        x = ser_load_le32(p + 1);
    else
        x = ser_load_le64(p + 1);
    /* Shortest form only: each prefix covers values the previous cannot. */
    if (ser_compact_len(x) != n)
        return KM_ERR_INVALID;
    *v = x;
    return buf_consume(b, n);
}

int ser_get_direct(struct buf *b, const uint8_t **p, size_t n)
{
    if (n > buf_len(b))
        return KM_ERR_INCOMPLETE;
    *p = n > 0 ? buf_peek(b) : NULL;
    return buf_consume(b, n);
}

size_t ser_compact_len(uint64_t v)
{
    if (v < 0xfd)
        return 1;
    if (v <= 0xffff)
        return 3;
    if (v <= 0xffffffffu)
        return 5;
    return 9;
}

int ser_put_le32(struct buf *b, uint32_t v)
{
    uint8_t p[4];
    ser_store_le32(p, v);
    return buf_put(b, p, sizeof(p));
}

int ser_put_le64(struct buf *b, uint64_t v)
{
    uint8_t p[8];
    ser_store_le64(p, v);
    return buf_put(b, p, sizeof(p));
}

int ser_put_compact(struct buf *b, uint64_t v)
{
    uint8_t p[9];
    size_t n = ser_compact_len(v);

    if (n == 1) {
        p[0] = (uint8_t)v;
    } else if (n == 3) {
        p[0] = 0xfd;
        p[1] = (uint8_t)v;
        p[2] = (uint8_t)(v >> 8);
    } else if (n == 5) {
        p[0] = 0xfe;
        ser_store_le32(p + 1, (uint32_t)v);
    } else {
        p[0] = 0xff;
        ser_store_le64(p + 1, v);
    }
    return buf_put(b, p, n);
}

int ser_put_bytes(struct buf *b, const uint8_t *p, size_t n)
{
    int r = ser_put_compact(b, n);
    if (r != KM_OK)
        return r;
    return buf_put(b, p, n);
}

size_t ser_offset(const struct buf *b, size_t len)
{
    return len - buf_len(b);
}
