/*
 * test_scalar.c - the internal scalar and point helpers, at their edges:
 * reduction at and around n, zero operands, infinity.
 */
#include "test.h"

#include <string.h>

#include "crypto/point.h"
#include "crypto/scalar.h"
#include "common/banned.h"

static void test_reduce(void **state)
{
    (void)state;
    uint8_t x[32], r[32], zero[32] = {0}, one[32];

    scalar_set_one(one);
    memcpy(x, scalar_order, 32);
    scalar_reduce(r, x); /* n -> 0 */
    CHECK_MEM_EQ(r, zero, 32);
    x[31] += 1; /* n + 1 -> 1 */
    scalar_reduce(r, x);
    CHECK_MEM_EQ(r, one, 32);
    memcpy(x, scalar_order, 32);
    x[31] -= 1; /* n - 1 stays */
    scalar_reduce(r, x);
    CHECK_MEM_EQ(r, x, 32);
    CHECK(scalar_is_canonical_var(x));
    memset(x, 0xff, 32); /* 2^256 - 1 -> 2^256 - 1 - n = 0x...014551231950b75fc4402da1732fc9bebe */
    scalar_reduce(x, x);
    CHECK(scalar_is_canonical_var(x));
    CHECK_EQ(x[0], 0);
    CHECK_EQ(x[15], 1);
    CHECK_EQ(x[31], 0xbe);
    CHECK(!scalar_is_canonical_var(scalar_order));
}

static void test_arith_zero_cases(void **state)
{
    (void)state;
    uint8_t zero[32] = {0}, one[32], nm1[32], r[32];

    scalar_set_one(one);
    memcpy(nm1, scalar_order, 32);
    nm1[31] -= 1;
    scalar_add_var(r, zero, one);
    CHECK_MEM_EQ(r, one, 32);
    scalar_add_var(r, one, zero);
    CHECK_MEM_EQ(r, one, 32);
    scalar_add_var(r, one, nm1); /* 1 + (n - 1) = 0 */
    CHECK_MEM_EQ(r, zero, 32);
    scalar_mul_var(r, zero, nm1);
    CHECK_MEM_EQ(r, zero, 32);
    scalar_mul_var(r, nm1, nm1); /* (-1)^2 = 1 */
    CHECK_MEM_EQ(r, one, 32);
    scalar_negate_var(r, zero);
    CHECK_MEM_EQ(r, zero, 32);
    scalar_negate_var(r, one);
    CHECK_MEM_EQ(r, nm1, 32);
    CHECK(scalar_is_zero_var(zero));
    CHECK(!scalar_is_zero_var(one));
}

static void test_points(void **state)
{
    (void)state;
    struct point g, ng, inf, r;
    uint8_t one[32], nm1[32], enc[33], zero33[33] = {0};

    scalar_set_one(one);
    memcpy(nm1, scalar_order, 32);
    nm1[31] -= 1;
    point_mul_gen(&g, one);
    point_mul_gen(&ng, nm1);
    point_negate(&r, &g);
    CHECK(point_equal_var(&r, &ng));
    point_add_var(&r, &g, &ng); /* G + (-G) = infinity */
    CHECK(r.inf);
    point_set_infinity(&inf);
    CHECK(point_equal_var(&r, &inf));
    CHECK(!point_equal_var(&g, &inf));
    point_add_var(&r, &inf, &g);
    CHECK(point_equal_var(&r, &g));
    point_add_var(&r, &g, &inf);
    CHECK(point_equal_var(&r, &g));
    point_mul_var(&r, &inf, one);
    CHECK(r.inf);
    point_mul_var(&r, &g, (const uint8_t[32]){0});
    CHECK(r.inf);
    point_mul_gen(&r, (const uint8_t[32]){0});
    CHECK(r.inf);
    point_negate(&r, &inf);
    CHECK(r.inf);
    point_serialize_ext(enc, &inf);
    CHECK_MEM_EQ(enc, zero33, 33);
    CHECK_OK(point_parse_ext(&r, zero33));
    CHECK(r.inf);
    CHECK_ERR(point_parse(&r, zero33), KM_ERR_INVALID);
    point_serialize_ext(enc, &g);
    CHECK_EQ(enc[0], 2);
    CHECK(point_has_even_y(&g));
    CHECK(!point_has_even_y(&ng));
    enc[0] = 4;
    CHECK_ERR(point_parse(&r, enc), KM_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TEST(test_reduce),
        TEST(test_arith_zero_cases),
        TEST(test_points),
    };
    return RUN_TESTS("crypto.scalar", tests);
}
