#include "crypto/ecies.h"

#include <string.h>

#include <secp256k1_ecdh.h>

#include "common/secure.h"
#include "crypto/aead.h"
#include "crypto/ct.h"
#include "crypto/ctx.h"
#include "crypto/kdf.h"
#include "common/banned.h"

/* secp256k1_ecdh hash callback: output the raw point, uncompressed. */
static int ecies_copy_point(unsigned char *out, const unsigned char *x32, const unsigned char *y32,
                            void *data)
{
    (void)data;
    out[0] = 0x04;
    memcpy(out + 1, x32, 32);
    memcpy(out + 33, y32, 32);
    return 1;
}

/* key = HKDF-SHA256(IKM = E || S). Constant time in S. */
static int ecies_kdf(uint8_t key[32], const uint8_t eph[ECIES_EPHEMERAL_LEN],
                     const uint8_t shared[65])
{
    uint8_t ikm[ECIES_EPHEMERAL_LEN + 65];
    int r;

    memcpy(ikm, eph, ECIES_EPHEMERAL_LEN);
    memcpy(ikm + ECIES_EPHEMERAL_LEN, shared, 65);
    r = kdf_hkdf_sha256(key, 32, NULL, 0, ikm, sizeof(ikm), NULL, 0);
    secure_wipe(ikm, sizeof(ikm));
    return r;
}

int ecies_encrypt(uint8_t *out, size_t outcap, size_t *outlen, const uint8_t *recipient,
                  size_t recipient_len, const uint8_t *pt, size_t ptlen)
{
    const secp256k1_context *ctx = crypto_ctx();
    secp256k1_pubkey rpk, epk;
    uint8_t esk[32], shared[65], key[32];
    size_t len = ECIES_EPHEMERAL_LEN;
    int r = KM_ERR_INTERNAL;

    *outlen = 0;
    if (ptlen > ECIES_MAX_PLAINTEXT || outcap < ptlen + ECIES_OVERHEAD)
        return KM_ERR_TOO_LARGE;
    if ((recipient_len != 33 && recipient_len != 65) ||
        (recipient_len == 65 && recipient[0] != 0x04) ||
        !secp256k1_ec_pubkey_parse(ctx, &rpk, recipient, recipient_len))
        return KM_ERR_INVALID;

    /* Fresh ephemeral key (retry on the 2^-128 chance of an invalid one). */
    for (;;) {
        if ((r = secure_random(esk, sizeof(esk))) != KM_OK)
            goto out;
        int ok = secp256k1_ec_pubkey_create(ctx, &epk, esk);
        /* Public: whether the random bytes were a valid key (then discarded). */
        ct_declassify(&ok, sizeof(ok));
        if (ok)
            break;
    }
    /* The ephemeral public key is sent in the clear. */
    ct_declassify(&epk, sizeof(epk));
    if (!secp256k1_ec_pubkey_serialize(ctx, out, &len, &epk, SECP256K1_EC_UNCOMPRESSED) ||
        !secp256k1_ecdh(ctx, shared, &rpk, esk, ecies_copy_point, NULL)) {
        r = KM_ERR_CRYPTO;
        goto out;
    }
    if ((r = ecies_kdf(key, out, shared)) != KM_OK)
        goto out;
    if ((r = secure_random(out + ECIES_EPHEMERAL_LEN, ECIES_NONCE_LEN)) != KM_OK)
        goto out;
    r = aead_encrypt(out + ECIES_OVERHEAD, out + ECIES_EPHEMERAL_LEN + ECIES_NONCE_LEN, key,
                     out + ECIES_EPHEMERAL_LEN, ECIES_NONCE_LEN, pt, ptlen);
    if (r != KM_OK)
        goto out;
    *outlen = ptlen + ECIES_OVERHEAD;
out:
    secure_wipe(esk, sizeof(esk));
    secure_wipe(shared, sizeof(shared));
    secure_wipe(key, sizeof(key));
    if (r != KM_OK)
        secure_wipe(out, ptlen + ECIES_OVERHEAD);
    return r;
}

int ecies_decrypt(uint8_t *out, size_t outcap, size_t *outlen, struct km_error *err,
                  const uint8_t seckey[32], const uint8_t *ct, size_t ctlen)
{
    const secp256k1_context *ctx = crypto_ctx();
    secp256k1_pubkey epk;
    uint8_t shared[65], key[32];
    size_t ptlen;
    int r = KM_ERR_INTERNAL;

    *outlen = 0;
    if (ctlen < ECIES_OVERHEAD)
        return km_error_set(err, KM_ERR_INVALID, 0,
                            "ecies ciphertext too short: %zu bytes, need at least %u", ctlen,
                            (unsigned)ECIES_OVERHEAD);
    ptlen = ctlen - ECIES_OVERHEAD;
    if (ptlen > ECIES_MAX_PLAINTEXT)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0, "ecies ciphertext too long");
    if (outcap < ptlen)
        return km_error_set(err, KM_ERR_TOO_LARGE, 0,
                            "ecies plaintext of %zu bytes does not fit %zu", ptlen, outcap);
    /* eciesjs default: uncompressed ephemeral key (0x04; hybrid 06/07 refused). */
    if (ct[0] != 0x04 || !secp256k1_ec_pubkey_parse(ctx, &epk, ct, ECIES_EPHEMERAL_LEN))
        return km_error_set(err, KM_ERR_INVALID, 0, "ecies ephemeral public key is invalid");
    int ok = secp256k1_ecdh(ctx, shared, &epk, seckey, ecies_copy_point, NULL);
    /* Public: an invalid recipient key is refused. */
    ct_declassify(&ok, sizeof(ok));
    if (!ok) {
        r = km_error_set(err, KM_ERR_INVALID, 0, "ecies recipient secret key is invalid");
        goto out;
    }
    if ((r = ecies_kdf(key, ct, shared)) != KM_OK) {
        km_error_set(err, r, 0, "ecies key derivation failed");
        goto out;
    }
    r = aead_decrypt(out, key, ct + ECIES_EPHEMERAL_LEN, ECIES_NONCE_LEN, ct + ECIES_OVERHEAD,
                     ptlen, ct + ECIES_EPHEMERAL_LEN + ECIES_NONCE_LEN);
    if (r != KM_OK) {
        km_error_set(err, r, 0,
                     "ecies decryption failed: ciphertext tampered, truncated or for another key");
        goto out;
    }
    *outlen = ptlen;
out:
    secure_wipe(shared, sizeof(shared));
    secure_wipe(key, sizeof(key));
    return r;
}
