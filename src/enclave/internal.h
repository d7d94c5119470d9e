/*
 * internal.h - what the enclave's source files share (not for other
 * modules): the enclave object, the request context handlers receive, the
 * session data of keygen and signing sessions, and the crypto helpers.
 */
#ifndef KM_ENCLAVE_INTERNAL_H
#define KM_ENCLAVE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/uuid.h"
#include "crypto/keypair.h"
#include "crypto/musig.h"
#include "crypto/sessenc.h"
#include "enclave/enclave.h"
#include "enclave/idem.h"
#include "enclave/store.h"
#include "protocol/commands.h"
#include "protocol/payload.h"

#define LOG_COMP "enclave"

/* The enclave's pools: one lock and one count over every keygen. */
struct en_pools {
    pthread_mutex_t lock;
    size_t entries;
    size_t max; /* cfg.pool_max_entries, else EN_POOL_PER_ENCLAVE */
};

struct enclave {
    struct enclave_config cfg;
    /* The identity key: first set before key_ready is (release) stored;
     * commands that use it run only after they (acquire) load key_ready.
     * key_lock (read: every use; write: a rotation's commit) guards kp,
     * key_epoch, key_origin and the sealed blobs once set. */
    pthread_rwlock_t key_lock;
    struct keypair kp; /* the enclave's own key: secret */
    atomic_bool key_ready;
    uint64_t key_epoch;
    const char *key_origin; /* "ephemeral", "created", "restored", "rotated" */
    uint8_t *sealed_blob;   /* the sealed key (ciphertext) when created here */
    size_t sealed_len;
    /* A rotation in progress (rotation.c): the next key, sealed. */
    bool has_next;
    struct keypair next_kp;
    uint64_t next_epoch;
    uint8_t *next_blob;
    size_t next_len;
    uint64_t started_ms;
    struct uuid instance_id; /* new at every start: the gateway re-attests after a restart */
    struct store *store;
    struct idem *idem;

    pthread_mutex_t lock; /* enclave_id, reaper */
    bool has_enclave_id;
    uint32_t enclave_id;
    pthread_t reaper;
    bool reaper_running;
    bool reaper_stop;
    pthread_cond_t reaper_wake;
    uint32_t reaper_interval_ms;
    struct en_pools pools; /* pre-generated nonces of every keygen (pool.c) */
};

/* An error for the reply: a protocol code and a message (no secrets). */
struct en_err {
    enum proto_code code;
    char msg[ENV_ERROR_MSG_MAX + 1];
};

/* Sets e and returns KM_ERR_INVALID (handlers return it as their failure). */
int en_fail(struct en_err *e, enum proto_code code, const char *fmt, ...) KM_PRINTF(3, 4);

/* What a handler gets. */
struct en_req {
    struct enclave *en;
    const struct proto_command *pc;
    void *args;           /* decoded, of pc->args */
    struct session *sess; /* session commands: the session, turn held */
    uint64_t now_ms;      /* monotonic, at dispatch */
    json_t *result;       /* out: a new reference on success */
    struct en_err err;    /* out: on failure */
    /* out: the sessions this command belongs to, for the reply cache */
    struct uuid session_id, keygen_id;
};

/* ---- Session states ------------------------------------------------------ */

enum keygen_state {
    KEYGEN_COLLECTING_KEYS = 0,
    KEYGEN_COMPLETED,
};

enum signing_state {
    SIGNING_NONCES_ISSUED = 0,
    SIGNING_PARTIALS_ISSUED,
    SIGNING_COMPLETED,
};

const char *en_state_name(enum session_kind kind, int state);

/* The UUID's text form in buf, for messages; returns buf. */
const char *en_uuid_str(char buf[UUID_STR_LEN + 1], const struct uuid *u);

/* ---- Keygen session data --------------------------------------------------- */

struct kg_participant {
    struct uuid user_id;
    bool known; /* public key known */
    bool local; /* this enclave holds the private key */
    bool require_approval;
    uint8_t pubkey[PROTO_PUBKEY_LEN];
    uint8_t auth_pubkey[PROTO_XONLY_LEN];
    struct keypair kp; /* local only; secret */
};

/* A set of signers with its KeyAgg contexts: the full set or a subset. */
struct kg_group {
    struct uuid subset_id;     /* nil for the full set */
    size_t n;                  /* signers */
    size_t *members;           /* participant index of each signer; KeySort order once complete */
    long *signer_of;           /* per participant: signer index, or -1 (once complete) */
    struct musig_keyagg *base; /* untweaked (once complete) */
    struct musig_keyagg *tweaked; /* with the keygen tweak */
    uint8_t aggkey[PROTO_PUBKEY_LEN];
};

/* The session-encryption contexts a keygen seals and opens (seal.c). */
#define EN_CTX_COUNT 10

/* ---- Nonce pools (pool.c; docs/PROTOCOL.md "Nonce pools") ------------------ */

/* Bounds: a fill that would pass EN_POOL_PER_KEYGEN evicts (and wipes) the
 * keygen's oldest entries, so entries a crashed gateway lost never block a
 * keygen; one that would pass EN_POOL_PER_ENCLAVE is refused
 * (limit_exceeded), so one keygen cannot take another's room. */
#define EN_POOL_PER_KEYGEN  256
#define EN_POOL_PER_ENCLAVE 16384
#define EN_POOL_TTL_SECS    3600

/* One pre-generated nonce per local participant of a keygen. Memory only:
 * never sealed, stored or logged. */
struct pool_entry {
    uint8_t id[PROTO_POOL_ENTRY_ID_LEN];
    uint64_t expires_ms;
    size_t n;                           /* the keygen's local participants */
    struct musig_secnonce **sec;        /* per local participant; NULL once moved or used */
    uint8_t (*pub)[PROTO_PUBNONCE_LEN]; /* per local participant */
};

/* A keygen's pool (under en_pools.lock). */
struct kg_pool {
    struct en_pools *owner; /* set by keygen_init */
    struct pool_entry *e;   /* EN_POOL_PER_KEYGEN slots once filled; oldest first */
    size_t n;
    bool closed; /* the keygen was removed: no entry may be added */
};

struct keygen_data {
    bool coordinator;
    uint8_t secret[PROTO_SECRET_LEN]; /* the session secret */
    /* The session-encryption key of each context, derived from secret once
     * when it is set (en_derive_keys) instead of for every blob: the HKDF
     * was about 6% of an enclave's CPU per signing. As secret as secret,
     * and wiped with it (keygen_destroy frees the data with secure_free). */
    bool keys_ready;
    uint8_t ctx_keys[EN_CTX_COUNT][SESSENC_KEY_LEN];
    size_t n_enclaves;
    struct proto_enclave_key *enclaves;
    size_t self; /* index of this enclave in enclaves */
    size_t n_parts;
    struct kg_participant *parts;
    size_t known;
    struct proto_tweak tweak; /* type none when absent */
    struct kg_group full;
    size_t n_subsets;
    struct kg_group *subsets;
    uint8_t check[PROTO_CHECK_LEN]; /* aggregate_check, once complete */
    struct kg_pool pool;            /* pre-generated nonces (pool.c) */
};

/* Wipes and frees an entry's secret nonces and arrays (idempotent). */
void pool_entry_wipe(struct pool_entry *e);
/* Adds n fresh entries to kg's pool (taking them over; on failure they are
 * wiped): drops expired entries, evicts the oldest beyond
 * EN_POOL_PER_KEYGEN; limit_exceeded beyond EN_POOL_PER_ENCLAVE, not_found
 * once the keygen was removed. */
int pool_add(struct keygen_data *kg, struct pool_entry *fresh, size_t n, uint64_t now_ms,
             struct en_err *e);
/* Takes (removes) the entries with these distinct ids into out, all or
 * none: an unknown, expired or already taken id is nonce_unavailable
 * naming it, and then nothing is taken. */
int pool_take(struct keygen_data *kg, const uint8_t (*ids)[PROTO_POOL_ENTRY_ID_LEN], size_t n,
              uint64_t now_ms, struct pool_entry *out, struct en_err *e);
/* Wipes kg's pool and closes it (the keygen is being removed). */
void pool_drop(struct keygen_data *kg);
/* Entries held by the enclave, over every keygen. */
size_t pool_total(struct en_pools *p);

/* Participant index of user, or -1. */
long kg_find_participant(const struct keygen_data *kg, const struct uuid *user);
/* The subset with this id, or NULL. */
const struct kg_group *kg_find_subset(const struct keygen_data *kg, const struct uuid *id);

/* ---- Signing session data ---------------------------------------------------- */

struct sg_unit {
    size_t item;    /* index in items */
    uint32_t index; /* within the item */
    bool adaptor;
    uint8_t point[PROTO_PUBKEY_LEN]; /* adaptor point T */
    struct uuid adaptor_id;
    int adaptor_type; /* enum proto_adaptor_type */
    uint32_t branch;
    uint8_t (*pubnonces)[PROTO_PUBNONCE_LEN]; /* per signer */
    struct musig_pubnonce *parsed;            /* per signer, once distributed */
    struct musig_secnonce **secnonces;        /* per signer: local ones until used */
    struct musig_session ms;                  /* once distributed */
    /* The coordinator's own partial signatures, per signer (set for the
     * local ones once made and verified): finalize need not verify them
     * again when they come back unchanged. Not secret (they go out). */
    uint8_t (*own_psigs)[PROTO_PSIG_LEN];
    bool *own;
};

struct sg_item {
    struct uuid item_id;
    uint8_t msg[PROTO_MSG_LEN];
    const struct kg_group *group;  /* full set or a subset */
    struct musig_keyagg *own_ka;   /* the item's own tweak, or NULL */
    const struct musig_keyagg *ka; /* own_ka or group->tweaked */
    size_t first_unit, n_units;
    bool adaptor;
};

struct signing_data {
    struct store *st;
    struct session *keygen; /* referenced while the data lives */
    const struct keygen_data *kg;
    bool coordinator; /* kg->coordinator, kept after the data is wiped */
    size_t n_items;
    struct sg_item *items;
    size_t n_units;
    struct sg_unit *units;
};

/* Wipes everything but the shell (on completion); idempotent. */
void sg_wipe(struct signing_data *sd);

/* ---- Handlers (keygen.c, signing.c, enclave.c) --------------------------------- */

int en_keygen_init(struct en_req *r);
int en_keygen_add_participants(struct en_req *r);
int en_keygen_distribute_public_keys(struct en_req *r);
int en_keygen_get_aggregate(struct en_req *r);
/* check_private_key: opens and checks a participant key, keeps nothing. */
int en_check_private_key(struct en_req *r);
int en_signing_init(struct en_req *r);
int en_signing_distribute_nonces(struct en_req *r);
int en_signing_finalize(struct en_req *r);
/* Nonce pools (signing.c): fill a keygen's pool; sign from pool entries. */
int en_nonce_pool_fill(struct en_req *r);
int en_signing_sign(struct en_req *r);

/* attestation.c: the get_attestation command, and the provider's name for
 * public info ("none" without one). */
int en_get_attestation(struct en_req *r);

/* Whether the identity key is set (an enclave with a sealer waits for
 * configure). */
bool en_key_ready(const struct enclave *en);

/* Copies the identity public key and its epoch (under key_lock). */
void en_identity(struct enclave *en, uint8_t pub[PROTO_PUBKEY_LEN], uint64_t *epoch);

/* The key a keygen_init's enclave list should name for this enclave: the
 * current one, or during a rotation the next one when the list names it (a
 * keygen already re-encrypted, restored before the commit). */
void en_identity_in_list(struct enclave *en, uint8_t pub[PROTO_PUBKEY_LEN],
                         const struct proto_keygen_init_args *a);

/* rotation.c: rotate_key_begin, rekey, rotate_key_commit, and the next key
 * of a rotation handed back in configure after a restart. */
int en_rotate_key_begin(struct en_req *r);
int en_rekey(struct en_req *r);
int en_rotate_key_commit(struct en_req *r);
int en_restore_next_key(struct en_req *r, const struct proto_blob *blob, uint32_t enclave_id);

/* ECIES-decrypts with the next key of a rotation in progress (ciphertexts
 * already re-encrypted to it). KM_ERR_CRYPTO when there is none or it does
 * not open. */
int en_ecies_open_next(uint8_t *out, size_t cap, size_t *len, struct enclave *en,
                       const struct proto_blob *ct);
const char *en_attestation_name(const struct enclave *en);

/* Inserts a new session expiring timeout_secs from now (parent: a signing
 * session's keygen). On failure fills r->err (invalid_state naming the
 * existing session's state, limit_exceeded, not_found) and discards s. */
int en_store_insert(struct en_req *r, struct session *s, const struct session *parent,
                    uint32_t timeout_secs);

/* store_removed_fn for every removal (ud: the enclave): drops the session's
 * cached replies and logs it. */
void en_on_removed(void *ud, const struct session *s);

/* Removes the signing session of r once this enclave's part is done (its
 * partial signatures issued, or the coordinator's finalize): its data is
 * wiped when the command ends. Its cached replies stay, so a repeated
 * command id still gets its reply; any other command finds no session.
 * The gateway need not send clear_session after a success. */
void en_signing_done(struct en_req *r);

/* ---- Crypto helpers (seal.c) -------------------------------------------------------- */

/* ECIES-decrypts ct with the enclave key into out (cap bytes; wiped on
 * error). what names the value in the error (decrypt_failed). */
int en_ecies_open(uint8_t *out, size_t cap, size_t *len, const struct enclave *en,
                  const struct proto_blob *ct, struct en_err *e, const char *what);
/* ECIES-encrypts pt to pk into *out (new blob). Failure is internal. */
int en_ecies_seal(struct proto_blob *out, const uint8_t pk[PROTO_PUBKEY_LEN], const uint8_t *pt,
                  size_t len, struct en_err *e);
/* Derives kg's context keys from kg->secret (call once the secret is set;
 * until then the functions below derive per blob). Failure is internal. */
int en_derive_keys(struct keygen_data *kg, struct en_err *e);
/* Session-decrypts blob (context ctx) with kg's session secret into out
 * (cap bytes); decrypt_failed naming what. */
int en_open(uint8_t *out, size_t cap, size_t *len, const struct keygen_data *kg, const char *ctx,
            const struct proto_blob *blob, struct en_err *e, const char *what);
/* Like en_open for a large plaintext: *out is malloc'd (caller frees). */
int en_open_alloc(uint8_t **out, size_t *len, size_t max, const struct keygen_data *kg,
                  const char *ctx, const struct proto_blob *blob, struct en_err *e,
                  const char *what);
/* Session-encrypts pt under ctx with kg's session secret into *out (new
 * blob). */
int en_seal(struct proto_blob *out, const struct keygen_data *kg, const char *ctx,
            const uint8_t *pt, size_t len, struct en_err *e);
/* Encodes obj with schema s and seals the JSON. */
int en_seal_json(struct proto_blob *out, const struct keygen_data *kg, const char *ctx,
                 const struct proto_schema *s, const void *obj, struct en_err *e);
/* Decrypts and parses a sealed tweak ("taproot_tweak" context). A tweak
 * that does not decrypt or parse is an error, never "none". */
int en_open_tweak(struct proto_tweak *out, const struct keygen_data *kg,
                  const struct proto_blob *blob, struct en_err *e, const char *what);
/* Applies a tweak (docs/PROTOCOL.md "Tweak JSON") to ka. */
int en_apply_tweak(struct musig_keyagg *ka, const struct proto_tweak *t, struct en_err *e);
/* Sums compressed points into out (an "and" adaptor point). */
int en_point_sum(uint8_t out[PROTO_PUBKEY_LEN], const uint8_t (*points)[PROTO_PUBKEY_LEN], size_t n,
                 struct en_err *e);
/* Checks a compressed point. */
bool en_point_valid(const uint8_t p[PROTO_PUBKEY_LEN]);
/* aggregate_check over the keygen's aggregate and subset keys. */
int en_aggregate_check(struct keygen_data *kg, struct en_err *e);

#endif /* KM_ENCLAVE_INTERNAL_H */
