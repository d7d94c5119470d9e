/*
 * frame_fuzz.c - the frame codec (transport/frame.h) on arbitrary bytes.
 *
 * The first input byte picks the receiver's maximum payload; the rest is a
 * stream decoded frame by frame, as a connection reader would. Checks the
 * codec's contract: consumed bytes stay within the input, payloads within
 * the maximum, and re-encoding a decoded frame reproduces it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transport/frame.h"
#include "common/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max = (size_t)data[0] * 16u;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    while (len > 0) {
        size_t off, plen, consumed, need;
        int r = frame_decode(p, len, max, &off, &plen, &consumed, &need);
        if (r != KM_OK) {
            if (r == KM_ERR_INCOMPLETE && len >= FRAME_HEADER_LEN && need <= len)
                abort(); /* claimed incomplete although the bytes are there */
            break;
        }
        if (consumed > len || plen > max || off + plen != consumed)
            abort();
        struct buf b;
        buf_init(&b, max + FRAME_HEADER_LEN + 1);
        if (frame_encode(&b, p + off, plen, max) != KM_OK || buf_len(&b) != consumed ||
            memcmp(buf_peek(&b), p, consumed) != 0)
            abort();
        buf_release(&b);
        p += consumed;
        len -= consumed;
    }
    return 0;
}
