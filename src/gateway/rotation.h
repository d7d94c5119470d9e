/*
 * rotation.h - rotating an enclave's identity key (docs/OPERATIONS.md
 * "Rotating an enclave key"; the enclave side is enclave/rotation.c).
 *
 *  1. refuse while a keygen with a participant on the enclave is still in
 *     progress (its clients encrypt to the current key);
 *  2. the enclave creates and seals the next key (epoch + 1); the sealed key
 *     is stored (state "next") before anything is re-encrypted to it;
 *  3. each completed keygen's ciphertexts for the enclave (its participants'
 *     private keys, the session secret, the other enclaves' public keys) are
 *     re-encrypted inside the enclave and committed with the keygen's new key
 *     snapshot, one keygen per transaction (compare-and-set on the old key);
 *  4. the enclave switches to the next key and wipes the old one; the old
 *     sealed key is retired in the same transaction that makes the next one
 *     current.
 * Every step is idempotent, so an interrupted rotation (a gateway or enclave
 * crash) resumes where it stopped: by running it again, or by itself when
 * the gateway starts (gw_rotation_resume_start).
 */
#ifndef KM_GATEWAY_ROTATION_H
#define KM_GATEWAY_ROTATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

struct gateway;

struct gw_rotation_report {
    int64_t old_epoch, new_epoch;
    char public_key[67]; /* the new key */
    size_t keygens;      /* keygens re-encrypted by this run */
    bool resumed;        /* a rotation begun earlier was finished */
};

/* Rotates enclave_id's key as above. KM_OK with *rep, or: KM_ERR_STATE
 * (keygens in progress; no sealer), KM_ERR_NOT_FOUND (unknown enclave), or
 * the enclave's / store's error, with a message. */
int gw_rotate_key(struct gateway *gw, uint32_t enclave_id, struct gw_rotation_report *rep,
                  struct km_error *err) KM_WUR;

/* Starts a thread that finishes rotations left half-done (a "next" sealed
 * key in the store), retrying while an enclave is unreachable; stopped by
 * gw_rotation_resume_stop. Starts nothing when there are none. */
void gw_rotation_resume_start(struct gateway *gw);
void gw_rotation_resume_stop(struct gateway *gw);

#endif /* KM_GATEWAY_ROTATION_H */
