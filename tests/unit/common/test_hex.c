#include "test.h"

#include <string.h>

#include "common/hex.h"
#include "common/banned.h"

static void test_encode_all_bytes(void **state)
{
    (void)state;
    uint8_t all[256];
    char hex[513];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    hex_encode(hex, sizeof(hex), all, sizeof(all));
    CHECK_EQ(strlen(hex), 512);
    CHECK(strncmp(hex, "000102", 6) == 0);
    CHECK(strncmp(hex + 2 * 0xfa, "fafbfcfdfeff", 12) == 0);

    uint8_t back[256];
    size_t n;
    CHECK_OK(hex_decode(back, sizeof(back), &n, hex, strlen(hex)));
    CHECK_EQ(n, 256);
    CHECK_MEM_EQ(back, all, 256);
}

static void test_decode_accepts_upper_case(void **state)
{
    (void)state;
    uint8_t out[4];
    CHECK_OK(hex_decode_exact(out, 4, "DEADbeef", 8));
    CHECK_MEM_EQ(out, "\xde\xad\xbe\xef", 4);
}

static void test_decode_rejects_bad_input(void **state)
{
    (void)state;
    uint8_t out[4];
    size_t n;
    CHECK_ERR(hex_decode(out, 4, &n, "abc", 3), KM_ERR_INVALID);
    CHECK_ERR(hex_decode(out, 4, &n, "zz", 2), KM_ERR_INVALID);
    CHECK_ERR(hex_decode(out, 4, &n, "0g", 2), KM_ERR_INVALID);
    CHECK_ERR(hex_decode(out, 4, &n, "0x00", 4), KM_ERR_INVALID);
    CHECK_ERR(hex_decode(out, 4, &n, "0011223344", 10), KM_ERR_TOO_LARGE);
    CHECK_ERR(hex_decode_exact(out, 4, "001122", 6), KM_ERR_INVALID);
    /* Every non-hex byte value is rejected. */
    for (int c = 0; c < 256; c++) {
        char s[2] = {'0', (char)c};
        int ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        CHECK_EQ(hex_decode(out, 4, &n, s, 2) == KM_OK, ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_encode_all_bytes),
        TEST(test_decode_accepts_upper_case),
        TEST(test_decode_rejects_bad_input),
    };
    return RUN_TESTS("common.hex", tests);
}
