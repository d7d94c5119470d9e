/*
 * aead.h - AES-256-GCM one-shot helpers (internal to src/crypto).
 *
 * The IV length is a parameter because the two formats differ: ECIES
 * (eciesjs default) uses 16 bytes, session encryption 12. Tags are always
 * 16 bytes. ECIES and session encryption use no associated data; the
 * sealed identity key (sealbox.h) binds its header with it (the _ad forms).
 */
#ifndef KM_CRYPTO_AEAD_H
#define KM_CRYPTO_AEAD_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define AEAD_KEY_LEN 32
#define AEAD_TAG_LEN 16
/* Inputs above this are refused (EVP lengths are int). */
#define AEAD_MAX_LEN (1u << 30)

/* ct[0..len) = AES-256-GCM(key, iv, pt[0..len)); tag = its 16-byte tag.
 * ct may alias pt. Returns KM_OK, KM_ERR_TOO_LARGE or KM_ERR_CRYPTO. */
int aead_encrypt(uint8_t *ct, uint8_t tag[AEAD_TAG_LEN], const uint8_t key[AEAD_KEY_LEN],
                 const uint8_t *iv, size_t ivlen, const uint8_t *pt, size_t len) KM_WUR;

/* pt[0..len) = the decryption of ct[0..len) if tag authenticates it.
 * Returns KM_OK, KM_ERR_TOO_LARGE or KM_ERR_CRYPTO (forgery, wrong key: pt
 * is then zeroed, never partially returned). pt may alias ct. */
int aead_decrypt(uint8_t *pt, const uint8_t key[AEAD_KEY_LEN], const uint8_t *iv, size_t ivlen,
                 const uint8_t *ct, size_t len, const uint8_t tag[AEAD_TAG_LEN]) KM_WUR;

/* The same with associated data ad[0..adlen) authenticated, not encrypted. */
int aead_encrypt_ad(uint8_t *ct, uint8_t tag[AEAD_TAG_LEN], const uint8_t key[AEAD_KEY_LEN],
                    const uint8_t *iv, size_t ivlen, const uint8_t *ad, size_t adlen,
                    const uint8_t *pt, size_t len) KM_WUR;
int aead_decrypt_ad(uint8_t *pt, const uint8_t key[AEAD_KEY_LEN], const uint8_t *iv, size_t ivlen,
                    const uint8_t *ad, size_t adlen, const uint8_t *ct, size_t len,
                    const uint8_t tag[AEAD_TAG_LEN]) KM_WUR;

#endif /* KM_CRYPTO_AEAD_H */
