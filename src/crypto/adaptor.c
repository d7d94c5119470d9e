#include "crypto/adaptor.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/ct.h"
#include "crypto/ctx.h"
#include "crypto/point.h"
#include "crypto/scalar.h"
#include "crypto/thash.h"
#include "common/banned.h"

int adaptor_point(uint8_t point[ADAPTOR_POINT_LEN], const uint8_t secret[ADAPTOR_SECRET_LEN])
{
    struct point t;

    memset(point, 0, ADAPTOR_POINT_LEN);
    t.inf = 0;
    int ok = secp256k1_ec_pubkey_create(crypto_ctx(), &t.p, secret);
    /* Public: validity of t, and T itself. */
    ct_declassify(&ok, sizeof(ok));
    ct_declassify(&t.p, sizeof(t.p));
    if (!ok)
        return KM_ERR_INVALID;
    point_serialize_ext(point, &t);
    return KM_OK;
}

int adaptor_presig_verify(const uint8_t *presig, size_t presig_len, int nonce_parity,
                          const uint8_t *adaptor, size_t adaptor_len, const uint8_t *xonly_pk,
                          size_t pk_len, const uint8_t *msg, size_t msglen)
{
    uint8_t buf[33], e[32];
    struct point r, t, p, lhs, rhs;
    struct thash h;
    int rc;

    if (presig_len != ADAPTOR_SIG_LEN || adaptor_len != ADAPTOR_POINT_LEN || pk_len != 32)
        return KM_ERR_INVALID;
    if (!scalar_is_canonical_var(presig + 32))
        return KM_ERR_INVALID;
    buf[0] = nonce_parity ? 3 : 2;
    memcpy(buf + 1, presig, 32);
    if (point_parse(&r, buf) != KM_OK || point_parse(&t, adaptor) != KM_OK)
        return KM_ERR_INVALID;
    buf[0] = 2;
    memcpy(buf + 1, xonly_pk, 32);
    if (point_parse(&p, buf) != KM_OK)
        return KM_ERR_INVALID;

    thash_init(&h, "BIP0340/challenge");
    thash_update(&h, presig, 32);
    thash_update(&h, xonly_pk, 32);
    thash_update(&h, msg, msglen);
    if ((rc = thash_final(&h, e)) != KM_OK)
        return rc;
    scalar_reduce(e, e);

    /* rhs = g*(R - T) + e*P */
    point_negate(&t, &t);
    point_add_var(&rhs, &r, &t);
    if (nonce_parity)
        point_negate(&rhs, &rhs);
    point_mul_var(&p, &p, e);
    point_add_var(&rhs, &rhs, &p);
    point_mul_gen(&lhs, presig + 32);
    return point_equal_var(&lhs, &rhs) ? KM_OK : KM_ERR_CRYPTO;
}

int adaptor_adapt(uint8_t sig[ADAPTOR_SIG_LEN], const uint8_t presig[ADAPTOR_SIG_LEN],
                  const uint8_t secret[ADAPTOR_SECRET_LEN], int nonce_parity)
{
    const secp256k1_context *ctx = crypto_ctx();
    uint8_t s[32];
    int ok;

    memset(sig, 0, ADAPTOR_SIG_LEN);
    if (!scalar_is_canonical_var(presig + 32))
        return KM_ERR_INVALID;
    memcpy(s, secret, 32);
    ok = secp256k1_ec_seckey_verify(ctx, s);
    /* Public: whether t is a valid scalar. */
    ct_declassify(&ok, sizeof(ok));
    if (!ok) {
        secure_wipe(s, sizeof(s));
        return KM_ERR_INVALID;
    }
    /* s = s' + t, or s' - t = -t + s' when R has odd Y. t is non-zero, so it
     * is the "seckey" operand; a zero sum leaves zero, the right answer. */
    ok = 1;
    if (nonce_parity)
        ok = secp256k1_ec_seckey_negate(ctx, s);
    /* Public: negating a valid scalar cannot fail (a fault otherwise). */
    ct_declassify(&ok, sizeof(ok));
    if (!ok)
        KM_BUG("negating a valid scalar failed");
    ok = secp256k1_ec_seckey_tweak_add(ctx, s, presig + 32);
    (void)ok;
    memcpy(sig, presig, 32);
    memcpy(sig + 32, s, 32);
    secure_wipe(s, sizeof(s));
    return KM_OK;
}

int adaptor_extract(uint8_t secret[ADAPTOR_SECRET_LEN], const uint8_t *sig, size_t sig_len,
                    const uint8_t *presig, size_t presig_len, int nonce_parity,
                    const uint8_t *adaptor, size_t adaptor_len)
{
    uint8_t neg[32], t[32], got[ADAPTOR_POINT_LEN];

    memset(secret, 0, ADAPTOR_SECRET_LEN);
    if (sig_len != ADAPTOR_SIG_LEN || presig_len != ADAPTOR_SIG_LEN)
        return KM_ERR_INVALID;
    if (adaptor != NULL && adaptor_len != ADAPTOR_POINT_LEN)
        return KM_ERR_INVALID;
    if (memcmp(sig, presig, 32) != 0 || !scalar_is_canonical_var(sig + 32) ||
        !scalar_is_canonical_var(presig + 32))
        return KM_ERR_INVALID;
    /* Both scalars are public; t = s - s' (even R) or s' - s (odd R). */
    if (!nonce_parity) {
        scalar_negate_var(neg, presig + 32);
        scalar_add_var(t, sig + 32, neg);
    } else {
        scalar_negate_var(neg, sig + 32);
        scalar_add_var(t, presig + 32, neg);
    }
    if (scalar_is_zero_var(t))
        return KM_ERR_INVALID;
    if (adaptor != NULL) {
        if (adaptor_point(got, t) != KM_OK || memcmp(got, adaptor, ADAPTOR_POINT_LEN) != 0) {
            secure_wipe(t, sizeof(t));
            return KM_ERR_CRYPTO;
        }
    }
    memcpy(secret, t, 32);
    secure_wipe(t, sizeof(t));
    return KM_OK;
}
