/*
 * cms.h - opening KMS's CiphertextForRecipient, and the enclave's
 * ephemeral RSA key it is encrypted to.
 *
 * When a KMS request carries a Recipient (an attestation document whose
 * public_key is an RSA SubjectPublicKeyInfo), KMS answers with no
 * Plaintext and a CiphertextForRecipient instead: a BER CMS ContentInfo
 * (RFC 5652) of type EnvelopedData with one KeyTransRecipientInfo
 * (subjectKeyIdentifier, RSAES-OAEP with SHA-256 and MGF1-SHA-256) and
 * AES-256-CBC content (tests/data/kms/README.md, ../README.md).
 *
 * kms_cms_open() checks that shape before anything is decrypted and
 * refuses every other algorithm, then decrypts with OpenSSL's CMS API and
 * the key alone (the enclave has no certificate).
 */
#ifndef KM_KMS_CMS_H
#define KM_KMS_CMS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/err.h"

#define KMS_CMS_MAX_INPUT (64u * 1024u) /* a CiphertextForRecipient, bytes */
#define KMS_RSA_BITS      2048
#define KMS_RSA_SPKI_MAX  1024 /* DER SubjectPublicKeyInfo; 294 for RSA-2048 */

/*
 * Decrypts the CMS EnvelopedData ber[0..ber_len) with the RSA private key
 * rsa (borrowed) and writes the content to out[0..cap), its length to
 * *len. The plaintext is a secret: it is written to out only on success
 * and never kept elsewhere (OpenSSL's copies are in secure memory BIOs).
 *
 * Returns KM_OK, or with a message in *err and out[0..cap) wiped, *len 0:
 *   KM_ERR_TOO_LARGE   input over KMS_CMS_MAX_INPUT, or content over cap
 *   KM_ERR_INVALID     not BER CMS
 *   KM_ERR_TRAILING_DATA  bytes after the ContentInfo
 *   KM_ERR_UNSUPPORTED not EnvelopedData, not exactly one
 *                      KeyTransRecipientInfo, key encryption not
 *                      RSAES-OAEP SHA-256/MGF1-SHA-256 (default label),
 *                      content not id-data under AES-256-CBC
 *   KM_ERR_CRYPTO      the key does not open it (wrong key, tampered
 *                      encryptedKey or ciphertext)
 * Never crashes on any input (fuzz/kms_cms_fuzz.c).
 */
int kms_cms_open(uint8_t out[], size_t cap, size_t *len, const uint8_t *ber, size_t ber_len,
                 EVP_PKEY *rsa, struct km_error *err) KM_WUR;

/* A fresh RSA-2048 key pair (public exponent 65537) in *out (free with
 * EVP_PKEY_free). KM_OK or KM_ERR_CRYPTO; *out NULL on failure. */
int kms_rsa_keypair_new(EVP_PKEY **out) KM_WUR;

/*
 * The DER SubjectPublicKeyInfo of key's public half into out[0..cap), its
 * length in *len: what goes into the attestation document's public_key.
 * KM_OK, KM_ERR_TOO_LARGE (cap too small; KMS_RSA_SPKI_MAX always fits an
 * RSA-2048..4096 key), KM_ERR_INVALID (not an RSA key) or KM_ERR_CRYPTO.
 */
int kms_rsa_spki_der(uint8_t out[], size_t cap, size_t *len, const EVP_PKEY *key) KM_WUR;

#endif /* KM_KMS_CMS_H */
