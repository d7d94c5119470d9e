#include "test.h"

#include <string.h>

#include "transport/frame.h"
#include "common/banned.h"

static void test_decode_boundaries(void **state)
{
    (void)state;
    /* Every prefix of a frame is incomplete; the whole is complete; for
     * every payload length around the limit. */
    uint8_t wire[64];
    for (uint32_t plen = 0; plen <= 20; plen++) {
        frame_encode_header(wire, plen);
        memset(wire + 4, 'x', plen);
        for (size_t have = 0; have < 4 + plen; have++) {
            size_t off, len, consumed, need;
            CHECK_ERR(frame_decode(wire, have, 16, &off, &len, &consumed, &need),
                      plen > 16 && have >= 4 ? KM_ERR_TOO_LARGE : KM_ERR_INCOMPLETE);
            if (have >= 4 && plen <= 16)
                CHECK_EQ(need, 4 + plen);
        }
        size_t off, len, consumed;
        int r = frame_decode(wire, 4 + plen, 16, &off, &len, &consumed, NULL);
        if (plen > 16) {
            CHECK_ERR(r, KM_ERR_TOO_LARGE);
            CHECK_EQ(len, plen);
        } else {
            CHECK_OK(r);
            CHECK_EQ(off, 4);
            CHECK_EQ(len, plen);
            CHECK_EQ(consumed, 4 + plen);
        }
    }
}

static void test_header_is_big_endian_and_max_checked_first(void **state)
{
    (void)state;
    uint8_t hdr[4];
    frame_encode_header(hdr, 0x01020304);
    CHECK_MEM_EQ(hdr, "\x01\x02\x03\x04", 4);
    /* A 4 GiB claim is refused from the header alone. */
    static const uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    size_t off, len, consumed;
    CHECK_ERR(frame_decode(huge, 4, FRAME_MAX_DEFAULT, &off, &len, &consumed, NULL),
              KM_ERR_TOO_LARGE);
    CHECK_EQ(len, 0xffffffffu);
}

static void test_two_frames_back_to_back(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(frame_encode(&b, (const uint8_t *)"hello", 5, 100));
    CHECK_OK(frame_encode(&b, (const uint8_t *)"", 0, 100));
    CHECK_OK(frame_encode(&b, (const uint8_t *)"xy", 2, 100));
    CHECK_ERR(frame_encode(&b, (const uint8_t *)"toolong", 7, 6), KM_ERR_TOO_LARGE);

    const char *expect[] = {"hello", "", "xy"};
    for (int i = 0; i < 3; i++) {
        size_t off, len, consumed;
        CHECK_OK(frame_decode(buf_peek(&b), buf_len(&b), 100, &off, &len, &consumed, NULL));
        CHECK_EQ(len, strlen(expect[i]));
        CHECK(memcmp(buf_peek(&b) + off, expect[i], len) == 0);
        CHECK_OK(buf_consume(&b, consumed));
    }
    CHECK_EQ(buf_len(&b), 0);
    buf_release(&b);
}

static void test_begin_finish_in_place(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(buf_put_str(&b, "ab")); /* something before the frame */
    size_t start = buf_len(&b);
    CHECK_OK(frame_begin(&b));
    CHECK_OK(buf_put_str(&b, "{\"v\":1}"));
    CHECK_OK(frame_finish(&b, start, 100));
    CHECK_MEM_EQ(buf_peek(&b), "ab\0\0\0\x07{\"v\":1}", 13);

    size_t s2 = buf_len(&b);
    CHECK_OK(frame_begin(&b));
    CHECK_OK(buf_put_str(&b, "0123456789"));
    CHECK_ERR(frame_finish(&b, s2, 9), KM_ERR_TOO_LARGE);
    buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_decode_boundaries),
        TEST(test_header_is_big_endian_and_max_checked_first),
        TEST(test_two_frames_back_to_back),
        TEST(test_begin_finish_in_place),
    };
    return RUN_TESTS("transport.frame", tests);
}
