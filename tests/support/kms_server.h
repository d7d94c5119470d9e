/*
 * kms_server.h - a small AWS KMS stand-in for tests (libmicrohttpd on
 * 127.0.0.1; the enclave never links it): the two operations an enclave
 * uses, with a Recipient, behind a real SigV4 check.
 *
 *   every request  POST / with Content-Type application/x-amz-json-1.1;
 *                  the SigV4 signature is recomputed from what arrived
 *                  (kms/sigv4.h) with the configured credentials. Host,
 *                  X-Amz-Date, X-Amz-Target and Content-Type (and
 *                  X-Amz-Security-Token when a token is configured) must be
 *                  signed; X-Amz-Date within max_skew_secs of now.
 *   GenerateDataKey  {"KeyId", "KeySpec":"AES_256", "Recipient"} ->
 *                  {"KeyId", "CiphertextBlob", "CiphertextForRecipient"}
 *   Decrypt        {"CiphertextBlob", "KeyId"?, "Recipient"} ->
 *                  {"KeyId", "CiphertextForRecipient", "EncryptionAlgorithm"}
 *   Recipient      {"AttestationDocument": base64 COSE_Sign1,
 *                   "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256"}: the
 *                  document is parsed (attest/doc.h) or, with a root,
 *                  verified (attest/verify.h: signature, chain, validity,
 *                  freshness); with pcr0 set its PCR0 must match, like KMS's
 *                  kms:RecipientAttestation:ImageSha384 key policy condition.
 *                  Its public_key (RSA SubjectPublicKeyInfo) receives the
 *                  data key as CMS EnvelopedData (KeyTransRecipientInfo by
 *                  32-byte subjectKeyIdentifier, RSAES-OAEP SHA-256,
 *                  AES-256-CBC, indefinite-length BER like KMS).
 *   CiphertextBlob the server's own AES-256-GCM encryption of the data key
 *                  under a random master key, bound to the key id.
 *
 * Errors are HTTP 400 {"__type": "...", "message": "..."} with KMS's names:
 * MissingAuthenticationTokenException, IncompleteSignatureException,
 * UnrecognizedClientException (unknown access key or session token),
 * InvalidSignatureException (wrong signature, scope or date),
 * UnknownOperationException (X-Amz-Target), SerializationException (not
 * JSON), ValidationException (bad field or attestation document),
 * AccessDeniedException (PCR0 policy), NotFoundException (unknown key),
 * IncorrectKeyException, InvalidCiphertextException.
 */
#ifndef KM_TESTS_KMS_SERVER_H
#define KM_TESTS_KMS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct kms_server_config {
    uint16_t port;      /* 0 = ephemeral */
    const char *region; /* NULL = "us-east-1" */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL: none expected */
    const char *key_id;        /* the only key that exists; NULL: any KeyId */
    const uint8_t *root_der;   /* verify documents against this root; NULL: parse only */
    size_t root_der_len;
    const uint8_t *pcr0;       /* 48 bytes PCR0 must equal; NULL: no condition */
    uint32_t max_skew_secs;    /* X-Amz-Date window; 0 = 300 */
    uint32_t max_doc_age_secs; /* document freshness with a root; 0 = 300 */
    bool leak_plaintext;       /* test hook: also answer "Plaintext" (a broken KMS) */
    bool tamper_generate;      /* test hook: GenerateDataKey's CiphertextForRecipient holds the
                                  data key with one bit flipped (a host that altered the
                                  reply); CiphertextBlob and Decrypt stay right */
};

struct kms_server;

/* Copies cfg (nothing borrowed afterwards), starts serving on 127.0.0.1 in
 * libmicrohttpd's threads. KM_ERR_IO with a message when it cannot listen,
 * KM_ERR_CONFIG for missing credentials. */
int kms_server_start(struct kms_server **out, const struct kms_server_config *cfg,
                     struct km_error *err) KM_WUR;

/* The port it listens on. */
uint16_t kms_server_port(const struct kms_server *s);

/* Requests answered so far, and how many succeeded. */
unsigned kms_server_requests(struct kms_server *s, unsigned *succeeded);

/* Stops and frees (wiping its keys). NULL is a no-op. */
void kms_server_stop(struct kms_server *s);

#endif /* KM_TESTS_KMS_SERVER_H */
