/*
 * keysource.h - where the enclave's identity key comes from
 * (docs/OPERATIONS.md "Durable enclave keys", docs/CRYPTO.md "Sealed
 * identity key").
 *
 * Without a key source (SEALER=none) the key is made at start and lives in
 * memory only: a restart makes a new one. With one, the key is created once
 * and sealed; the sealed blob is ciphertext, kept by the gateway in its
 * database and handed back in `configure` after every restart, so the
 * enclave stays diskless:
 *
 *   file     a 32-byte key-encryption key (KEK) read from a file (a
 *            Kubernetes Secret, a systemd credential)
 *   aws-kms  a KMS data key: GenerateDataKey when the key is created, Decrypt
 *            of the kept CiphertextBlob after a restart, both with an
 *            attestation document as Recipient (keysource_kms.c)
 *
 * Sealed blob (version 1), big-endian:
 *   0  1  version = 1
 *   1  1  sealer: 1 = file, 2 = aws-kms
 *   2  4  enclave id
 *   6  8  key epoch
 *  14  2  n = length of the KMS CiphertextBlob (0 for file)
 *  16  n  KMS CiphertextBlob (the data key, encrypted by KMS)
 * 16+n 60 sealbox (crypto/sealbox.h) of the 32-byte secret key under the
 *         KEK, with bytes 0 .. 16+n as associated data
 * A blob therefore opens only for its enclave id and epoch, and only with
 * the KEK it was sealed under.
 */
#ifndef KM_ENCLAVE_KEYSOURCE_H
#define KM_ENCLAVE_KEYSOURCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "crypto/keypair.h"
#include "crypto/sealbox.h"

#define SEALED_KEY_VERSION 1
#define SEALED_KEY_HEADER  16
#define SEALED_KEY_KMS_MAX 4096
#define SEALED_KEY_MAX     (SEALED_KEY_HEADER + SEALED_KEY_KMS_MAX + SEALBOX_LEN)
#define SEALER_FILE        1
#define SEALER_AWS_KMS     2

/* A parsed sealed blob: pointers into the caller's bytes. */
struct sealed_key {
    uint8_t sealer;
    uint32_t enclave_id;
    uint64_t key_epoch;
    const uint8_t *kms_blob; /* NULL when kms_len is 0 */
    size_t kms_len;
    const uint8_t *ad; /* the authenticated header: ad[0 .. ad_len) */
    size_t ad_len;
    const uint8_t *box; /* SEALBOX_LEN bytes */
};

/* Parses a sealed blob (untrusted bytes: from the gateway). KM_OK, or
 * KM_ERR_INVALID / KM_ERR_INCOMPLETE / KM_ERR_TRAILING_DATA /
 * KM_ERR_TOO_LARGE with a message naming the field. */
int sealed_key_parse(struct sealed_key *out, const uint8_t *p, size_t len,
                     struct km_error *err) KM_WUR;

/* "file" / "aws-kms" for a sealer byte ("unknown" otherwise). */
const char *sealer_name(uint8_t sealer);

struct keysource;

/* The sealer's name: "file" or "aws-kms". */
const char *keysource_name(const struct keysource *ks);

/*
 * Creates a new identity key for enclave_id at key_epoch and seals it.
 * Returns KM_OK with *kp (wipe with keypair_clear) and *blob (malloc'ed,
 * ciphertext) or an error naming what failed (the KEK, KMS).
 */
int keysource_create(struct keysource *ks, struct keypair *kp, uint8_t **blob, size_t *blob_len,
                     uint32_t enclave_id, uint64_t key_epoch, struct km_error *err) KM_WUR;

/*
 * Opens a sealed blob made for enclave_id. Returns KM_OK with *kp and
 * *key_epoch, or: KM_ERR_INVALID (not a sealed key, another sealer, another
 * enclave id), KM_ERR_CRYPTO (does not open: a wrong KEK or an altered
 * blob), the sealer's error (KMS). Never leaves a partial key.
 */
int keysource_open(struct keysource *ks, struct keypair *kp, uint64_t *key_epoch,
                   const uint8_t *blob, size_t blob_len, uint32_t enclave_id,
                   struct km_error *err) KM_WUR;

/* Hands a sealer the temporary AWS credentials it signs KMS requests with
 * (aws-kms; the file sealer ignores them). */
int keysource_set_credentials(struct keysource *ks, const char *access_key_id,
                              const char *secret_access_key, const char *session_token,
                              struct km_error *err) KM_WUR;

/* Whether the sealer needs credentials before it can create or open a key. */
bool keysource_needs_credentials(const struct keysource *ks);

void keysource_free(struct keysource *ks);

/*
 * The file sealer: the KEK is the file's 32 bytes, raw or as 64 hex digits
 * (a trailing newline allowed). KM_ERR_IO / KM_ERR_INVALID name the path;
 * a KEK readable by group or others is accepted with *warning set.
 */
int keysource_file_new(struct keysource **out, const char *kek_path, bool *warning,
                       struct km_error *err) KM_WUR;

struct attest_provider;

/* The aws-kms sealer's settings (keymeld-enclave: KMS_* variables). */
struct keysource_kms_config {
    const char *key_id;   /* KMS key id, ARN or alias ("alias/keymeld"): required */
    const char *region;   /* "us-east-1": signs the requests (SigV4) */
    const char *endpoint; /* e.g. https://kms.us-east-1.amazonaws.com; http://127.0.0.1:PORT
                             only with allow_http (tests) */
    bool allow_http;
    uint32_t proxy_cid;  /* with proxy_port nonzero: connect through the host's  */
    uint32_t proxy_port; /* vsock-proxy (VSock to CID:port); 0: connect directly */
    const char *ca_file; /* PEM bundle for TLS; NULL: libcurl's default */
};

/*
 * The aws-kms sealer (keysource_kms.c): the KEK is a KMS data key that KMS
 * hands only to this attested enclave (GenerateDataKey when a key is
 * created, checked at once by a Decrypt of its CiphertextBlob; Decrypt of
 * the kept CiphertextBlob when it is opened), each request with a fresh
 * RSA-2048 key and a fresh attestation document from attest (borrowed: it
 * must outlive the key source). Creating and opening need the AWS
 * credentials of keysource_set_credentials first (KM_ERR_STATE until then).
 * KM_ERR_CONFIG with a message for no attestation provider, no key id, or
 * a bad endpoint, region, proxy or CA file.
 */
int keysource_kms_new(struct keysource **out, const struct keysource_kms_config *cfg,
                      struct attest_provider *attest, struct km_error *err) KM_WUR;

#endif /* KM_ENCLAVE_KEYSOURCE_H */
