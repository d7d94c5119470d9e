#include "test.h"

#include <string.h>

#include "common/uuid.h"
#include "common/banned.h"

static void test_v7_format_and_parse(void **state)
{
    (void)state;
    struct uuid u, back;
    char s[UUID_STR_LEN + 1];
    CHECK_OK(uuid_v7_new(&u));
    CHECK_EQ(uuid_version(&u), 7);
    CHECK_EQ(u.b[8] & 0xc0, 0x80);
    uuid_format(s, &u);
    CHECK_EQ(strlen(s), 36);
    CHECK(s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-');
    CHECK_EQ(s[14], '7');
    CHECK_OK(uuid_parse(&back, s, strlen(s)));
    CHECK(uuid_equal(&u, &back));
}

static void test_v7_sorts_by_time(void **state)
{
    (void)state;
    struct uuid prev, cur;
    CHECK_OK(uuid_v7_new(&prev));
    for (int i = 0; i < 200; i++) {
        CHECK_OK(uuid_v7_new(&cur));
        /* The first 6 bytes are milliseconds: never decrease. */
        CHECK(memcmp(cur.b, prev.b, 6) >= 0);
        prev = cur;
    }
}

static void test_parse_rejects(void **state)
{
    (void)state;
    struct uuid u;
    const char *bad[] = {
        "",
        "0190f4a2-1234-7abc-8def-0123456789a",   /* short */
        "0190f4a2-1234-7abc-8def-0123456789abc", /* long */
        "0190f4a2x1234-7abc-8def-0123456789ab",  /* separator */
        "0190f4a2-1234-7abc-8def-0123456789ag",  /* hex */
        "{190f4a2-1234-7abc-8def-0123456789ab",
    };
    for (size_t i = 0; i < KM_ARRAY_LEN(bad); i++)
        CHECK_ERR(uuid_parse(&u, bad[i], strlen(bad[i])), KM_ERR_INVALID);
    CHECK_OK(uuid_parse(&u, "0190F4A2-1234-7ABC-8DEF-0123456789AB", 36));
    CHECK(!uuid_is_nil(&u));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_v7_format_and_parse),
        TEST(test_v7_sorts_by_time),
        TEST(test_parse_rejects),
    };
    return RUN_TESTS("common.uuid", tests);
}
