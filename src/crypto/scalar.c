#include "crypto/scalar.h"

#include <string.h>

#include "common/err.h"
#include "crypto/ctx.h"
#include "common/banned.h"

const uint8_t scalar_order[SCALAR_LEN] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41,
};

void scalar_reduce(uint8_t r[SCALAR_LEN], const uint8_t x[SCALAR_LEN])
{
    uint8_t d[SCALAR_LEN];
    uint32_t borrow = 0;

    /* d = x - n with borrow propagation; borrow ends at 1 iff x < n. Since
     * 2^256 < 2n, one subtraction reduces any 256-bit value. */
    for (size_t i = SCALAR_LEN; i-- > 0;) {
        uint32_t v = (uint32_t)x[i] - (uint32_t)scalar_order[i] - borrow;
        d[i] = (uint8_t)v;
        borrow = v >> 31;
    }
    /* mask = 0xff when x >= n (take d), 0x00 otherwise (keep x): no branch. */
    uint8_t mask = (uint8_t)(borrow - 1u);
    for (size_t i = 0; i < SCALAR_LEN; i++)
        r[i] = (uint8_t)((x[i] & (uint8_t)~mask) | (d[i] & mask));
}

int scalar_is_canonical_var(const uint8_t a[SCALAR_LEN])
{
    return memcmp(a, scalar_order, SCALAR_LEN) < 0;
}

int scalar_is_zero_var(const uint8_t a[SCALAR_LEN])
{
    for (size_t i = 0; i < SCALAR_LEN; i++) {
        if (a[i] != 0)
            return 0;
    }
    return 1;
}

void scalar_set_one(uint8_t r[SCALAR_LEN])
{
    memset(r, 0, SCALAR_LEN);
    r[SCALAR_LEN - 1] = 1;
}

void scalar_add_var(uint8_t r[SCALAR_LEN], const uint8_t a[SCALAR_LEN], const uint8_t b[SCALAR_LEN])
{
    uint8_t t[SCALAR_LEN];

    KM_ASSERT(scalar_is_canonical_var(a) && scalar_is_canonical_var(b));
    if (scalar_is_zero_var(a)) {
        memmove(r, b, SCALAR_LEN);
        return;
    }
    memcpy(t, a, SCALAR_LEN);
    /* Fails only when a + b == 0 mod n, and then sets t to zero: the right
     * answer either way. */
    int ok = secp256k1_ec_seckey_tweak_add(crypto_ctx(), t, b);
    (void)ok;
    memcpy(r, t, SCALAR_LEN);
}

void scalar_mul_var(uint8_t r[SCALAR_LEN], const uint8_t a[SCALAR_LEN], const uint8_t b[SCALAR_LEN])
{
    uint8_t t[SCALAR_LEN];

    KM_ASSERT(scalar_is_canonical_var(a) && scalar_is_canonical_var(b));
    if (scalar_is_zero_var(a) || scalar_is_zero_var(b)) {
        memset(r, 0, SCALAR_LEN);
        return;
    }
    memcpy(t, a, SCALAR_LEN);
    if (!secp256k1_ec_seckey_tweak_mul(crypto_ctx(), t, b))
        KM_BUG("tweak_mul of two non-zero canonical scalars failed");
    memcpy(r, t, SCALAR_LEN);
}

void scalar_negate_var(uint8_t r[SCALAR_LEN], const uint8_t a[SCALAR_LEN])
{
    uint8_t t[SCALAR_LEN];

    KM_ASSERT(scalar_is_canonical_var(a));
    memcpy(t, a, SCALAR_LEN);
    if (!scalar_is_zero_var(t) && !secp256k1_ec_seckey_negate(crypto_ctx(), t))
        KM_BUG("negate of a non-zero canonical scalar failed");
    memcpy(r, t, SCALAR_LEN);
}
