/*
 * musig.c - BIP-327 MuSig2 on libsecp256k1 0.2's public API.
 *
 * Section names in comments refer to spec/bip-0327.mediawiki. Points and
 * scalars that are public go through point.h / scalar.h (variable time);
 * the secret nonce and secret key only ever meet libsecp256k1's constant-time
 * secret-key functions (see sign_internal).
 */
#include "crypto/musig.h"

#include <stdlib.h>
#include <secp256k1_extrakeys.h>
#include <secp256k1_schnorrsig.h>
#include <string.h>

#include "common/secure.h"
#include "crypto/ct.h"
#include "crypto/ctx.h"
#include "crypto/musig_impl.h"
#include "crypto/point.h"
#include "crypto/scalar.h"
#include "crypto/thash.h"
#include "common/banned.h"

/* Points are summed through secp256k1_ec_pubkey_combine in chunks of this
 * many, so aggregation needs no heap. */
#define MUSIG_COMBINE_CHUNK 32

static const uint8_t musig_gen_compressed[33] = {
    0x02, 0x79, 0xBE, 0x66, 0x7E, 0xF9, 0xDC, 0xBB, 0xAC, 0x55, 0xA0,
    0x62, 0x95, 0xCE, 0x87, 0x0B, 0x07, 0x02, 0x9B, 0xFC, 0xDB, 0x2D,
    0xCE, 0x28, 0xD9, 0x59, 0xF2, 0x81, 0x5B, 0x16, 0xF8, 0x17, 0x98,
};

static int blame_set(struct musig_blame *blame, enum musig_reason reason, long signer, int code)
{
    if (blame != NULL) {
        blame->reason = reason;
        blame->signer = signer;
    }
    return code;
}

static void blame_clear(struct musig_blame *blame)
{
    (void)blame_set(blame, MUSIG_R_NONE, -1, KM_OK);
}

const char *musig_reason_str(enum musig_reason reason)
{
    switch (reason) {
    case MUSIG_R_NONE:
        return "no error";
    case MUSIG_R_PUBKEY:
        return "invalid individual public key";
    case MUSIG_R_PUBNONCE:
        return "invalid public nonce";
    case MUSIG_R_AGGNONCE:
        return "invalid aggregate nonce";
    case MUSIG_R_AGGOTHERNONCE:
        return "invalid aggregate of the other signers' nonces";
    case MUSIG_R_PSIG:
        return "partial signature out of range";
    case MUSIG_R_PSIG_INVALID:
        return "partial signature does not verify";
    case MUSIG_R_ADAPTOR:
        return "invalid adaptor point";
    case MUSIG_R_KEYAGG_INFINITY:
        return "public keys aggregate to infinity";
    case MUSIG_R_TWEAK_RANGE:
        return "the tweak must be less than n";
    case MUSIG_R_TWEAK_INFINITY:
        return "the result of tweaking cannot be infinity";
    case MUSIG_R_SIGNER_NOT_FOUND:
        return "the signer's pubkey must be included in the list of pubkeys";
    case MUSIG_R_SECNONCE_USED:
        return "secret nonce already used";
    case MUSIG_R_SECNONCE_RANGE:
        return "secret nonce value out of range";
    case MUSIG_R_SECNONCE_KEY:
        return "secret nonce belongs to another public key";
    case MUSIG_R_SESSION_KEYAGG:
        return "session was built for another key aggregation context";
    case MUSIG_R_COUNT:
        return "wrong number of items";
    case MUSIG_R_LENGTH:
        return "wrong encoding length";
    }
    return "unknown reason";
}

/* Sums pts[0..n) (variable time, public points). */
static void sum_points_var(struct point *out, const secp256k1_pubkey *const *pts, size_t n)
{
    struct point acc, part;

    point_set_infinity(&acc);
    for (size_t off = 0; off < n; off += MUSIG_COMBINE_CHUNK) {
        size_t m = n - off < MUSIG_COMBINE_CHUNK ? n - off : MUSIG_COMBINE_CHUNK;
        part.inf = !secp256k1_ec_pubkey_combine(crypto_ctx(), &part.p, pts + off, m);
        point_add_var(&acc, &acc, &part);
    }
    *out = acc;
}

/* ---- KeySort / KeyAgg (§Key Sorting, §Key Aggregation) ---------------- */

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, MUSIG_PUBKEY_LEN);
}

void musig_key_sort(uint8_t (*pubkeys)[MUSIG_PUBKEY_LEN], size_t n)
{
    if (n > 1)
        qsort(pubkeys, n, MUSIG_PUBKEY_LEN, key_cmp);
}

static void keyagg_update_q(struct musig_keyagg *ka)
{
    uint8_t c[33];

    point_serialize_ext(c, &ka->q);
    memcpy(ka->q_x, c + 1, 32);
    ka->q_even = c[0] == 2;
}

int musig_keyagg_new(struct musig_keyagg **out, struct musig_blame *blame,
                     const uint8_t (*pubkeys)[MUSIG_PUBKEY_LEN], size_t n)
{
    static const uint8_t zero_pk[MUSIG_PUBKEY_LEN];
    struct musig_keyagg *ka = NULL;
    struct thash h;
    int r = KM_ERR_INTERNAL;

    *out = NULL;
    blame_clear(blame);
    if (n == 0 || n > MUSIG_MAX_SIGNERS)
        return blame_set(blame, MUSIG_R_COUNT, -1, KM_ERR_INVALID);
    ka = calloc(1, sizeof(*ka) + n * sizeof(ka->keys[0]));
    if (ka == NULL)
        return KM_ERR_NOMEM;
    ka->magic = MUSIG_KEYAGG_MAGIC;
    ka->n = n;

    /* GetSecondKey: the first key different from the first one. */
    memcpy(ka->second_pk, zero_pk, sizeof(zero_pk));
    for (size_t j = 1; j < n; j++) {
        if (memcmp(pubkeys[j], pubkeys[0], MUSIG_PUBKEY_LEN) != 0) {
            memcpy(ka->second_pk, pubkeys[j], MUSIG_PUBKEY_LEN);
            break;
        }
    }
    /* HashKeys. */
    thash_init(&h, "KeyAgg list");
    thash_update(&h, pubkeys, n * MUSIG_PUBKEY_LEN);
    if ((r = thash_final(&h, ka->list_hash)) != KM_OK)
        goto out;

    for (size_t i = 0; i < n; i++) {
        struct musig_key *k = &ka->keys[i];
        struct point p;

        memcpy(k->pk, pubkeys[i], MUSIG_PUBKEY_LEN);
        if (point_parse(&p, k->pk) != KM_OK) {
            r = blame_set(blame, MUSIG_R_PUBKEY, (long)i, KM_ERR_INVALID);
            goto out;
        }
        k->p = p.p;
        /* KeyAggCoeffInternal. */
        if (memcmp(k->pk, ka->second_pk, MUSIG_PUBKEY_LEN) == 0) {
            scalar_set_one(k->coeff);
        } else {
            uint8_t buf[32 + MUSIG_PUBKEY_LEN];
            memcpy(buf, ka->list_hash, 32);
            memcpy(buf + 32, k->pk, MUSIG_PUBKEY_LEN);
            thash_oneshot(k->coeff, "KeyAgg coefficient", buf, sizeof(buf));
            scalar_reduce(k->coeff, k->coeff);
        }
    }

    /* Q = a_1*P_1 + ... + a_u*P_u, summed in chunks. */
    uint8_t one[32];
    scalar_set_one(one);
    point_set_infinity(&ka->q);
    for (size_t off = 0; off < n; off += MUSIG_COMBINE_CHUNK) {
        secp256k1_pubkey terms[MUSIG_COMBINE_CHUNK];
        const secp256k1_pubkey *ptrs[MUSIG_COMBINE_CHUNK];
        size_t m = 0;
        struct point part;

        for (size_t i = off; i < n && i < off + MUSIG_COMBINE_CHUNK; i++) {
            struct point t = {.p = ka->keys[i].p, .inf = 0};
            if (memcmp(ka->keys[i].coeff, one, 32) != 0)
                point_mul_var(&t, &t, ka->keys[i].coeff);
            if (t.inf)
                continue; /* coefficient 0: probability 2^-256 */
            terms[m] = t.p;
            ptrs[m] = &terms[m];
            m++;
        }
        if (m == 0)
            continue;
        part.inf = !secp256k1_ec_pubkey_combine(crypto_ctx(), &part.p, ptrs, m);
        point_add_var(&ka->q, &ka->q, &part);
    }
    if (ka->q.inf) {
        r = blame_set(blame, MUSIG_R_KEYAGG_INFINITY, -1, KM_ERR_INVALID);
        goto out;
    }
    ka->gacc_neg = 0;
    memset(ka->tacc, 0, sizeof(ka->tacc));
    keyagg_update_q(ka);
    *out = ka;
    ka = NULL;
    r = KM_OK;
out:
    musig_keyagg_free(ka);
    return r;
}

static void keyagg_check(const struct musig_keyagg *ka)
{
    if (ka == NULL || ka->magic != MUSIG_KEYAGG_MAGIC)
        KM_BUG("not a musig_keyagg");
}

int musig_keyagg_dup(struct musig_keyagg **out, const struct musig_keyagg *src)
{
    size_t size;

    keyagg_check(src);
    size = sizeof(*src) + src->n * sizeof(src->keys[0]);
    *out = malloc(size);
    if (*out == NULL)
        return KM_ERR_NOMEM;
    memcpy(*out, src, size);
    return KM_OK;
}

void musig_keyagg_free(struct musig_keyagg *ka)
{
    if (ka == NULL)
        return;
    secure_free(ka, sizeof(*ka) + ka->n * sizeof(ka->keys[0]));
}

int musig_keyagg_apply_tweak(struct musig_keyagg *ka, struct musig_blame *blame,
                             const uint8_t tweak[MUSIG_TWEAK_LEN], int is_xonly)
{
    struct point q;
    uint8_t tacc[32];
    int neg;

    keyagg_check(ka);
    blame_clear(blame);
    if (!scalar_is_canonical_var(tweak))
        return blame_set(blame, MUSIG_R_TWEAK_RANGE, -1, KM_ERR_RANGE);
    neg = is_xonly && !ka->q_even;
    if (neg)
        point_negate(&q, &ka->q);
    else
        q = ka->q;
    /* Q' = g*Q + t*G; pubkey_tweak_add fails exactly when Q' is infinity. */
    if (!scalar_is_zero_var(tweak) && !secp256k1_ec_pubkey_tweak_add(crypto_ctx(), &q.p, tweak))
        return blame_set(blame, MUSIG_R_TWEAK_INFINITY, -1, KM_ERR_INVALID);
    /* tacc' = t + g*tacc */
    if (neg)
        scalar_negate_var(tacc, ka->tacc);
    else
        memcpy(tacc, ka->tacc, 32);
    scalar_add_var(ka->tacc, tweak, tacc);
    ka->gacc_neg ^= neg;
    ka->q = q;
    keyagg_update_q(ka);
    return KM_OK;
}

void musig_keyagg_xonly(const struct musig_keyagg *ka, uint8_t out[MUSIG_XONLY_LEN])
{
    keyagg_check(ka);
    memcpy(out, ka->q_x, MUSIG_XONLY_LEN);
}

void musig_keyagg_plain(const struct musig_keyagg *ka, uint8_t out[MUSIG_PUBKEY_LEN])
{
    keyagg_check(ka);
    point_serialize_ext(out, &ka->q);
}

size_t musig_keyagg_count(const struct musig_keyagg *ka)
{
    keyagg_check(ka);
    return ka->n;
}

void musig_keyagg_pubkey(const struct musig_keyagg *ka, size_t i, uint8_t out[MUSIG_PUBKEY_LEN])
{
    keyagg_check(ka);
    KM_ASSERT(i < ka->n);
    memcpy(out, ka->keys[i].pk, MUSIG_PUBKEY_LEN);
}

int musig_keyagg_find(const struct musig_keyagg *ka, const uint8_t pk[MUSIG_PUBKEY_LEN],
                      size_t *index)
{
    keyagg_check(ka);
    for (size_t i = 0; i < ka->n; i++) {
        if (memcmp(ka->keys[i].pk, pk, MUSIG_PUBKEY_LEN) == 0) {
            *index = i;
            return KM_OK;
        }
    }
    return KM_ERR_NOT_FOUND;
}

/* ---- Nonce generation (§Nonce Generation) ----------------------------- */

struct musig_secnonce *musig_secnonce_alloc(void)
{
    struct musig_secnonce *sn = calloc(1, sizeof(*sn));
    if (sn != NULL)
        sn->magic = MUSIG_SECNONCE_MAGIC;
    return sn;
}

void musig_secnonce_free(struct musig_secnonce *secnonce)
{
    if (secnonce == NULL)
        return;
    if (secnonce->magic != MUSIG_SECNONCE_MAGIC)
        KM_BUG("not a musig_secnonce");
    secure_free(secnonce, sizeof(*secnonce));
}

int musig_secnonce_is_used(const struct musig_secnonce *secnonce)
{
    if (secnonce == NULL || secnonce->magic != MUSIG_SECNONCE_MAGIC)
        KM_BUG("not a musig_secnonce");
    return secnonce->used;
}

/* k = int(hash) mod n and R = k*G for a secret k; R is declassified (the
 * public nonce). Returns 1, or 0 if k == 0. Constant time in k. */
static int nonce_point(secp256k1_pubkey *r, const uint8_t k[32])
{
    int ok = secp256k1_ec_pubkey_create(crypto_ctx(), r, k);
    /* Public by design: whether k was usable (it is then discarded) and the
     * public nonce point itself. */
    ct_declassify(&ok, sizeof(ok));
    ct_declassify(r, sizeof(*r));
    return ok;
}

int musig_nonce_gen_internal(struct musig_secnonce **secnonce, uint8_t pubnonce[MUSIG_PUBNONCE_LEN],
                             const uint8_t rand_[32], const uint8_t *sk,
                             const uint8_t pk[MUSIG_PUBKEY_LEN], const uint8_t *aggpk,
                             const uint8_t *msg, size_t msglen, const uint8_t *extra_in,
                             size_t extra_len)
{
    struct musig_secnonce *sn = NULL;
    uint8_t rnd[32];
    secp256k1_pubkey rp[2];
    int r = KM_ERR_CRYPTO;

    *secnonce = NULL;
    memset(pubnonce, 0, MUSIG_PUBNONCE_LEN);
    KM_ASSERT(extra_in != NULL || extra_len == 0);
    KM_ASSERT(msg != NULL || msglen == 0);
    if ((uint64_t)extra_len > UINT32_MAX)
        return KM_ERR_TOO_LARGE;
    if ((sn = musig_secnonce_alloc()) == NULL)
        return KM_ERR_NOMEM;

    /* rand = sk XOR hash_MuSig/aux(rand') when sk is present. */
    if (sk != NULL) {
        thash_oneshot(rnd, "MuSig/aux", rand_, 32);
        for (size_t i = 0; i < 32; i++)
            rnd[i] ^= sk[i];
    } else {
        memcpy(rnd, rand_, 32);
    }
    for (uint8_t i = 0; i < 2; i++) {
        struct thash h;
        thash_init(&h, "MuSig/nonce");
        thash_update(&h, rnd, 32);
        thash_update_u8(&h, MUSIG_PUBKEY_LEN);
        thash_update(&h, pk, MUSIG_PUBKEY_LEN);
        thash_update_u8(&h, aggpk != NULL ? 32 : 0);
        if (aggpk != NULL)
            thash_update(&h, aggpk, 32);
        if (msg == NULL) {
            thash_update_u8(&h, 0);
        } else {
            thash_update_u8(&h, 1);
            thash_update_be64(&h, (uint64_t)msglen);
            thash_update(&h, msg, msglen);
        }
        thash_update_be32(&h, (uint32_t)extra_len);
        thash_update(&h, extra_in, extra_len);
        thash_update_u8(&h, i);
        if ((r = thash_final(&h, sn->k[i])) != KM_OK)
            goto out;
        scalar_reduce(sn->k[i], sn->k[i]);
    }
    /* "Fail if k1 = 0 or k2 = 0" (pubkey_create refuses zero). */
    if (!nonce_point(&rp[0], sn->k[0]) || !nonce_point(&rp[1], sn->k[1])) {
        r = KM_ERR_CRYPTO;
        goto out;
    }
    memcpy(sn->pk, pk, MUSIG_PUBKEY_LEN);
    for (int j = 0; j < 2; j++) {
        struct point p = {.p = rp[j], .inf = 0};
        point_serialize_ext(pubnonce + 33 * j, &p);
    }
    *secnonce = sn;
    sn = NULL;
    r = KM_OK;
out:
    secure_wipe(rnd, sizeof(rnd));
    musig_secnonce_free(sn);
    if (r != KM_OK)
        memset(pubnonce, 0, MUSIG_PUBNONCE_LEN);
    return r;
}

int musig_nonce_gen(struct musig_secnonce **secnonce, uint8_t pubnonce[MUSIG_PUBNONCE_LEN],
                    const struct keypair *kp, const uint8_t *aggpk, const uint8_t *msg,
                    size_t msglen, const uint8_t *extra_in, size_t extra_len)
{
    uint8_t rand_[32];
    int r;

    *secnonce = NULL;
    memset(pubnonce, 0, MUSIG_PUBNONCE_LEN);
    if ((r = secure_random(rand_, sizeof(rand_))) != KM_OK)
        return r;
    r = musig_nonce_gen_internal(secnonce, pubnonce, rand_, kp->seckey, kp->pubkey, aggpk, msg,
                                 msglen, extra_in, extra_len);
    secure_wipe(rand_, sizeof(rand_));
    return r;
}

/* ---- Nonce encodings and aggregation (§Nonce Aggregation) ------------- */

int musig_pubnonce_parse(struct musig_pubnonce *out, const uint8_t *in, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len != MUSIG_PUBNONCE_LEN)
        return KM_ERR_INVALID;
    for (int j = 0; j < 2; j++) {
        struct point p;
        if (point_parse(&p, in + 33 * j) != KM_OK) {
            memset(out, 0, sizeof(*out));
            return KM_ERR_INVALID;
        }
        out->r[j] = p.p;
    }
    return KM_OK;
}

void musig_pubnonce_serialize(uint8_t out[MUSIG_PUBNONCE_LEN], const struct musig_pubnonce *pn)
{
    for (int j = 0; j < 2; j++) {
        struct point p = {.p = pn->r[j], .inf = 0};
        point_serialize_ext(out + 33 * j, &p);
    }
}

int musig_aggnonce_parse(struct musig_aggnonce *out, const uint8_t *in, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len != MUSIG_AGGNONCE_LEN)
        return KM_ERR_INVALID;
    for (int j = 0; j < 2; j++) {
        struct point p;
        if (point_parse_ext(&p, in + 33 * j) != KM_OK) {
            memset(out, 0, sizeof(*out));
            return KM_ERR_INVALID;
        }
        out->r[j] = p.p;
        out->inf[j] = p.inf;
    }
    memcpy(out->bytes, in, MUSIG_AGGNONCE_LEN);
    return KM_OK;
}

int musig_nonce_agg(struct musig_aggnonce *out, struct musig_blame *blame,
                    const struct musig_pubnonce *nonces, size_t n)
{
    memset(out, 0, sizeof(*out));
    blame_clear(blame);
    if (n == 0 || n > MUSIG_MAX_SIGNERS)
        return blame_set(blame, MUSIG_R_COUNT, -1, KM_ERR_INVALID);
    for (int j = 0; j < 2; j++) {
        struct point acc;
        point_set_infinity(&acc);
        for (size_t off = 0; off < n; off += MUSIG_COMBINE_CHUNK) {
            const secp256k1_pubkey *ptrs[MUSIG_COMBINE_CHUNK];
            size_t m = 0;
            struct point part;
            for (size_t i = off; i < n && m < MUSIG_COMBINE_CHUNK; i++)
                ptrs[m++] = &nonces[i].r[j];
            sum_points_var(&part, ptrs, m);
            point_add_var(&acc, &acc, &part);
        }
        out->r[j] = acc.p;
        out->inf[j] = acc.inf;
        point_serialize_ext(out->bytes + 33 * j, &acc);
    }
    return KM_OK;
}

int musig_nonce_agg_bytes(struct musig_aggnonce *out, struct musig_blame *blame,
                          const uint8_t (*pubnonces)[MUSIG_PUBNONCE_LEN], size_t n)
{
    struct musig_pubnonce *pn;
    int r;

    memset(out, 0, sizeof(*out));
    blame_clear(blame);
    if (n == 0 || n > MUSIG_MAX_SIGNERS)
        return blame_set(blame, MUSIG_R_COUNT, -1, KM_ERR_INVALID);
    if ((pn = calloc(n, sizeof(*pn))) == NULL)
        return KM_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        if (musig_pubnonce_parse(&pn[i], pubnonces[i], MUSIG_PUBNONCE_LEN) != KM_OK) {
            r = blame_set(blame, MUSIG_R_PUBNONCE, (long)i, KM_ERR_INVALID);
            goto out;
        }
    }
    r = musig_nonce_agg(out, blame, pn, n);
out:
    free(pn);
    return r;
}

/* ---- Session values (§Session Context) -------------------------------- */

int musig_session_init(struct musig_session *s, const struct musig_keyagg *ka,
                       const struct musig_aggnonce *aggnonce, const uint8_t *msg, size_t msglen,
                       const uint8_t *adaptor, size_t adaptor_len)
{
    struct point r1, r2, rr, t;
    struct thash h;
    uint8_t g_tacc[32];
    int r;

    keyagg_check(ka);
    KM_ASSERT(msg != NULL || msglen == 0);
    memset(s, 0, sizeof(*s));
    memcpy(s->q_x, ka->q_x, 32);
    s->q_even = ka->q_even;
    s->gacc_neg = ka->gacc_neg;
    memcpy(s->tacc, ka->tacc, 32);

    /* b = int(hash_MuSig/noncecoef(aggnonce || xbytes(Q) || m)) mod n */
    thash_init(&h, "MuSig/noncecoef");
    thash_update(&h, aggnonce->bytes, MUSIG_AGGNONCE_LEN);
    thash_update(&h, ka->q_x, 32);
    thash_update(&h, msg, msglen);
    if ((r = thash_final(&h, s->b)) != KM_OK)
        goto fail;
    scalar_reduce(s->b, s->b);

    /* R' = R1 + b*R2 (+ T for an adaptor session). */
    r1.p = aggnonce->r[0];
    r1.inf = aggnonce->inf[0];
    r2.p = aggnonce->r[1];
    r2.inf = aggnonce->inf[1];
    point_mul_var(&r2, &r2, s->b);
    point_add_var(&rr, &r1, &r2);
    if (adaptor != NULL || adaptor_len != 0) {
        if (adaptor == NULL || adaptor_len != 33 || point_parse(&t, adaptor) != KM_OK) {
            r = KM_ERR_INVALID;
            goto fail;
        }
        point_add_var(&rr, &rr, &t);
        s->has_adaptor = 1;
    }
    /* §Dealing with Infinity in Nonce Aggregation: R = G if R' is infinity. */
    if (rr.inf && point_parse(&rr, musig_gen_compressed) != KM_OK)
        KM_BUG("cannot parse G");
    point_xbytes(s->r_x, &rr);
    s->r_even = point_has_even_y(&rr);

    /* e = int(hash_BIP0340/challenge(xbytes(R) || xbytes(Q) || m)) mod n */
    thash_init(&h, "BIP0340/challenge");
    thash_update(&h, s->r_x, 32);
    thash_update(&h, ka->q_x, 32);
    thash_update(&h, msg, msglen);
    if ((r = thash_final(&h, s->e)) != KM_OK)
        goto fail;
    scalar_reduce(s->e, s->e);

    /* e*g*tacc for PartialSigAgg, g = 1 if has_even_y(Q) else -1 */
    if (ka->q_even)
        memcpy(g_tacc, ka->tacc, 32);
    else
        scalar_negate_var(g_tacc, ka->tacc);
    scalar_mul_var(s->tacc_e, s->e, g_tacc);
    return KM_OK;
fail:
    memset(s, 0, sizeof(*s));
    return r;
}

int musig_session_nonce_parity(const struct musig_session *s)
{
    return !s->r_even;
}

static int session_matches(const struct musig_session *s, const struct musig_keyagg *ka)
{
    return memcmp(s->q_x, ka->q_x, 32) == 0 && s->q_even == ka->q_even &&
           s->gacc_neg == ka->gacc_neg && memcmp(s->tacc, ka->tacc, 32) == 0;
}

/* ---- Signing (§Signing) ------------------------------------------------ */

/*
 * The constant-time core of Sign. k (the two secret nonces) is wiped before
 * returning. All branches are on public values: the session (R's parity,
 * b, e), the key aggregation context (Q's parity, gacc), kp's public key.
 *
 * s = k1 + b*k2 + e*a*d computed with libsecp256k1's seckey functions, which
 * refuse a zero "seckey" operand: every such operand below is provably
 * non-zero (k1, k2, d are valid keys; products of non-zero values mod the
 * prime n are non-zero), and a zero *result* of tweak_add leaves zero in the
 * output, which is then the right answer. Public zero factors (b, e*a) are
 * handled with public branches.
 */
static int sign_internal(uint8_t psig[MUSIG_PSIG_LEN], struct musig_blame *blame, uint8_t k[2][32],
                         const uint8_t sn_pk[MUSIG_PUBKEY_LEN], const struct keypair *kp,
                         const struct musig_keyagg *ka, const struct musig_session *s)
{
    const secp256k1_context *ctx = crypto_ctx();
    uint8_t d[32], bk2[32], sum[32], ead[32], ea[32];
    size_t idx;
    int ok, r = KM_ERR_INTERNAL;

    memset(psig, 0, MUSIG_PSIG_LEN);
    if (!session_matches(s, ka)) {
        r = blame_set(blame, MUSIG_R_SESSION_KEYAGG, -1, KM_ERR_STATE);
        goto out;
    }
    /* "Fail if k_i' = 0 or k_i' >= n". */
    ok = secp256k1_ec_seckey_verify(ctx, k[0]) & secp256k1_ec_seckey_verify(ctx, k[1]);
    /* Public: an out-of-range secret nonce is refused (and never used). */
    ct_declassify(&ok, sizeof(ok));
    if (!ok) {
        r = blame_set(blame, MUSIG_R_SECNONCE_RANGE, -1, KM_ERR_INVALID);
        goto out;
    }
    /* "Fail if pk != secnonce[64:97]" (kp->pubkey is cbytes(d'*G)). */
    if (memcmp(kp->pubkey, sn_pk, MUSIG_PUBKEY_LEN) != 0) {
        r = blame_set(blame, MUSIG_R_SECNONCE_KEY, -1, KM_ERR_INVALID);
        goto out;
    }
    if (musig_keyagg_find(ka, kp->pubkey, &idx) != KM_OK) {
        r = blame_set(blame, MUSIG_R_SIGNER_NOT_FOUND, -1, KM_ERR_INVALID);
        goto out;
    }

    ok = 1;
    /* k_i = n - k_i' unless has_even_y(R). */
    if (!s->r_even) {
        ok &= secp256k1_ec_seckey_negate(ctx, k[0]);
        ok &= secp256k1_ec_seckey_negate(ctx, k[1]);
    }
    /* d = g*gacc*d' mod n. */
    memcpy(d, kp->seckey, 32);
    if ((!s->q_even) ^ s->gacc_neg)
        ok &= secp256k1_ec_seckey_negate(ctx, d);

    /* sum = k1 + b*k2 */
    if (scalar_is_zero_var(s->b)) {
        memcpy(sum, k[0], 32);
    } else {
        memcpy(bk2, k[1], 32);
        ok &= secp256k1_ec_seckey_tweak_mul(ctx, bk2, s->b);
        memcpy(sum, k[0], 32);
        /* 0 only if the sum is 0, and then sum is set to 0: correct. */
        int zero_ok = secp256k1_ec_seckey_tweak_add(ctx, sum, bk2);
        (void)zero_ok;
    }
    /* s = e*a*d + sum */
    scalar_mul_var(ea, s->e, ka->keys[idx].coeff);
    if (!scalar_is_zero_var(ea)) {
        memcpy(ead, d, 32);
        ok &= secp256k1_ec_seckey_tweak_mul(ctx, ead, ea);
        int zero_ok = secp256k1_ec_seckey_tweak_add(ctx, ead, sum);
        (void)zero_ok;
        memcpy(sum, ead, 32);
    }
    /* Public: the guaranteed-valid operations above all succeeded; a failure
     * would mean a fault, and the result is then withheld. */
    ct_declassify(&ok, sizeof(ok));
    if (!ok) {
        r = KM_ERR_CRYPTO;
        goto out;
    }
    memcpy(psig, sum, MUSIG_PSIG_LEN);
    r = KM_OK;
out:
    secure_wipe(k, 2 * 32);
    secure_wipe(d, sizeof(d));
    secure_wipe(bk2, sizeof(bk2));
    secure_wipe(sum, sizeof(sum));
    secure_wipe(ead, sizeof(ead));
    return r;
}

int musig_partial_sign(uint8_t psig[MUSIG_PSIG_LEN], struct musig_blame *blame,
                       struct musig_secnonce *secnonce, const struct keypair *kp,
                       const struct musig_keyagg *ka, const struct musig_session *s)
{
    uint8_t k[2][32];
    uint8_t pk[MUSIG_PUBKEY_LEN];

    memset(psig, 0, MUSIG_PSIG_LEN);
    blame_clear(blame);
    keyagg_check(ka);
    if (secnonce == NULL || secnonce->magic != MUSIG_SECNONCE_MAGIC)
        KM_BUG("not a musig_secnonce");
    if (secnonce->used)
        return blame_set(blame, MUSIG_R_SECNONCE_USED, -1, KM_ERR_STATE);
    /* Consume the nonce before anything can fail. */
    memcpy(k, secnonce->k, sizeof(k));
    memcpy(pk, secnonce->pk, sizeof(pk));
    secure_wipe(secnonce->k, sizeof(secnonce->k));
    secnonce->used = 1;
    return sign_internal(psig, blame, k, pk, kp, ka, s);
}

/* ---- Partial signature verification (§Partial Signature Verification) -- */

int musig_partial_sig_verify(const uint8_t *psig, size_t psiglen,
                             const struct musig_pubnonce *pubnonce, const struct musig_keyagg *ka,
                             size_t signer, const struct musig_session *s)
{
    struct point re, r2, lhs, rhs, cp;
    uint8_t c[32];

    keyagg_check(ka);
    if (psiglen != MUSIG_PSIG_LEN || !scalar_is_canonical_var(psig))
        return KM_ERR_INVALID;
    if (signer >= ka->n)
        return KM_ERR_RANGE;
    if (!session_matches(s, ka))
        return KM_ERR_STATE;

    /* Re* = R*1 + b*R*2, negated unless has_even_y(R). */
    re.p = pubnonce->r[0];
    re.inf = 0;
    r2.p = pubnonce->r[1];
    r2.inf = 0;
    point_mul_var(&r2, &r2, s->b);
    point_add_var(&re, &re, &r2);
    if (!s->r_even)
        point_negate(&re, &re);

    /* c = e*a*g' with g' = g*gacc; check s*G == Re* + c*P. */
    scalar_mul_var(c, s->e, ka->keys[signer].coeff);
    if ((!s->q_even) ^ s->gacc_neg)
        scalar_negate_var(c, c);
    cp.p = ka->keys[signer].p;
    cp.inf = 0;
    point_mul_var(&cp, &cp, c);
    point_add_var(&rhs, &re, &cp);
    point_mul_gen(&lhs, psig);
    return point_equal_var(&lhs, &rhs) ? KM_OK : KM_ERR_CRYPTO;
}

/* ---- Aggregation (§Partial Signature Aggregation) ---------------------- */

int musig_partial_sig_agg(uint8_t sig[MUSIG_SIG_LEN], struct musig_blame *blame,
                          const struct musig_session *s, const uint8_t (*psigs)[MUSIG_PSIG_LEN],
                          size_t n)
{
    uint8_t acc[32];

    memset(sig, 0, MUSIG_SIG_LEN);
    blame_clear(blame);
    if (n == 0 || n > MUSIG_MAX_SIGNERS)
        return blame_set(blame, MUSIG_R_COUNT, -1, KM_ERR_INVALID);
    memcpy(acc, s->tacc_e, 32);
    for (size_t i = 0; i < n; i++) {
        if (!scalar_is_canonical_var(psigs[i]))
            return blame_set(blame, MUSIG_R_PSIG, (long)i, KM_ERR_INVALID);
        scalar_add_var(acc, acc, psigs[i]);
    }
    memcpy(sig, s->r_x, 32);
    memcpy(sig + 32, acc, 32);
    return KM_OK;
}

int musig_partial_sig_agg_verify(uint8_t sig[MUSIG_SIG_LEN], struct musig_blame *blame,
                                 const struct musig_keyagg *ka, const struct musig_session *s,
                                 const struct musig_pubnonce *pubnonces,
                                 const uint8_t (*psigs)[MUSIG_PSIG_LEN], size_t n,
                                 const uint8_t *msg, size_t msglen)
{
    return musig_partial_sig_agg_verify_known(sig, blame, ka, s, pubnonces, psigs, NULL, n, msg,
                                              msglen);
}

int musig_partial_sig_agg_verify_known(uint8_t sig[MUSIG_SIG_LEN], struct musig_blame *blame,
                                       const struct musig_keyagg *ka, const struct musig_session *s,
                                       const struct musig_pubnonce *pubnonces,
                                       const uint8_t (*psigs)[MUSIG_PSIG_LEN], const bool *known,
                                       size_t n, const uint8_t *msg, size_t msglen)
{
    static const uint8_t empty[1];
    secp256k1_xonly_pubkey q;
    bool final_ok = false;
    int r;

    keyagg_check(ka);
    KM_ASSERT(msg != NULL || msglen == 0);
    if ((r = musig_partial_sig_agg(sig, blame, s, psigs, n)) != KM_OK)
        return r;
    if (n != ka->n) {
        memset(sig, 0, MUSIG_SIG_LEN);
        return blame_set(blame, MUSIG_R_COUNT, -1, KM_ERR_INVALID);
    }
    if (!session_matches(s, ka)) {
        memset(sig, 0, MUSIG_SIG_LEN);
        return blame_set(blame, MUSIG_R_SESSION_KEYAGG, -1, KM_ERR_STATE);
    }
    /* A valid final signature plus all but one valid partial signatures
     * implies the last one (sum of the verification equations); those known
     * valid (the caller made and verified them) count without a check. */
    if (!s->has_adaptor && secp256k1_xonly_pubkey_parse(crypto_ctx(), &q, ka->q_x) &&
        secp256k1_schnorrsig_verify(crypto_ctx(), sig, msglen ? msg : empty, msglen, &q))
        final_ok = true;
    size_t implied = n; /* none */
    for (size_t i = 0; final_ok && i < n; i++)
        if (known == NULL || !known[i])
            implied = i; /* the last one not known valid */
    for (size_t i = 0; i < n; i++) {
        if (i == implied || (known != NULL && known[i]))
            continue;
        if (musig_partial_sig_verify(psigs[i], MUSIG_PSIG_LEN, &pubnonces[i], ka, i, s) != KM_OK) {
            memset(sig, 0, MUSIG_SIG_LEN);
            return blame_set(blame, MUSIG_R_PSIG_INVALID, (long)i, KM_ERR_CRYPTO);
        }
    }
    if (!final_ok && !s->has_adaptor) {
        /* Every partial signature verified, yet the signature does not. */
        memset(sig, 0, MUSIG_SIG_LEN);
        return blame_set(blame, MUSIG_R_NONE, -1, KM_ERR_CRYPTO);
    }
    return KM_OK;
}

/* ---- DeterministicSign ------------------------------------------------- */

int musig_deterministic_sign(uint8_t pubnonce[MUSIG_PUBNONCE_LEN], uint8_t psig[MUSIG_PSIG_LEN],
                             struct musig_blame *blame, const struct keypair *kp,
                             const uint8_t *aggothernonce, size_t aggothernonce_len,
                             const struct musig_keyagg *ka, const uint8_t *msg, size_t msglen,
                             const uint8_t *rand)
{
    uint8_t skp[32], k[2][32];
    secp256k1_pubkey rp[2];
    struct musig_pubnonce pn[2];
    struct musig_aggnonce aggnonce;
    struct musig_session session;
    int r = KM_ERR_INTERNAL;

    keyagg_check(ka);
    KM_ASSERT(msg != NULL || msglen == 0);
    memset(pubnonce, 0, MUSIG_PUBNONCE_LEN);
    memset(psig, 0, MUSIG_PSIG_LEN);
    memset(k, 0, sizeof(k));
    blame_clear(blame);

    /* sk' = sk XOR hash_MuSig/aux(rand) when rand is present. */
    if (rand != NULL) {
        thash_oneshot(skp, "MuSig/aux", rand, 32);
        for (size_t i = 0; i < 32; i++)
            skp[i] ^= kp->seckey[i];
    } else {
        memcpy(skp, kp->seckey, 32);
    }
    if (aggothernonce_len != MUSIG_AGGNONCE_LEN) {
        r = blame_set(blame, MUSIG_R_AGGOTHERNONCE, -1, KM_ERR_INVALID);
        goto out;
    }
    for (uint8_t i = 0; i < 2; i++) {
        struct thash h;
        thash_init(&h, "MuSig/deterministic/nonce");
        thash_update(&h, skp, 32);
        thash_update(&h, aggothernonce, MUSIG_AGGNONCE_LEN);
        thash_update(&h, ka->q_x, 32);
        thash_update_be64(&h, (uint64_t)msglen);
        thash_update(&h, msg, msglen);
        thash_update_u8(&h, i);
        if ((r = thash_final(&h, k[i])) != KM_OK)
            goto out;
        scalar_reduce(k[i], k[i]);
    }
    if (!nonce_point(&rp[0], k[0]) || !nonce_point(&rp[1], k[1])) {
        r = KM_ERR_CRYPTO;
        goto out;
    }
    pn[0].r[0] = rp[0];
    pn[0].r[1] = rp[1];
    musig_pubnonce_serialize(pubnonce, &pn[0]);

    /* NonceAgg((pubnonce, aggothernonce)); blame the aggregator for the
     * second one (cpoint, not cpoint_ext: infinity is invalid here). */
    if (musig_pubnonce_parse(&pn[1], aggothernonce, MUSIG_AGGNONCE_LEN) != KM_OK) {
        r = blame_set(blame, MUSIG_R_AGGOTHERNONCE, -1, KM_ERR_INVALID);
        goto out;
    }
    if ((r = musig_nonce_agg(&aggnonce, blame, pn, 2)) != KM_OK)
        goto out;
    if ((r = musig_session_init(&session, ka, &aggnonce, msg, msglen, NULL, 0)) != KM_OK)
        goto out;
    r = sign_internal(psig, blame, k, kp->pubkey, kp, ka, &session);
out:
    secure_wipe(skp, sizeof(skp));
    secure_wipe(k, sizeof(k));
    if (r != KM_OK)
        memset(pubnonce, 0, MUSIG_PUBNONCE_LEN);
    return r;
}
