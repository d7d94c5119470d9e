/*
 * ctx.h - the process-wide libsecp256k1 context and OpenSSL algorithms.
 *
 * One secp256k1 context is created and randomized (side-channel blinding of
 * base-point multiplications) the first time crypto_ctx() is called, under
 * pthread_once; it is read-only afterwards, so every thread may use it
 * concurrently. The OpenSSL algorithms the module needs (SHA-256, HKDF,
 * AES-256-GCM) are fetched once at the same time, which saves the implicit
 * fetch OpenSSL 3 would otherwise do on every operation.
 *
 * Nothing here fails: if the OS cannot provide the 32 bytes that seed the
 * blinding, the context stays unblinded (still constant time; blinding is
 * defence in depth) and crypto_ctx_blinded() reports it. If OpenSSL cannot
 * provide an algorithm, the functions that need it return KM_ERR_CRYPTO.
 */
#ifndef KM_CRYPTO_CTX_H
#define KM_CRYPTO_CTX_H

#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <secp256k1.h>

#include "common/err.h"

/* Returns the shared context (never NULL). Borrowed for the process
 * lifetime; never destroy it. */
const secp256k1_context *crypto_ctx(void);

/* 1 if the shared context was randomized at creation, 0 if the OS refused
 * the seed. For diagnostics (the enclave logs it at start-up). */
int crypto_ctx_blinded(void);

/* Fetched OpenSSL algorithms, or NULL if the provider lacks one. Borrowed
 * for the process lifetime. */
const EVP_MD *crypto_sha256(void);
EVP_KDF *crypto_hkdf(void);
const EVP_CIPHER *crypto_aes256gcm(void);

/* out = SHA-256(p[0..n)). KM_OK or KM_ERR_CRYPTO (no provider). */
int crypto_sha256_digest(uint8_t out[32], const void *p, size_t n) KM_WUR;

#endif /* KM_CRYPTO_CTX_H */
