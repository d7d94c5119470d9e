/*
 * keysource_impl.h - what a sealer implements (private to src/enclave).
 */
#ifndef KM_ENCLAVE_KEYSOURCE_IMPL_H
#define KM_ENCLAVE_KEYSOURCE_IMPL_H

#include "enclave/keysource.h"

struct keysource_ops {
    const char *name;
    uint8_t sealer; /* SEALER_* */
    /*
     * Produces the KEK. Creating (existing == NULL): a fresh one, and for
     * KMS the CiphertextBlob to keep (*kms_blob, malloc'ed). Opening: the
     * KEK of an existing blob.
     */
    int (*kek)(struct keysource *ks, uint8_t kek[SEALBOX_KEK_LEN], uint8_t **kms_blob,
               size_t *kms_len, const struct sealed_key *existing, struct km_error *err);
    /* Optional (aws-kms): the temporary credentials the gateway hands over
     * in configure. Copies them into fixed buffers; never logs them. */
    int (*set_credentials)(struct keysource *ks, const char *access_key_id,
                           const char *secret_access_key, const char *session_token,
                           struct km_error *err);
    void (*free)(struct keysource *ks);
};

struct keysource {
    const struct keysource_ops *ops;
};

#endif /* KM_ENCLAVE_KEYSOURCE_IMPL_H */
