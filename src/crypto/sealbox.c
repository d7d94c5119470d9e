/*
 * sealbox.c - AES-256-GCM sealing of one 32-byte secret (sealbox.h).
 */
#include "crypto/sealbox.h"

#include <string.h>

#include "common/secure.h"
#include "crypto/aead.h"
#include "common/banned.h"

int sealbox_seal(uint8_t box[SEALBOX_LEN], const uint8_t kek[SEALBOX_KEK_LEN], const uint8_t *ad,
                 size_t adlen, const uint8_t secret[SEALBOX_SECRET_LEN])
{
    uint8_t *nonce = box, *ct = box + SEALBOX_NONCE_LEN,
            *tag = box + SEALBOX_NONCE_LEN + SEALBOX_SECRET_LEN;
    if (secure_random(nonce, SEALBOX_NONCE_LEN) != KM_OK)
        return KM_ERR_IO;
    int r = aead_encrypt_ad(ct, tag, kek, nonce, SEALBOX_NONCE_LEN, ad, adlen, secret,
                            SEALBOX_SECRET_LEN);
    if (r != KM_OK)
        secure_wipe(box, SEALBOX_LEN);
    return r;
}

int sealbox_open(uint8_t secret[SEALBOX_SECRET_LEN], const uint8_t kek[SEALBOX_KEK_LEN],
                 const uint8_t *ad, size_t adlen, const uint8_t box[SEALBOX_LEN])
{
    const uint8_t *nonce = box, *ct = box + SEALBOX_NONCE_LEN,
                  *tag = box + SEALBOX_NONCE_LEN + SEALBOX_SECRET_LEN;
    return aead_decrypt_ad(secret, kek, nonce, SEALBOX_NONCE_LEN, ad, adlen, ct, SEALBOX_SECRET_LEN,
                           tag);
}
