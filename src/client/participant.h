/*
 * participant.h - the participant side of the enclave protocol: what a
 * user's SDK does with the values the gateway must never see in clear
 * (docs/PROTOCOL.md "Encrypted values"). Used by the test driver, the
 * gateway's tests and the `keymeld` CLI.
 *
 *  - The keygen coordinator's participant makes the 32-byte session secret
 *    (participant_secret_new) and shares it with the other participants out
 *    of band; it encrypts the secret to the coordinator enclave's key
 *    (participant_encrypt_secret).
 *  - Each participant encrypts its private key to its assigned enclave
 *    (participant_encrypt_private_key).
 *  - Messages, tweaks and adaptor configs are sealed with the session
 *    secret (participant_seal_*); aggregate keys, signatures and adaptor
 *    results come back sealed (participant_open_*).
 *  - Participants that registered with require_signing_approval sign each
 *    signing session (participant_approval_sign).
 *  - participant_aggregate_key recomputes the aggregate key a keygen must
 *    produce (KeySort, KeyAgg, tweak), to check what the enclaves return.
 *
 * Ciphertexts are struct proto_blob (heap; proto_blob_clear frees), ready
 * for the protocol's argument structs; hex-encode them for the REST API.
 * Secrets stay in caller-owned fixed-size arrays. Functions return KM_OK or
 * a KM_ERR_* code; opening functions fill *err with what went wrong.
 */
#ifndef KM_CLIENT_PARTICIPANT_H
#define KM_CLIENT_PARTICIPANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/uuid.h"
#include "crypto/keypair.h"
#include "protocol/payload.h"

#define PARTICIPANT_SECRET_LEN 32

/* A fresh session secret from the OS CSPRNG. KM_OK or KM_ERR_IO. */
int participant_secret_new(uint8_t secret[PARTICIPANT_SECRET_LEN]) KM_WUR;

/* ECIES of the session secret (32 raw bytes) to the coordinator enclave's
 * 33-byte key, for keygen_init's encrypted_session_secret. Returns KM_OK or
 * KM_ERR_INVALID (bad enclave key). */
int participant_encrypt_secret(struct proto_blob *out, const uint8_t enclave_pk[33],
                               const uint8_t secret[PARTICIPANT_SECRET_LEN]) KM_WUR;

/* ECIES of the participant's 32-byte private key to its enclave's key, for
 * keygen_add_participants. */
int participant_encrypt_private_key(struct proto_blob *out, const uint8_t enclave_pk[33],
                                    const struct keypair *kp) KM_WUR;

/* Session encryption of pt under context ctx (a PROTO_CTX_* name). */
int participant_seal(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                     const char *ctx, const uint8_t *pt, size_t len) KM_WUR;

/* Opens a sealed blob that must carry context ctx. Returns KM_OK,
 * KM_ERR_INVALID (malformed, other context), KM_ERR_CRYPTO (wrong secret,
 * tampered) or KM_ERR_TOO_LARGE (cap). */
int participant_open(uint8_t *out, size_t cap, size_t *len, struct km_error *err,
                     const uint8_t secret[PARTICIPANT_SECRET_LEN], const char *ctx,
                     const struct proto_blob *blob) KM_WUR;

/* A batch item's 32-byte message ("session_data"). */
int participant_seal_message(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                             const uint8_t msg[PROTO_MSG_LEN]) KM_WUR;

/* A keygen or item tweak ("taproot_tweak"). */
int participant_seal_tweak(struct proto_blob *out, const uint8_t secret[PARTICIPANT_SECRET_LEN],
                           const struct proto_tweak *tweak) KM_WUR;

/* An item's adaptor configs ("adaptor_configs"). */
int participant_seal_adaptor_configs(struct proto_blob *out,
                                     const uint8_t secret[PARTICIPANT_SECRET_LEN],
                                     const struct proto_adaptor_configs *cfgs) KM_WUR;

/* The 33-byte (tweaked) aggregate key of keygen_get_aggregate; subset
 * selects the "subset_aggregate_public_key" context. */
int participant_open_aggregate_key(uint8_t out[PROTO_PUBKEY_LEN], struct km_error *err,
                                   const uint8_t secret[PARTICIPANT_SECRET_LEN],
                                   const struct proto_blob *blob, bool subset) KM_WUR;

/* The 64-byte BIP-340 signature of a signing_finalize result. */
int participant_open_signature(uint8_t sig[PROTO_SIG_LEN], struct km_error *err,
                               const uint8_t secret[PARTICIPANT_SECRET_LEN],
                               const struct proto_blob *blob) KM_WUR;

/* The adaptor pre-signatures of an item (proto_adaptor_results_clear). */
int participant_open_adaptor_results(struct proto_adaptor_results *out, struct km_error *err,
                                     const uint8_t secret[PARTICIPANT_SECRET_LEN],
                                     const struct proto_blob *blob) KM_WUR;

/*
 * Completes an adaptor pre-signature into a BIP-340 signature. secrets are
 * the adaptor secrets: for "single" and "or" the one of res's point (n = 1),
 * for "and" every point's, in config order (their sum completes it).
 * Returns KM_OK, KM_ERR_INVALID (n, a bad scalar) or KM_ERR_CRYPTO (the
 * secrets do not match res->adaptor_point).
 */
int participant_adaptor_complete(uint8_t sig[PROTO_SIG_LEN], const struct proto_adaptor_result *res,
                                 const uint8_t (*secrets)[32], size_t n) KM_WUR;

/*
 * The aggregate key a keygen must produce: KeySort of pubkeys[0..n), KeyAgg,
 * then tweak (NULL = none). out is the 33-byte compressed key (what
 * keygen_get_aggregate seals), xonly the BIP-340 key signatures verify
 * against. Returns KM_OK or KM_ERR_INVALID.
 */
int participant_aggregate_key(uint8_t out[PROTO_PUBKEY_LEN], uint8_t xonly[PROTO_XONLY_LEN],
                              const uint8_t (*pubkeys)[PROTO_PUBKEY_LEN], size_t n,
                              const struct proto_tweak *tweak) KM_WUR;

/*
 * A signing approval (docs/PROTOCOL.md "signing_init"): BIP-340 by the
 * participant's auth key over the session, the timestamp and every item's id
 * and message. Returns KM_OK or KM_ERR_CRYPTO.
 */
int participant_approval_sign(uint8_t sig[PROTO_SIG_LEN], const struct keypair *auth,
                              const struct uuid *signing_id, const struct uuid *keygen_id,
                              uint64_t timestamp, const struct uuid *item_ids,
                              const uint8_t (*msgs)[PROTO_MSG_LEN], size_t n_items) KM_WUR;

/*
 * The participant's approval key for one keygen session, derived from its
 * private key: HKDF-SHA256(salt "keymeld-approval-v1", ikm = private key,
 * info = keygen_session_id as text). Its x-only public key is the
 * auth_pubkey of keygen_add_participants. out must be keypair_clear'ed.
 */
int participant_auth_keypair(struct keypair *out, const struct keypair *user,
                             const struct uuid *keygen_id) KM_WUR;

#endif /* KM_CLIENT_PARTICIPANT_H */
