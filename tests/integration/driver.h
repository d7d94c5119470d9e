/*
 * driver.h - plays the gateway (and the participants) against N enclaves
 * over the enclave protocol: keygen and signing flows built from the
 * protocol codecs (gateway direction: encode args, decode results) and the
 * participant API (client/participant.h).
 *
 * The enclaves are reached through a struct drv_link: in-process
 * (enclave_handle called directly; unit tests, fuzzing) or over the
 * transport (one pool per enclave; integration tests, bench/enclave).
 * Everything a flow needs to check its results (private keys, session
 * secrets, adaptor secrets) lives here, on the participants' side.
 *
 * Not thread-safe per struct drv_keygen / drv_signing; one struct drv may
 * be shared by threads when its link is (pools are).
 */
#ifndef KM_TESTS_DRIVER_H
#define KM_TESTS_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "client/participant.h"
#include "common/uuid.h"
#include "crypto/keypair.h"
#include "enclave/enclave.h"
#include "protocol/commands.h"
#include "protocol/envelope.h"
#include "transport/pool.h"

#define DRV_MAX_ENCLAVES 8

/* One request of a fan-out. */
struct drv_call {
    size_t enclave;
    const char *cmd;
    struct uuid command_id; /* nil: a fresh one */
    const json_t *args;     /* borrowed */
    int rc;                 /* out: KM_OK, KM_ERR_REMOTE (reply.error), or transport error */
    struct env_reply reply; /* out: env_reply_clear */
    struct km_error err;    /* out */
};

struct drv_link {
    /* Runs calls[0..n), concurrently if the link can. */
    void (*call_many)(void *ud, struct drv_call *calls, size_t n);
    void *ud;
};

/* In-process link over enclave objects (borrowed). */
struct drv_inproc {
    struct enclave *en[DRV_MAX_ENCLAVES];
    size_t n;
};
void drv_link_inproc(struct drv_link *link, struct drv_inproc *ip);

/* Transport link over one pool per enclave (borrowed). */
struct drv_pools {
    struct pool *pool[DRV_MAX_ENCLAVES];
    size_t n;
    uint32_t timeout_ms;
};
void drv_link_pools(struct drv_link *link, struct drv_pools *pp);

struct drv {
    struct drv_link link;
    size_t n_enclaves;
    uint8_t pk[DRV_MAX_ENCLAVES][33];
};

/* get_public_info and configure (id = index) on every enclave. */
int drv_init(struct drv *d, const struct drv_link *link, size_t n_enclaves, struct km_error *err);

/* One call (fresh command_id when cid is NULL). Returns KM_OK,
 * KM_ERR_REMOTE (reply->error) or a transport error. */
int drv_call(struct drv *d, size_t enclave, const char *cmd, const struct uuid *cid,
             const json_t *args, struct env_reply *reply, struct km_error *err);

/* ---- Keygen -------------------------------------------------------------- */

struct drv_user {
    struct uuid id;
    struct keypair kp;
    struct keypair auth; /* approval key */
    size_t enclave;      /* the enclave that holds its key */
    bool require_approval;
};

#define DRV_MAX_SUBSETS 4

struct drv_subset {
    struct uuid id;
    size_t n;
    size_t members[32]; /* user indices */
    uint8_t aggkey[33]; /* out */
    uint8_t xonly[32];  /* out: expected */
};

struct drv_keygen {
    struct uuid id;
    uint8_t secret[32];
    size_t n_users;
    struct drv_user *users; /* owned (drv_keygen_release) */
    size_t coordinator;     /* enclave index */
    bool has_tweak;
    struct proto_tweak tweak;
    size_t n_subsets;
    struct drv_subset subsets[DRV_MAX_SUBSETS];
    uint32_t timeout_secs;
    uint8_t aggkey[33];                  /* out: from the enclaves */
    uint8_t xonly[32];                   /* out: expected, signatures verify under it */
    uint8_t check[DRV_MAX_ENCLAVES][32]; /* out: aggregate_check per enclave */
};

/* n_users fresh users spread round-robin over n_enclaves; coordinator 0,
 * no tweak, no subsets, timeout 3600 s. */
void drv_keygen_setup(struct drv_keygen *kg, size_t n_users, size_t n_enclaves);
void drv_keygen_release(struct drv_keygen *kg);

/* The whole keygen: init (coordinator, then the others with the bound
 * secret), add participants, distribute public keys, get the aggregate;
 * checks it against participant_aggregate_key and every enclave's
 * aggregate_check. */
int drv_keygen_run(struct drv *d, struct drv_keygen *kg, struct km_error *err);

/* keygen_init args for enclave e (secret_ct: the coordinator's bound
 * ciphertext for e; NULL for the coordinator). Caller json_decref()s. */
json_t *drv_keygen_init_args(const struct drv *d, const struct drv_keygen *kg, size_t e,
                             const struct proto_blob *secret_ct);

/* ---- Signing --------------------------------------------------------------- */

#define DRV_MAX_ADAPTORS 4
#define DRV_MAX_POINTS   4

struct drv_adaptor {
    struct uuid id;
    int type; /* enum proto_adaptor_type */
    size_t n_points;
    uint8_t secrets[DRV_MAX_POINTS][32];
    uint8_t points[DRV_MAX_POINTS][33];
};

struct drv_item {
    struct uuid id;
    uint8_t msg[32];
    bool has_tweak;
    struct proto_tweak tweak;
    long subset; /* index into kg->subsets, or -1 */
    size_t n_adaptors;
    struct drv_adaptor adaptors[DRV_MAX_ADAPTORS];
    uint8_t sig[64];                 /* out: plain items */
    struct proto_adaptor_results ar; /* out: adaptor items */
};

struct drv_signing {
    struct uuid id;
    size_t n_items;
    struct drv_item *items; /* owned */
    uint32_t timeout_secs;
    /* Collected between the rounds. */
    size_t n_nonces;
    struct proto_user_blob nonces[64];
    size_t n_psigs;
    struct proto_user_blob psigs[64];
    struct proto_signing_finalize_result final; /* the coordinator's reply */
};

/* n_items random messages, plain, no tweak, timeout 600 s. */
void drv_signing_setup(struct drv_signing *sg, size_t n_items);
/* Gives item it its own tweak of type (enum proto_tweak_type): the 32-byte
 * tweak (plain, x-only) or merkle root is `fill` repeated. */
void drv_item_set_tweak(struct drv_item *it, int type, uint8_t fill);
/* Adds an adaptor config of type with n_points fresh secrets to item i. */
void drv_item_add_adaptor(struct drv_item *it, int type, size_t n_points);
void drv_signing_release(struct drv_signing *sg);

/* signing_init args (same for every enclave). Caller json_decref()s. */
json_t *drv_signing_init_args(const struct drv_keygen *kg, const struct drv_signing *sg);

/* The rounds, separately (bad-input tests tamper between them). */
int drv_sign_init(struct drv *d, const struct drv_keygen *kg, struct drv_signing *sg,
                  struct km_error *err);
int drv_sign_nonces(struct drv *d, const struct drv_keygen *kg, struct drv_signing *sg,
                    struct km_error *err);
int drv_sign_finalize(struct drv *d, struct drv_keygen *kg, struct drv_signing *sg,
                      struct km_error *err);
/* Opens the results and verifies every signature (BIP-340 under the item's
 * tweaked key; adaptor pre-signatures completed and verified). */
int drv_sign_check(const struct drv_keygen *kg, struct drv_signing *sg, struct km_error *err);

/* All four. */
int drv_sign_run(struct drv *d, struct drv_keygen *kg, struct drv_signing *sg,
                 struct km_error *err);

/* clear_session of a keygen (keygen = true) or signing session on every
 * enclave. */
int drv_clear(struct drv *d, const struct uuid *id, bool keygen, struct km_error *err);

/* The x-only key item i's signature verifies under. */
int drv_item_key(uint8_t xonly[32], const struct drv_keygen *kg, const struct drv_item *it);

#endif /* KM_TESTS_DRIVER_H */
