#include "test.h"

#include <errno.h>
#include <string.h>

#include "common/err.h"
#include "common/banned.h"

static void test_names_are_unique_and_complete(void **state)
{
    (void)state;
    for (int a = KM_ERR_MIN; a <= 0; a++) {
        CHECK(strcmp(km_errname(a), "unknown") != 0);
        CHECK(strcmp(km_strerror(a), "unknown error") != 0);
        for (int b = KM_ERR_MIN; b < a; b++)
            CHECK(strcmp(km_errname(a), km_errname(b)) != 0);
    }
    CHECK_STR_EQ(km_errname(KM_ERR_STATE), "invalid_state");
    CHECK_STR_EQ(km_strerror(12345), "unknown error");
}

static void test_error_record(void **state)
{
    (void)state;
    struct km_error e;
    km_error_clear(&e);
    CHECK_EQ(e.code, KM_OK);
    CHECK_EQ(km_error_set(&e, KM_ERR_CONNECT, ECONNREFUSED, "Failed to connect: %s", "x"),
             KM_ERR_CONNECT);
    CHECK_EQ(e.sys_errno, ECONNREFUSED);
    km_error_prefix(&e, "Command failed to %s", "CID 3:5000");
    CHECK_STR_EQ(e.msg, "Command failed to CID 3:5000: Failed to connect: x");
    CHECK_EQ(km_error_set(NULL, KM_ERR_INVALID, 0, "ignored"), KM_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_names_are_unique_and_complete),
        TEST(test_error_record),
    };
    return RUN_TESTS("common.err", tests);
}
