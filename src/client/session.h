/*
 * session.h - what a KeyMeld client does, end to end, over the REST API
 * (docs/API.md): create a keygen as coordinator, register participants,
 * wait for the aggregate key, sign batches, approve, and check every
 * result locally. Used by the `keymeld` CLI (demo, keygen, sign), the
 * gateway integration tests and the end-to-end benchmark.
 *
 * A struct client_keygen plays every participant of one session (the demo
 * and tests hold all the keys; a real deployment runs one participant per
 * party, each with only its own key). Secrets (private keys, the session
 * secret) stay in this process: they leave it only encrypted, to an
 * enclave key (ECIES) or with the session secret.
 *
 * Errors: KM_ERR_CONNECT/KM_ERR_TIMEOUT (gateway unreachable),
 * KM_ERR_REMOTE (the gateway answered an error: the message quotes the
 * method, path, status and its message), KM_ERR_CRYPTO (a result did not
 * decrypt or verify), KM_ERR_STATE (the session failed: its error is in
 * the message).
 */
#ifndef KM_CLIENT_SESSION_H
#define KM_CLIENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client/attest.h"
#include "client/participant.h"
#include "client/rest.h"

/* HKDF salt and info of the session auth key, derived from the session
 * secret so every participant can sign session requests (docs/API.md). */
#define CLIENT_SESSION_AUTH_SALT "keymeld-session-auth-v1"
#define CLIENT_SESSION_AUTH_INFO "session-auth-key"

struct client_user {
    struct uuid id;
    char id_s[UUID_STR_LEN + 1];
    struct keypair kp;   /* signing key: sent only ECIES-encrypted to its enclave */
    struct keypair auth; /* signs this user's requests and approvals */
    uint32_t enclave_id; /* assigned at reserve */
    uint8_t enclave_pk[PROTO_PUBKEY_LEN];
    bool require_approval;
    /* Another party's participant (a session file of one party, an
     * invitation): only kp.pubkey is known here; kp.seckey and auth are
     * zero, so this process cannot register, approve or read as it. */
    bool remote;
};

struct client_keygen {
    struct uuid id;
    char id_s[UUID_STR_LEN + 1];
    uint8_t secret[PARTICIPANT_SECRET_LEN];
    struct keypair session_auth;
    size_t nusers;
    struct client_user *users; /* users[0] is the coordinator */
    struct proto_tweak tweak;
    uint32_t max_signing_sessions; /* 0 = the gateway's default */
    /* Checks each enclave key before anything is encrypted to it
     * (client/attest.h). Borrowed; NULL refuses initialize and register. */
    struct client_trust *trust;
    uint32_t coordinator_enclave_id;
    uint8_t coordinator_pk[PROTO_PUBKEY_LEN];
    bool completed;
    uint8_t aggregate[PROTO_PUBKEY_LEN]; /* tweaked aggregate key, once completed */
    uint8_t xonly[PROTO_XONLY_LEN];      /* what signatures verify against */
};

/* Fresh session: a new id, session secret and nusers (>= 2) keypairs.
 * Returns KM_OK or KM_ERR_IO (no randomness). Release with _clear. */
int client_keygen_new(struct client_keygen *k, size_t nusers,
                      const struct proto_tweak *tweak) KM_WUR;

/* Makes kp (a party's own key, e.g. from keymeld key new) participant
 * user's key instead of the fresh one, with its auth key derived anew.
 * Before the keygen is reserved. Returns KM_OK, KM_ERR_RANGE (user) or
 * KM_ERR_CRYPTO. */
int client_keygen_use_key(struct client_keygen *k, size_t user, const struct keypair *kp) KM_WUR;

/* Wipes every secret and frees. */
void client_keygen_clear(struct client_keygen *k);

/* The protocol steps, in order; _register for users 1..nusers-1.
 * _initialize and _register first verify the attestation of the enclave
 * they encrypt to (k->trust): an unattested key is KM_ERR_CRYPTO and
 * nothing is sent. */
int client_keygen_reserve(struct rest_client *c, struct client_keygen *k, uint32_t timeout_secs,
                          struct km_error *err) KM_WUR;
int client_keygen_initialize(struct rest_client *c, struct client_keygen *k,
                             struct km_error *err) KM_WUR;
int client_keygen_register(struct rest_client *c, struct client_keygen *k, size_t user,
                           struct km_error *err) KM_WUR;

/* Waits up to wait_ms for completion; then opens the aggregate key and
 * checks it equals the one computed locally from the participants' keys
 * (KeySort, KeyAgg, tweak). KM_ERR_TIMEOUT if still running. */
int client_keygen_wait(struct rest_client *c, struct client_keygen *k, uint32_t wait_ms,
                       struct km_error *err) KM_WUR;

/* reserve + initialize + register all + wait. */
int client_keygen_run(struct rest_client *c, struct client_keygen *k, uint32_t timeout_secs,
                      uint32_t wait_ms, struct km_error *err) KM_WUR;

struct client_signing {
    struct uuid id;
    char id_s[UUID_STR_LEN + 1];
    size_t nitems;
    struct uuid *item_ids;
    uint8_t (*msgs)[PROTO_MSG_LEN];
    uint8_t (*sigs)[PROTO_SIG_LEN]; /* filled by client_sign_wait */
    char status[32];                /* last status seen */
    /* Items signed under another tweak than the keygen's
     * (client_signing_set_tweak); NULL while there is none. */
    struct client_item_tweak *tweaks;
};

/* An item's own tweak and the x-only key its signature verifies under. */
struct client_item_tweak {
    bool set;
    struct proto_tweak tweak;
    uint8_t xonly[PROTO_XONLY_LEN];
};

/* A signing of n messages (copied). Release with _clear. */
int client_signing_new(struct client_signing *s, const uint8_t (*msgs)[PROTO_MSG_LEN],
                       size_t n) KM_WUR;
void client_signing_clear(struct client_signing *s);

/* Signs item i under tweak instead of the keygen's (API.md
 * items[].encrypted_taproot_tweak; {PROTO_TWEAK_NONE} signs under the plain
 * KeyAgg key), and records the key its signature must verify under,
 * computed from k's participants. Returns KM_OK, KM_ERR_RANGE (i) or
 * KM_ERR_INVALID (the tweak cannot apply to the key). */
int client_signing_set_tweak(struct client_signing *s, size_t i, const struct client_keygen *k,
                             const struct proto_tweak *tweak) KM_WUR;

/* The x-only key item i's signature verifies under: its own tweak's, else
 * the keygen's (k->xonly). */
const uint8_t *client_signing_item_key(const struct client_signing *s,
                                       const struct client_keygen *k, size_t i);

/* POST /signing: items sealed with the session secret, signed with the
 * session key. With wait_ms > 0 the gateway holds the reply up to wait_ms
 * for the outcome: a completed session's signatures are then opened and
 * verified as by client_sign_wait (s->status "completed"), a failed one is
 * KM_ERR_STATE with its error. Otherwise s->status says where it stands
 * ("running", "awaiting_approvals"): follow with client_sign_wait. */
int client_sign_create(struct rest_client *c, const struct client_keygen *k,
                       struct client_signing *s, uint32_t timeout_secs, uint32_t wait_ms,
                       struct km_error *err) KM_WUR;

/* Whether the last reply said completed (after a KM_OK return of
 * client_sign_create or client_sign_wait: every signature is in s->sigs,
 * opened and verified). */
bool client_signing_done(const struct client_signing *s);

/* A participant's approval (it must have registered with
 * require_signing_approval): signs the items with its auth key. */
int client_sign_approve(struct rest_client *c, const struct client_keygen *k,
                        const struct client_signing *s, size_t user, struct km_error *err) KM_WUR;

/* Waits up to wait_ms (as participant `user`) for completion, then opens
 * every signature and verifies it under the aggregate key. */
int client_sign_wait(struct rest_client *c, const struct client_keygen *k, struct client_signing *s,
                     size_t user, uint32_t wait_ms, struct km_error *err) KM_WUR;

#endif /* KM_CLIENT_SESSION_H */
