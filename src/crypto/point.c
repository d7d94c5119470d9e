#include "crypto/point.h"

#include <string.h>

#include "crypto/ctx.h"
#include "crypto/scalar.h"
#include "common/banned.h"

void point_set_infinity(struct point *r)
{
    memset(r, 0, sizeof(*r));
    r->inf = 1;
}

int point_parse(struct point *r, const uint8_t in[33])
{
    point_set_infinity(r);
    /* BIP-327 cpoint: only the compressed tags 2 and 3. */
    if (in[0] != 2 && in[0] != 3)
        return KM_ERR_INVALID;
    if (!secp256k1_ec_pubkey_parse(crypto_ctx(), &r->p, in, 33))
        return KM_ERR_INVALID;
    r->inf = 0;
    return KM_OK;
}

int point_parse_ext(struct point *r, const uint8_t in[33])
{
    static const uint8_t zero[33];

    if (memcmp(in, zero, sizeof(zero)) == 0) {
        point_set_infinity(r);
        return KM_OK;
    }
    return point_parse(r, in);
}

void point_serialize_ext(uint8_t out[33], const struct point *a)
{
    size_t len = 33;

    if (a->inf) {
        memset(out, 0, 33);
        return;
    }
    if (!secp256k1_ec_pubkey_serialize(crypto_ctx(), out, &len, &a->p, SECP256K1_EC_COMPRESSED))
        KM_BUG("pubkey serialize failed");
}

void point_xbytes(uint8_t out[32], const struct point *a)
{
    uint8_t c[33];

    KM_ASSERT(!a->inf);
    point_serialize_ext(c, a);
    memcpy(out, c + 1, 32);
}

int point_has_even_y(const struct point *a)
{
    uint8_t c[33];

    KM_ASSERT(!a->inf);
    point_serialize_ext(c, a);
    return c[0] == 2;
}

void point_add_var(struct point *r, const struct point *a, const struct point *b)
{
    struct point t;
    const secp256k1_pubkey *ins[2];

    if (a->inf) {
        *r = *b;
        return;
    }
    if (b->inf) {
        *r = *a;
        return;
    }
    ins[0] = &a->p;
    ins[1] = &b->p;
    t.inf = !secp256k1_ec_pubkey_combine(crypto_ctx(), &t.p, ins, 2);
    if (t.inf)
        point_set_infinity(&t);
    *r = t;
}

void point_mul_var(struct point *r, const struct point *a, const uint8_t s[32])
{
    struct point t = *a;

    KM_ASSERT(scalar_is_canonical_var(s));
    if (t.inf || scalar_is_zero_var(s)) {
        point_set_infinity(r);
        return;
    }
    if (!secp256k1_ec_pubkey_tweak_mul(crypto_ctx(), &t.p, s))
        KM_BUG("pubkey_tweak_mul with a canonical non-zero scalar failed");
    *r = t;
}

void point_mul_gen(struct point *r, const uint8_t s[32])
{
    KM_ASSERT(scalar_is_canonical_var(s));
    if (scalar_is_zero_var(s)) {
        point_set_infinity(r);
        return;
    }
    r->inf = 0;
    if (!secp256k1_ec_pubkey_create(crypto_ctx(), &r->p, s))
        KM_BUG("pubkey_create with a canonical non-zero scalar failed");
}

void point_negate(struct point *r, const struct point *a)
{
    *r = *a;
    if (!r->inf && !secp256k1_ec_pubkey_negate(crypto_ctx(), &r->p))
        KM_BUG("pubkey_negate failed");
}

int point_equal_var(const struct point *a, const struct point *b)
{
    if (a->inf || b->inf)
        return a->inf && b->inf;
    return secp256k1_ec_pubkey_cmp(crypto_ctx(), &a->p, &b->p) == 0;
}
