/*
 * client.h - the AWS KMS calls an enclave makes for its sealed identity
 * key: GenerateDataKey (first boot) and Decrypt (later boots), both with a
 * Recipient so the data key comes back only encrypted to the enclave's
 * attested RSA key (CiphertextForRecipient, opened by cms.h).
 *
 * Wire format (AWS JSON 1.1): POST / with
 *   Content-Type: application/x-amz-json-1.1
 *   X-Amz-Target: TrentService.GenerateDataKey | TrentService.Decrypt
 *   X-Amz-Date, X-Amz-Security-Token (temporary credentials), Host
 * all signed with SigV4 (sigv4.h, service "kms"), and a body such as
 *   {"KeyId":"...","KeySpec":"AES_256","Recipient":{"AttestationDocument":
 *    "<base64 COSE_Sign1>","KeyEncryptionAlgorithm":"RSAES_OAEP_SHA_256"}}
 * Errors come back as HTTP 4xx/5xx with {"__type":"...Exception",
 * "message":"..."}.
 *
 * Transport: libcurl over HTTP/1.1 (https in production). Inside a Nitro
 * Enclave there is no network: the connect seam hands libcurl a socket the
 * caller connected itself (the host's VSock proxy to KMS); libcurl then
 * speaks TLS to the endpoint's host name over it, without resolving or
 * connecting anything.
 *
 * Credentials live in fixed-size buffers inside the client, wiped by
 * kms_client_free, and are never logged or put in error messages.
 * A client is thread-safe: each call uses its own libcurl handle and
 * connection.
 */
#ifndef KM_KMS_CLIENT_H
#define KM_KMS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "common/err.h"

#define KMS_DATA_KEY_LEN        32 /* AES_256 */
#define KMS_RESPONSE_MAX        (64u * 1024u)
#define KMS_CIPHERTEXT_BLOB_MAX 6144 /* KMS's own limit */
#define KMS_KEY_ID_MAX          2048
#define KMS_ENDPOINT_MAX        512
#define KMS_DEFAULT_TIMEOUT_MS  10000
#define KMS_KEY_ENCRYPTION_ALG  "RSAES_OAEP_SHA_256"
#define KMS_CONTENT_TYPE        "application/x-amz-json-1.1"

/*
 * The connect seam: returns a connected stream socket for one request
 * (libcurl owns it from then on and closes it), or -1 with a message in
 * *err. Called from the thread making the request.
 */
typedef int (*kms_connect_fn)(void *ctx, struct km_error *err);

struct kms_client_config {
    const char *endpoint; /* "https://kms.us-east-1.amazonaws.com", no path */
    const char *region;   /* "us-east-1" */
    const char *access_key_id;
    const char *secret_access_key;
    const char *session_token; /* NULL: long-term credentials */
    const char *ca_file;       /* PEM bundle for TLS; NULL: libcurl's default */
    uint32_t timeout_ms;       /* per request; 0 = KMS_DEFAULT_TIMEOUT_MS */
    bool allow_http;           /* accept an http:// endpoint (tests, local stand-ins) */
    kms_connect_fn connect;    /* NULL: libcurl resolves and connects itself */
    void *connect_ctx;
};

struct kms_client;

/*
 * Creates a client from cfg (copied; nothing borrowed afterwards).
 * KM_ERR_CONFIG with a message naming the field for a bad endpoint (not
 * http(s), a path or query, http without allow_http, longer than
 * KMS_ENDPOINT_MAX), region or credentials (empty, too long, bad
 * characters). *out is NULL on failure.
 */
int kms_client_new(struct kms_client **out, const struct kms_client_config *cfg,
                   struct km_error *err) KM_WUR;

/* Wipes the credentials and frees. NULL is a no-op. */
void kms_client_free(struct kms_client *c);

/* Replaces the credentials (temporary ones expire). Same checks and codes
 * as kms_client_new; the old ones are kept on failure. */
int kms_client_set_credentials(struct kms_client *c, const char *access_key_id,
                               const char *secret_access_key, const char *session_token,
                               struct km_error *err) KM_WUR;

/*
 * GenerateDataKey(KeyId = key_id, KeySpec AES_256) for the recipient
 * attestation_doc[0..doc_len) (raw COSE_Sign1 whose public_key is the SPKI
 * of rsa_key; borrowed). On KM_OK:
 *   plaintext   the 32-byte data key, opened from CiphertextForRecipient
 *               with rsa_key (a secret: the caller wipes it)
 *   *blob       CiphertextBlob (malloc'ed, free()), what to store for
 *               kms_decrypt on later boots; *blob_len its length
 * On failure plaintext is wiped, *blob NULL and *blob_len 0, and *err says:
 *   KM_ERR_INVALID      bad key_id or document size, or a malformed reply
 *                       (missing field, bad base64, a Plaintext field, a
 *                       data key that is not 32 bytes)
 *   KM_ERR_CONNECT, KM_ERR_RESOLVE, KM_ERR_TIMEOUT
 *                       the endpoint (named) could not be reached
 *   KM_ERR_TOO_LARGE    reply over KMS_RESPONSE_MAX
 *   KM_ERR_REMOTE       KMS answered an error: "<Type>: <message>"
 *   cms.h's codes       CiphertextForRecipient does not open
 */
int kms_generate_data_key(struct kms_client *c, uint8_t plaintext[KMS_DATA_KEY_LEN], uint8_t **blob,
                          size_t *blob_len, const char *key_id, const uint8_t *attestation_doc,
                          size_t doc_len, EVP_PKEY *rsa_key, struct km_error *err) KM_WUR;

/*
 * Decrypt(CiphertextBlob = blob[0..blob_len), KeyId = key_id or none when
 * NULL) for the recipient attestation_doc (as above). On KM_OK plaintext
 * holds the 32-byte data key (the caller wipes it); on failure it is wiped
 * and the codes are those of kms_generate_data_key.
 */
int kms_decrypt(struct kms_client *c, uint8_t plaintext[KMS_DATA_KEY_LEN], const uint8_t *blob,
                size_t blob_len, const char *key_id, const uint8_t *attestation_doc, size_t doc_len,
                EVP_PKEY *rsa_key, struct km_error *err) KM_WUR;

#endif /* KM_KMS_CLIENT_H */
