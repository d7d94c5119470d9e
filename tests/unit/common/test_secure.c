#include "test.h"

#include <string.h>

#include "common/secure.h"
#include "common/banned.h"

static void test_memeq(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    memset(a, 7, sizeof(a));
    memcpy(b, a, sizeof(b));
    CHECK_EQ(secure_memeq(a, b, 32), 1);
    for (size_t i = 0; i < 32; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1 << bit);
            CHECK_EQ(secure_memeq(a, b, 32), 0);
            b[i] ^= (uint8_t)(1 << bit);
        }
    }
    CHECK_EQ(secure_memeq(a, b, 0), 1);
}

static void test_wipe_and_random(void **state)
{
    (void)state;
    uint8_t k[64], zero[64] = {0};
    CHECK_OK(secure_random(k, sizeof(k)));
    CHECK(memcmp(k, zero, sizeof(k)) != 0);
    secure_wipe(k, sizeof(k));
    CHECK_MEM_EQ(k, zero, sizeof(k));
    secure_wipe(NULL, 0);
    secure_free(NULL, 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_memeq),
        TEST(test_wipe_and_random),
    };
    return RUN_TESTS("common.secure", tests);
}
