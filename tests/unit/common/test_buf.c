#include "test.h"

#include <string.h>

#include "common/buf.h"
#include "common/banned.h"

static void test_put_get_roundtrip(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(buf_put_u8(&b, 0xab));
    CHECK_OK(buf_put_u16(&b, 0x1234));
    CHECK_OK(buf_put_u32(&b, 0xdeadbeef));
    CHECK_OK(buf_put_u64(&b, 0x0102030405060708ull));
    CHECK_OK(buf_put_str(&b, "hi"));
    CHECK_EQ(buf_len(&b), 1 + 2 + 4 + 8 + 2);
    /* Big-endian on the wire. */
    CHECK_EQ(buf_peek(&b)[1], 0x12);

    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    char s[2];
    CHECK_OK(buf_get_u8(&b, &u8));
    CHECK_OK(buf_get_u16(&b, &u16));
    CHECK_OK(buf_get_u32(&b, &u32));
    CHECK_OK(buf_get_u64(&b, &u64));
    CHECK_OK(buf_get(&b, s, 2));
    CHECK_EQ(u8, 0xab);
    CHECK_EQ(u16, 0x1234);
    CHECK_EQ(u32, 0xdeadbeef);
    CHECK(u64 == 0x0102030405060708ull);
    CHECK_MEM_EQ(s, "hi", 2);
    CHECK_EQ(buf_len(&b), 0);
    CHECK_ERR(buf_get_u8(&b, &u8), KM_ERR_INCOMPLETE);
    buf_release(&b);
}

static void test_max_is_enforced_and_poisons(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    CHECK_OK(buf_put(&b, "12345678", 8));
    CHECK_ERR(buf_put_u8(&b, 1), KM_ERR_TOO_LARGE);
    /* Poisoned: contents released, further appends fail the same way. */
    CHECK_EQ(buf_len(&b), 0);
    CHECK_ERR(buf_put_u8(&b, 1), KM_ERR_TOO_LARGE);
    buf_reset(&b);
    CHECK_OK(buf_put_u8(&b, 1));
    buf_release(&b);
}

static void test_consumed_space_is_reused(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 16);
    for (int round = 0; round < 100; round++) {
        CHECK_OK(buf_put(&b, "abcdefghij", 10));
        CHECK_OK(buf_consume(&b, 7));
        uint8_t rest[3];
        CHECK_OK(buf_get(&b, rest, 3));
        CHECK_MEM_EQ(rest, "hij", 3);
    }
    /* Partially consumed: max counts unread bytes only. */
    CHECK_OK(buf_put(&b, "0123456789abcdef", 16));
    CHECK_OK(buf_consume(&b, 10));
    CHECK_OK(buf_put(&b, "ghijklmnop", 10));
    CHECK_EQ(buf_len(&b), 16);
    CHECK_MEM_EQ(buf_peek(&b), "abcdefghijklmnop", 16);
    buf_release(&b);
}

static void test_tail_commit_and_cstr(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 100);
    CHECK_OK(buf_ensure(&b, 5));
    CHECK(buf_tail_avail(&b) >= 5);
    memcpy(buf_tail_direct(&b), "hello", 5);
    buf_commit(&b, 5);
    CHECK_STR_EQ(buf_cstr(&b), "hello");
    CHECK_OK(buf_putf(&b, " %d %s", 42, "x"));
    CHECK_STR_EQ(buf_cstr(&b), "hello 42 x");
    buf_release(&b);
}

static void test_putf_long_and_too_large(void **state)
{
    (void)state;
    struct buf b;
    char big[600];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    buf_init(&b, 1000);
    CHECK_OK(buf_putf(&b, "%s", big));
    CHECK_EQ(buf_len(&b), 599);
    CHECK_ERR(buf_putf(&b, "%s", big), KM_ERR_TOO_LARGE);
    buf_release(&b);
}

static void test_view_is_read_only_consumable(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {0, 0, 0, 5, 'h'};
    struct buf v;
    buf_view(&v, bytes, sizeof(bytes));
    uint32_t n;
    CHECK_OK(buf_get_u32(&v, &n));
    CHECK_EQ(n, 5);
    CHECK_EQ(buf_len(&v), 1);
    CHECK_ERR(buf_consume(&v, 2), KM_ERR_INCOMPLETE);
    buf_release(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_put_get_roundtrip),        TEST(test_max_is_enforced_and_poisons),
        TEST(test_consumed_space_is_reused), TEST(test_tail_commit_and_cstr),
        TEST(test_putf_long_and_too_large),  TEST(test_view_is_read_only_consumable),
    };
    return RUN_TESTS("common.buf", tests);
}
