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

/* ---- bech32m (BIP-173 with BIP-350's constant) ------------------------- */

#define BECH32M_CONST 0x2bc830a3u
#define BECH32_MAX    90
#define HRP_MAX       83
/* 8 + 1 witness version + 52 program characters (32 bytes) + 6 checksum. */
#define P2TR_DATA_CHARS (1 + 52)

static const char b32_charset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

static uint32_t b32_polymod_step(uint32_t pre)
{
    uint32_t b = pre >> 25;
    return ((pre & 0x1ffffffu) << 5) ^ (-((b >> 0) & 1u) & 0x3b6a57b2u) ^
           (-((b >> 1) & 1u) & 0x26508e6du) ^ (-((b >> 2) & 1u) & 0x1ea119fau) ^
           (-((b >> 3) & 1u) & 0x3d4233ddu) ^ (-((b >> 4) & 1u) & 0x2a1462b3u);
}

static int b32_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Checksum state after the expanded hrp (already lower case). */
static uint32_t b32_hrp_state(const char *hrp, size_t hl)
{
    uint32_t chk = 1;
    for (size_t i = 0; i < hl; i++)
        chk = b32_polymod_step(chk) ^ ((uint32_t)(unsigned char)b32_lower(hrp[i]) >> 5);
    chk = b32_polymod_step(chk);
    for (size_t i = 0; i < hl; i++)
        chk = b32_polymod_step(chk) ^ ((uint32_t)(unsigned char)b32_lower(hrp[i]) & 0x1f);
    return chk;
}

static int hrp_valid(const char *hrp, size_t hl)
{
    if (hl == 0 || hl > HRP_MAX)
        return 0;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)hrp[i];
        if (c < 33 || c > 126 || (c >= 'A' && c <= 'Z'))
            return 0;
    }
    return 1;
}

/* Witness version 1 then the 32-byte program regrouped into 5-bit values. */
static void p2tr_data(uint8_t data[P2TR_DATA_CHARS], const uint8_t key[32])
{
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t n = 0;

    data[n++] = 1;
    for (size_t i = 0; i < 32; i++) {
        acc = (acc << 8) | key[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            data[n++] = (uint8_t)((acc >> bits) & 0x1f);
        }
    }
    if (bits > 0)
        data[n++] = (uint8_t)((acc << (5 - bits)) & 0x1f);
}

int taproot_address(char *out, size_t outcap, const char *hrp, const uint8_t key[TAPROOT_XONLY_LEN])
{
    uint8_t data[P2TR_DATA_CHARS];
    size_t hl = strlen(hrp), n = 0;
    uint32_t chk;

    if (outcap > 0)
        out[0] = '\0';
    if (!hrp_valid(hrp, hl) || hl + 1 + P2TR_DATA_CHARS + 6 > BECH32_MAX)
        return KM_ERR_INVALID;
    if (outcap < hl + 1 + P2TR_DATA_CHARS + 6 + 1)
        return KM_ERR_TOO_LARGE;
    p2tr_data(data, key);
    chk = b32_hrp_state(hrp, hl);
    memcpy(out, hrp, hl);
    n = hl;
    out[n++] = '1';
    for (size_t i = 0; i < P2TR_DATA_CHARS; i++) {
        chk = b32_polymod_step(chk) ^ data[i];
        out[n++] = b32_charset[data[i]];
    }
    for (int i = 0; i < 6; i++)
        chk = b32_polymod_step(chk);
    chk ^= BECH32M_CONST;
    for (int i = 0; i < 6; i++)
        out[n++] = b32_charset[(chk >> (5 * (5 - i))) & 0x1f];
    out[n] = '\0';
    return KM_OK;
}

int taproot_address_decode(uint8_t key[TAPROOT_XONLY_LEN], const char *hrp, const char *addr,
                           size_t len)
{
    uint8_t data[BECH32_MAX];
    size_t hl = strlen(hrp), sep = 0, nd;
    int lower = 0, upper = 0;
    uint32_t chk, acc = 0;
    unsigned bits = 0;
    size_t kn = 0;

    memset(key, 0, TAPROOT_XONLY_LEN);
    if (len > BECH32_MAX || len < 8 || !hrp_valid(hrp, hl))
        return KM_ERR_INVALID;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (c < 33 || c > 126)
            return KM_ERR_INVALID;
        lower |= c >= 'a' && c <= 'z';
        upper |= c >= 'A' && c <= 'Z';
        if (c == '1')
            sep = i; /* the last '1' separates hrp from data */
    }
    if (lower && upper)
        return KM_ERR_INVALID;
    if (sep != hl || len - sep - 1 != P2TR_DATA_CHARS + 6)
        return KM_ERR_INVALID;
    for (size_t i = 0; i < hl; i++) {
        if (b32_lower((unsigned char)addr[i]) != (unsigned char)hrp[i])
            return KM_ERR_INVALID;
    }
    nd = len - sep - 1;
    chk = b32_hrp_state(addr, hl);
    for (size_t i = 0; i < nd; i++) {
        const char *p = memchr(b32_charset, b32_lower((unsigned char)addr[sep + 1 + i]), 32);
        if (p == NULL)
            return KM_ERR_INVALID;
        data[i] = (uint8_t)(p - b32_charset);
        chk = b32_polymod_step(chk) ^ data[i];
    }
    if (chk != BECH32M_CONST)
        return KM_ERR_INVALID;
    if (data[0] != 1) /* witness version 1: Taproot */
        return KM_ERR_INVALID;
    for (size_t i = 1; i < nd - 6; i++) {
        acc = (acc << 5) | data[i];
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            if (kn >= TAPROOT_XONLY_LEN)
                return KM_ERR_INVALID;
            key[kn++] = (uint8_t)(acc >> bits);
        }
        acc &= (1u << bits) - 1u;
    }
    /* BIP-173: at most 4 padding bits, all zero. */
    if (kn != TAPROOT_XONLY_LEN || bits > 4 || acc != 0) {
        memset(key, 0, TAPROOT_XONLY_LEN);
        return KM_ERR_INVALID;
    }
    return KM_OK;
}
