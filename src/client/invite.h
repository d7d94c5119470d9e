/*
 * invite.h - every party on its own machine (docs/INTEGRATION.md "Every
 * party on its own machine"): the files that carry a keygen between the
 * coordinator and parties that each hold only their own key.
 *
 *  - A party key file (`keymeld key new`): one participant's private key,
 *    mode 0600, created exclusively:
 *      {"version":1,"type":"keymeld-participant-key",
 *       "private_key":"<hex32>","public_key":"<hex33>"}
 *  - An invitation, written by the coordinator for one party. It holds no
 *    plaintext secret: the session secret is ECIES-encrypted
 *    (crypto/ecies.h) to the party's public key.
 *      {"version":1,"type":"keymeld-invitation","gateway":"http://...",
 *       "keygen_session_id":"<uuid>","user_id":"<uuid>","slot":N,
 *       "public_key":"<hex33>","encrypted_session_secret":"<hex>",
 *       "tweak":{...},"expires_at":<unix seconds>,
 *       "participants":[{"user_id":"<uuid>","public_key":"<hex33>"},...]}
 *    participants lists every participant in reserve order (slot N is the
 *    party's own), so the party can recompute the aggregate key itself.
 *  - A signing request, written by `keymeld sign --request-out` for the
 *    approvers: the signing session's id and its items in clear (an
 *    approval signs the messages, docs/CRYPTO.md "Signing approval").
 *      {"version":1,"type":"keymeld-signing-request","keygen_session_id":
 *       "<uuid>","signing_session_id":"<uuid>",
 *       "items":[{"item_id":"<uuid>","message":"<hex32>"},...]}
 *
 * Functions return KM_OK or a KM_ERR_* code with the reason in *err.
 */
#ifndef KM_CLIENT_INVITE_H
#define KM_CLIENT_INVITE_H

#include <stddef.h>
#include <stdint.h>

#include "client/session.h"

#define CLIENT_INVITE_MAX_SIZE (1u << 20)

/* Writes kp's private key to a new file (mode 0600; KM_ERR_EXISTS if path
 * exists). */
int client_party_key_save(const char *path, const struct keypair *kp, struct km_error *err) KM_WUR;

/* Reads a party key file into *kp (keypair_clear it). KM_ERR_INVALID when
 * the file is not one or its public key does not match its private key. */
int client_party_key_load(const char *path, struct keypair *kp, struct km_error *err) KM_WUR;

/*
 * Writes the invitation of k's participant `user` (whose kp.pubkey is the
 * party's public key) to a new file (mode 0600, KM_ERR_EXISTS if it exists):
 * the session secret is encrypted to that key. expires_at in Unix seconds.
 */
int client_invite_save(const char *path, const struct client_keygen *k, size_t user,
                       const char *gateway, uint64_t expires_at, struct km_error *err) KM_WUR;

/*
 * Opens the invitation at path with the party's key kp: fills *k with the
 * keygen (id, session secret and session key, tweak, every participant with
 * its public key only, marked remote, except the party's own, which holds
 * kp), *user with the party's index, and gateway (cap bytes). Release *k
 * with client_keygen_clear. Errors: KM_ERR_INVALID (not an invitation, a
 * bad field), KM_ERR_CRYPTO with "this invitation is not for this key"
 * (another party's invitation), KM_ERR_STATE (expired).
 */
int client_invite_open(const char *path, const struct keypair *kp, struct client_keygen *k,
                       size_t *user, char *gateway, size_t cap, struct km_error *err) KM_WUR;

/* Writes s (created under k) to a new signing request file (mode 0600). */
int client_signing_request_save(const char *path, const struct client_keygen *k,
                                const struct client_signing *s, struct km_error *err) KM_WUR;

/* Reads a signing request into *s (client_signing_clear it); its keygen must
 * be k (KM_ERR_INVALID otherwise). */
int client_signing_request_load(const char *path, const struct client_keygen *k,
                                struct client_signing *s, struct km_error *err) KM_WUR;

/*
 * As a party: fetches the slot of k's participant `user` (GET slots, signed
 * with the session key), verifies its enclave's attestation (k->trust),
 * registers the participant's key encrypted to it. Then wait with
 * client_keygen_wait, which checks the aggregate key against every
 * participant's public key.
 */
int client_keygen_join(struct rest_client *c, struct client_keygen *k, size_t user,
                       struct km_error *err) KM_WUR;

#endif /* KM_CLIENT_INVITE_H */
