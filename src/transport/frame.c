#include "transport/frame.h"

#include <string.h>

#include "common/banned.h"

int frame_decode(const uint8_t *p, size_t len, size_t max_payload, size_t *payload_off,
                 size_t *payload_len, size_t *consumed, size_t *need_total)
{
    *payload_off = 0;
    *payload_len = 0;
    *consumed = 0;
    if (need_total != NULL)
        *need_total = FRAME_HEADER_LEN;
    if (len < FRAME_HEADER_LEN)
        return KM_ERR_INCOMPLETE;

    uint32_t n = buf_load_be32(p);
    if (n > max_payload) {
        *payload_len = n;
        return KM_ERR_TOO_LARGE;
    }
    size_t total = FRAME_HEADER_LEN + (size_t)n;
    if (need_total != NULL)
        *need_total = total;
    if (len - FRAME_HEADER_LEN < n)
        return KM_ERR_INCOMPLETE;
    *payload_off = FRAME_HEADER_LEN;
    *payload_len = n;
    *consumed = total;
    return KM_OK;
}

void frame_encode_header(uint8_t out[FRAME_HEADER_LEN], uint32_t len)
{
    buf_store_be32(out, len);
}

int frame_encode(struct buf *out, const uint8_t *payload, size_t len, size_t max_payload)
{
    if (len > max_payload || len > FRAME_MAX_LIMIT)
        return KM_ERR_TOO_LARGE;
    int r = buf_put_u32(out, (uint32_t)len);
    if (r != KM_OK)
        return r;
    return buf_put(out, payload, len);
}

int frame_begin(struct buf *out)
{
    static const uint8_t placeholder[FRAME_HEADER_LEN];
    return buf_put(out, placeholder, sizeof(placeholder));
}

int frame_finish(struct buf *out, size_t start, size_t max_payload)
{
    size_t end = buf_len(out);
    if (end < start + FRAME_HEADER_LEN)
        KM_BUG("frame_finish without frame_begin");
    size_t n = end - start - FRAME_HEADER_LEN;
    if (n > max_payload || n > FRAME_MAX_LIMIT)
        return KM_ERR_TOO_LARGE;
    /* buf_peek points at the unread bytes; the header sits at start. The
     * cast is safe: out is a writable buffer we own. */
    uint8_t *hdr = (uint8_t *)(uintptr_t)buf_peek(out) + start;
    frame_encode_header(hdr, (uint32_t)n);
    return KM_OK;
}
