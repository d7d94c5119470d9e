#include "crypto/taproot.h"

#include <string.h>

#include <secp256k1_extrakeys.h>

#include "common/secure.h"
#include "crypto/ct.h"
#include "crypto/ctx.h"
#include "crypto/scalar.h"
#include "crypto/thash.h"
#include "common/banned.h"

int taproot_tweak(uint8_t tweak[32], const uint8_t internal[TAPROOT_XONLY_LEN],
                  const uint8_t *merkle_root)
{
    uint8_t buf[64];
    size_t len = 32;

    memcpy(buf, internal, 32);
    if (merkle_root != NULL) {
        memcpy(buf + 32, merkle_root, 32);
        len = 64;
    }
    thash_oneshot(tweak, "TapTweak", buf, len);
    return scalar_is_canonical_var(tweak) ? KM_OK : KM_ERR_RANGE;
}

int taproot_output_key(uint8_t output[TAPROOT_XONLY_LEN], int *parity, const uint8_t *internal,
                       size_t internal_len, const uint8_t *merkle_root)
{
    const secp256k1_context *ctx = crypto_ctx();
    secp256k1_xonly_pubkey p, q;
    secp256k1_pubkey full;
    uint8_t t[32];
    int par = 0, r;

    memset(output, 0, TAPROOT_XONLY_LEN);
    if (parity != NULL)
        *parity = 0;
    if (internal_len != TAPROOT_XONLY_LEN || !secp256k1_xonly_pubkey_parse(ctx, &p, internal))
        return KM_ERR_INVALID;
    if ((r = taproot_tweak(t, internal, merkle_root)) != KM_OK)
        return r;
    /* Fails only if Q is infinity (t = -int(P)'s discrete log: not findable). */
    if (!secp256k1_xonly_pubkey_tweak_add(ctx, &full, &p, t) ||
        !secp256k1_xonly_pubkey_from_pubkey(ctx, &q, &par, &full) ||
        !secp256k1_xonly_pubkey_serialize(ctx, output, &q))
        return KM_ERR_CRYPTO;
    if (parity != NULL)
        *parity = par;
    return KM_OK;
}

int taproot_tweak_keypair(struct keypair *out, const struct keypair *in, const uint8_t *merkle_root)
{
    const secp256k1_context *ctx = crypto_ctx();
    uint8_t t[32], sk[32];
    int ok, r;

    memset(out, 0, sizeof(*out));
    if ((r = taproot_tweak(t, in->xonly, merkle_root)) != KM_OK)
        return r;
    /* d = n - d' if d'*G has odd Y (public), then d + t: constant time in d.
     * Done here rather than with secp256k1_keypair_xonly_tweak_add, whose
     * internal validity branches are only declassified in valgrind-enabled
     * builds of libsecp256k1 (the ctime check would flag them). */
    memcpy(sk, in->seckey, 32);
    ok = 1;
    if (in->pubkey[0] == 3)
        ok = secp256k1_ec_seckey_negate(ctx, sk);
    ok &= secp256k1_ec_seckey_tweak_add(ctx, sk, t);
    /* Public: the tweaked key is zero only if t = -d (not findable). */
    ct_declassify(&ok, sizeof(ok));
    r = ok ? keypair_init(out, sk) : KM_ERR_CRYPTO;
    secure_wipe(sk, sizeof(sk));
    return r;
}

int taproot_musig_tweak(struct musig_keyagg *ka, const uint8_t *merkle_root)
{
    uint8_t x[32], t[32];
    int r;

    musig_keyagg_xonly(ka, x);
    if ((r = taproot_tweak(t, x, merkle_root)) != KM_OK)
        return r;
    return musig_keyagg_apply_tweak(ka, NULL, t, 1);
}

void taproot_leaf_hash(uint8_t out[TAPROOT_HASH_LEN], uint8_t leaf_version, const uint8_t *script,
                       size_t len)
{
    struct thash h;
    uint8_t cs[9];
    size_t csl;
    uint64_t v = (uint64_t)len;

    /* Bitcoin's CompactSize, little-endian. */
    if (v < 0xfd) {
        cs[0] = (uint8_t)v;
        csl = 1;
    } else {
        size_t w = v <= 0xffff ? 2 : v <= 0xffffffffu ? 4 : 8;
        cs[0] = w == 2 ? 0xfd : w == 4 ? 0xfe : 0xff;
        for (size_t i = 0; i < w; i++)
            cs[1 + i] = (uint8_t)(v >> (8 * i));
        csl = 1 + w;
    }
    thash_init(&h, "TapLeaf");
    thash_update_u8(&h, leaf_version);
    thash_update(&h, cs, csl);
    thash_update(&h, script, len);
    if (thash_final(&h, out) != KM_OK)
        KM_BUG("SHA-256 failed"); /* only on OpenSSL allocation failure */
}

void taproot_branch_hash(uint8_t out[TAPROOT_HASH_LEN], const uint8_t a[TAPROOT_HASH_LEN],
                         const uint8_t b[TAPROOT_HASH_LEN])
{
    uint8_t buf[64];
    int swap = memcmp(a, b, 32) > 0;

    memcpy(buf, swap ? b : a, 32);
    memcpy(buf + 32, swap ? a : b, 32);
    thash_oneshot(out, "TapBranch", buf, sizeof(buf));
}

void taproot_script_pubkey(uint8_t out[TAPROOT_SPK_LEN], const uint8_t key[TAPROOT_XONLY_LEN])
{
    out[0] = 0x51; /* OP_1: witness version 1 */
    out[1] = 0x20; /* push 32 bytes */
    memcpy(out + 2, key, 32);
}
