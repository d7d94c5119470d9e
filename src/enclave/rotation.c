/*
 * rotation.c - identity key rotation (docs/PROTOCOL.md "Key rotation",
 * docs/OPERATIONS.md "Rotating an enclave key").
 *
 *   rotate_key_begin {key_epoch}   creates and seals the next key (epoch =
 *                                  current + 1); repeated: the same key
 *   rekey {key_epoch, ciphertexts} ECIES ciphertexts to the current key,
 *                                  re-encrypted to the next key inside the
 *                                  enclave (plaintexts wiped)
 *   rotate_key_commit {key_epoch}  the next key becomes the identity key;
 *                                  the old one is wiped; repeated: a no-op
 *
 * The gateway drives it: it stores the next sealed key before re-encrypting
 * anything, commits each keygen's re-encrypted ciphertexts one by one, and
 * retires the old sealed key only after the commit. An enclave restarted in
 * between gets both sealed keys back in configure (en_restore_next_key), so
 * an interrupted rotation resumes where it stopped.
 */
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/secure.h"
#include "common/xmalloc.h"
#include "crypto/ecies.h"
#include "enclave/internal.h"
#include "enclave/keysource.h"
#include "common/banned.h"

static void rotation_result(struct en_req *r, const struct keypair *kp, uint64_t epoch,
                            uint8_t *blob, size_t len)
{
    struct proto_rotation_result res = {.key_epoch = epoch, .sealed_key = {blob, len}};
    memcpy(res.public_key, kp->pubkey, PROTO_PUBKEY_LEN);
    r->result = proto_rotation_result_encode(&res);
}

static void set_next(struct enclave *en, struct keypair *kp, uint64_t epoch, uint8_t *blob,
                     size_t len)
{
    en->next_kp = *kp;
    en->next_epoch = epoch;
    en->next_blob = blob;
    en->next_len = len;
    en->has_next = true;
    secure_wipe(kp, sizeof(*kp));
}

int en_restore_next_key(struct en_req *r, const struct proto_blob *blob, uint32_t enclave_id)
{
    struct enclave *en = r->en;
    struct keypair kp;
    uint64_t epoch = 0;
    struct km_error err;
    if (en->has_next)
        return KM_OK;
    if (keysource_open(en->cfg.keysource, &kp, &epoch, blob->p, blob->len, enclave_id, &err) !=
        KM_OK)
        return en_fail(&r->err, PROTO_E_DECRYPT_FAILED,
                       "cannot restore the next identity key of the rotation: %s", err.msg);
    uint8_t *copy = xmalloc(blob->len);
    memcpy(copy, blob->p, blob->len);
    set_next(en, &kp, epoch, copy, blob->len);
    log_info(LOG_COMP, "rotation in progress: next identity key epoch %llu restored",
             (unsigned long long)epoch);
    return KM_OK;
}

void en_identity_in_list(struct enclave *en, uint8_t pub[PROTO_PUBKEY_LEN],
                         const struct proto_keygen_init_args *a)
{
    uint64_t epoch;
    en_identity(en, pub, &epoch);
    pthread_mutex_lock(&en->lock);
    if (en->has_next)
        for (size_t i = 0; i < a->n_enclaves; i++)
            if (memcmp(a->enclaves[i].public_key, en->next_kp.pubkey, PROTO_PUBKEY_LEN) == 0)
                memcpy(pub, en->next_kp.pubkey, PROTO_PUBKEY_LEN);
    pthread_mutex_unlock(&en->lock);
}

int en_ecies_open_next(uint8_t *out, size_t cap, size_t *len, struct enclave *en,
                       const struct proto_blob *ct)
{
    pthread_mutex_lock(&en->lock);
    int r = KM_ERR_CRYPTO;
    if (en->has_next)
        r = ecies_decrypt(out, cap, len, NULL, en->next_kp.seckey, ct->p, ct->len);
    pthread_mutex_unlock(&en->lock);
    return r;
}

static int rotatable(struct en_req *r)
{
    if (r->en->cfg.keysource == NULL)
        return en_fail(&r->err, PROTO_E_INVALID_STATE,
                       "this enclave runs SEALER=none: its key lives in memory only and is not "
                       "rotated (a restart makes a new one)");
    if (!r->en->has_enclave_id)
        return en_fail(&r->err, PROTO_E_INVALID_STATE, "configure this enclave first");
    return KM_OK;
}

int en_rotate_key_begin(struct en_req *r)
{
    const struct proto_rotation_args *a = r->args;
    struct enclave *en = r->en;
    pthread_mutex_lock(&en->lock);
    int rc = rotatable(r);
    uint8_t pub[PROTO_PUBKEY_LEN];
    uint64_t epoch = 0;
    en_identity(en, pub, &epoch);
    if (rc == KM_OK && en->has_next && en->next_epoch != a->key_epoch)
        rc = en_fail(&r->err, PROTO_E_INVALID_STATE,
                     "a rotation to key epoch %llu is in progress: finish it first",
                     (unsigned long long)en->next_epoch);
    else if (rc == KM_OK && !en->has_next && a->key_epoch != epoch + 1)
        rc = en_fail(&r->err, PROTO_E_INVALID_ARGUMENT,
                     "the key epoch is %llu: the next one is %llu, not %llu",
                     (unsigned long long)epoch, (unsigned long long)(epoch + 1),
                     (unsigned long long)a->key_epoch);
    if (rc == KM_OK && !en->has_next) {
        struct keypair kp;
        uint8_t *blob = NULL;
        size_t len = 0;
        struct km_error err;
        if (keysource_create(en->cfg.keysource, &kp, &blob, &len, en->enclave_id, a->key_epoch,
                             &err) != KM_OK)
            rc = en_fail(&r->err, PROTO_E_INTERNAL, "cannot create the next identity key: %s",
                         err.msg);
        else {
            set_next(en, &kp, a->key_epoch, blob, len);
            log_info(LOG_COMP, "rotation: next identity key epoch %llu created and sealed",
                     (unsigned long long)a->key_epoch);
        }
    }
    if (rc == KM_OK)
        rotation_result(r, &en->next_kp, en->next_epoch, en->next_blob, en->next_len);
    pthread_mutex_unlock(&en->lock);
    return rc;
}

/* One ciphertext: open with the current key, seal to the next one. */
static int rekey_one(struct en_req *r, struct proto_blob *out, const struct proto_blob *in,
                     const uint8_t next_pub[PROTO_PUBKEY_LEN], size_t i)
{
    uint8_t pt[PROTO_ECIES_MAX];
    size_t n = 0;
    char what[48];
    snprintf(what, sizeof(what), "ciphertexts[%zu]", i);
    int rc = en_ecies_open(pt, sizeof(pt), &n, r->en, in, &r->err, what);
    if (rc == KM_OK)
        rc = en_ecies_seal(out, next_pub, pt, n, &r->err);
    secure_wipe(pt, sizeof(pt));
    return rc;
}

int en_rekey(struct en_req *r)
{
    const struct proto_rekey_args *a = r->args;
    struct enclave *en = r->en;
    uint8_t next_pub[PROTO_PUBKEY_LEN];
    pthread_mutex_lock(&en->lock);
    bool ok = en->has_next && en->next_epoch == a->key_epoch;
    if (ok)
        memcpy(next_pub, en->next_kp.pubkey, PROTO_PUBKEY_LEN);
    pthread_mutex_unlock(&en->lock);
    if (!ok)
        return en_fail(&r->err, PROTO_E_INVALID_STATE,
                       "no rotation to key epoch %llu is in progress (rotate_key_begin first)",
                       (unsigned long long)a->key_epoch);
    struct proto_rekey_result res = {.n_ciphertexts = a->n_ciphertexts};
    res.ciphertexts = XALLOC_ARRAY(struct proto_ciphertext, a->n_ciphertexts);
    memset(res.ciphertexts, 0, a->n_ciphertexts * sizeof(*res.ciphertexts));
    int rc = KM_OK;
    for (size_t i = 0; rc == KM_OK && i < a->n_ciphertexts; i++)
        rc = rekey_one(r, &res.ciphertexts[i].ciphertext, &a->ciphertexts[i].ciphertext, next_pub,
                       i);
    if (rc == KM_OK)
        r->result = proto_rekey_result_encode(&res);
    proto_rekey_result_clear(&res);
    return rc;
}

int en_rotate_key_commit(struct en_req *r)
{
    const struct proto_rotation_args *a = r->args;
    struct enclave *en = r->en;
    pthread_mutex_lock(&en->lock);
    int rc = rotatable(r);
    uint8_t pub[PROTO_PUBKEY_LEN];
    uint64_t epoch = 0;
    en_identity(en, pub, &epoch);
    bool done = !en->has_next && epoch == a->key_epoch;
    if (rc == KM_OK && !done && !(en->has_next && en->next_epoch == a->key_epoch))
        rc = en_fail(&r->err, PROTO_E_INVALID_STATE,
                     "no rotation to key epoch %llu is in progress (the key epoch is %llu)",
                     (unsigned long long)a->key_epoch, (unsigned long long)epoch);
    if (rc == KM_OK && !done) {
        pthread_rwlock_wrlock(&en->key_lock);
        keypair_clear(&en->kp);
        en->kp = en->next_kp;
        en->key_epoch = en->next_epoch;
        en->key_origin = "rotated";
        free(en->sealed_blob);
        en->sealed_blob = en->next_blob;
        en->sealed_len = en->next_len;
        pthread_rwlock_unlock(&en->key_lock);
        secure_wipe(&en->next_kp, sizeof(en->next_kp));
        en->next_blob = NULL;
        en->next_len = 0;
        en->has_next = false;
        log_info(LOG_COMP, "rotation committed: identity key epoch %llu; the old key is wiped",
                 (unsigned long long)a->key_epoch);
    }
    if (rc == KM_OK) {
        pthread_rwlock_rdlock(&en->key_lock);
        rotation_result(r, &en->kp, en->key_epoch, en->sealed_blob, en->sealed_len);
        pthread_rwlock_unlock(&en->key_lock);
    }
    pthread_mutex_unlock(&en->lock);
    return rc;
}
