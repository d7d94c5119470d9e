/*
 * coord_internal.h - shared by coordinator.c and the step files
 * (coord_keygen.c, coord_signing.c); not an API.
 */
#ifndef KM_GATEWAY_COORD_INTERNAL_H
#define KM_GATEWAY_COORD_INTERNAL_H

#include <pthread.h>

#include "gateway/coordinator.h"
#include "gateway/fanout.h"
#include "protocol/commands.h"

#define COORD_GEN_BUCKETS 256
/* Back-off step for a session that could not be read (the database is
 * down): coord_backoff_at(c, 3) = 1.6 s. */
#define COORD_DB_RETRY_ATTEMPTS 3
#define COORD_ERR_MAX           1024

struct coord_item {
    enum coord_kind kind;
    char id[37];
    uint64_t due_ms; /* monotonic; 0 = now */
    bool running;
    bool again;          /* woken while running */
    bool parked;         /* waits for room on an enclave (coord_claim_enclaves) */
    uint64_t parked_seq; /* order of parking: the oldest is woken first */
    bool resumed;        /* queued by resume_kind / take_over_kind */
};

/* How many steps wait on one enclave now (coord_claim_enclaves). */
struct coord_enclave_load {
    uint32_t id;
    unsigned busy;
};

/* Long-poll waiters of the sessions whose ids hash to one bucket: a change
 * wakes only them, not every waiter of the gateway. */
struct coord_gen_bucket {
    uint64_t gen;
    pthread_cond_t changed;
};

struct coord {
    const struct cfg *cfg;
    struct store *store;
    struct enclave_mgr *em;
    unsigned max_attempts;
    uint32_t call_timeout_ms;

    pthread_mutex_t lock;
    pthread_cond_t work;  /* an item became due, or stopping (workers only) */
    pthread_cond_t sweep; /* wakes the expiry sweeper to stop */
    struct coord_item *items;
    size_t nitems, capitems;
    bool stopping;
    /* Change generations for long polls, under their own lock so waking a
     * poller never contends with the work queue. */
    pthread_mutex_t gen_lock;
    struct coord_gen_bucket gens[COORD_GEN_BUCKETS];
    bool gens_stopping;
    pthread_t *workers;
    unsigned nworkers;
    pthread_t sweeper;
    bool started;
    struct coord_stats stats;
    /* Per-enclave room, under lock: one entry per configured enclave. */
    struct coord_enclave_load *loads;
    size_t nloads;
    unsigned per_enclave_cap;
    uint64_t park_seq;
    /* Several gateways on one database (store_shared): this gateway's
     * instance id owns the leases it claims for lease_secs. */
    bool shared;
    char owner[STORE_OWNER_MAX + 1]; /* host:port */
    uint32_t lease_secs;
    /* Pre-generated nonces (coord_pool.c); NULL with nonce_pool_size 0. */
    struct coord_pool *pool;
};

/* What one attempt at a session's next step did. */
enum step_result {
    STEP_IDLE,     /* nothing to do now (terminal, or waiting for clients) */
    STEP_ADVANCED, /* a step committed: run the next one */
    STEP_RETRY,    /* a retryable failure was recorded: run again at *retry_at */
    STEP_WAIT,     /* no room on one of its enclaves: run again when a step there ends */
};

/* Advance one session (coord_keygen.c / coord_signing.c): the keygen by
 * one step, a signing through every step it can run now. */
enum step_result coord_keygen_step(struct coord *c, const char *id, uint64_t *retry_at_ms);

/* resumed: the session was queued by a start-up resume or a takeover, not
 * by its creation here (coord_signing.c: such a signing never uses pool
 * nonces). */
enum step_result coord_signing_step(struct coord *c, const char *id, bool resumed,
                                    uint64_t *retry_at_ms);

/* How a fan-out went. */
enum calls_verdict {
    CALLS_OK,
    CALLS_RETRY, /* transport failure or "busy": worth another attempt */
    CALLS_FAIL,  /* an enclave rejected the command: final */
    CALLS_WAIT,  /* an enclave has no room now: not an attempt (coord_claim_enclaves) */
};

/*
 * Head-of-line protection. A step holds a claim on each enclave it talks
 * to while it runs. At most per_enclave_cap steps (half the workers unless
 * coordinator.max_sessions_per_enclave says otherwise) hold one enclave, so
 * an enclave that stops answering pins at most that many workers, each
 * for one request deadline, and sessions on the other enclaves keep the
 * rest. Once the enclave is marked unresponsive (enclave_mgr_unresponsive)
 * only one step at a time may wait on it, to find out when it answers
 * again; the others fail their attempt at once with its last error
 * (CALLS_RETRY: counted, retried with back-off). A full, responsive enclave
 * gives CALLS_WAIT: the session is parked without an attempt and woken
 * when a claim ends.
 */
enum calls_verdict coord_claim_enclaves(struct coord *c, const uint32_t *ids, size_t n, char *err,
                                        size_t errcap);
void coord_release_enclaves(struct coord *c, const uint32_t *ids, size_t n);

/* Restores completed keygen keygen_id into enclave eid, which no longer
 * holds it (restart with a sealed key, or eviction): re-sends its part of
 * the keygen steps and checks the aggregate key (coord_keygen.c). CALLS_OK
 * also when the enclave still held it; otherwise err says why. */
enum calls_verdict coord_keygen_restore(struct coord *c, const char *keygen_id, uint32_t eid,
                                        char *err, size_t errcap);

/* Classifies finished calls; on failure writes a message naming the
 * enclave, the command and the cause (with the seed's hint) to err. */
enum calls_verdict coord_calls_verdict(struct coord *c, const struct fanout_call *calls, size_t n,
                                       char *err, size_t errcap);

/* Back-off before attempt `attempts` + 1 (monotonic ms deadline), and that
 * moment as wall-clock seconds (what the store records). */
uint64_t coord_backoff_at(const struct coord *c, int attempts);
int64_t coord_wall_secs(uint64_t monotonic_ms);

/* Counting helpers (take the lock). */
void coord_count_step(struct coord *c, bool retried);
void coord_count_end(struct coord *c, enum coord_kind kind, bool completed, bool expired);

/* Hex <-> blob for ciphertexts kept as hex in the store. */
int coord_blob_from_hex(struct proto_blob *out, const char *hex) KM_WUR;
int coord_bytes_from_hex(uint8_t *out, size_t len, const char *hex) KM_WUR;
char *coord_hex(const uint8_t *p, size_t len); /* malloc'd */

/* The distinct enclaves of a keygen's participants, ascending (at most
 * PROTO_MAX_ENCLAVES: KM_ERR_LIMIT beyond). */
int coord_session_enclaves(const struct store_keygen *k, uint32_t *out, size_t *n) KM_WUR;

/* The key (hex) the session recorded for an enclave at reserve, or NULL. */
const char *coord_snapshot_key(const struct store_keygen *k, uint32_t eid);

/*
 * The keys the clients encrypted to must still be the enclaves' keys: a
 * different key means the enclave restarted and lost the session
 * (CALLS_FAIL); an unknown key means it has not been reached yet
 * (CALLS_RETRY).
 */
enum calls_verdict coord_check_keys(struct coord *c, const struct store_keygen *k,
                                    const uint32_t *enclaves, size_t n, char *err, size_t errcap);

/* "<id>" keys of a JSON object for an enclave id. */
void coord_eid_key(char out[16], uint32_t enclave_id);

/* ---- Pre-generated nonces (coord_pool.c) ---- */

/* One pool entry of one enclave: its id and each local participant's
 * sealed public nonce ("encrypted_nonce"), as nonce_pool_fill returned it. */
struct coord_pool_entry {
    uint8_t id[PROTO_POOL_ENTRY_ID_LEN];
    size_t n_nonces;
    struct proto_user_blob *nonces;
    uint64_t expires_ms; /* monotonic: not used after this */
};

struct coord_pool_stats {
    uint64_t claims; /* signings that took entries */
    uint64_t misses; /* signings that found too little stock */
    uint64_t drops;  /* stocks dropped after nonce_unavailable */
    uint64_t filled; /* entries received */
};

struct coord_pool *coord_pool_new(unsigned target);
void coord_pool_free(struct coord_pool *p);
void coord_pool_entry_clear(struct coord_pool_entry *e);

/* Claims (removes) units entries from the stock of each of enclaves[0..n)
 * for keygen, all or none: out[i * units + u] is enclave i's entry for
 * unit u. false (nothing claimed) when one enclave has too few. */
bool coord_pool_claim(struct coord_pool *p, const char *keygen, const uint32_t *enclaves, size_t n,
                      size_t units, struct coord_pool_entry *out);

/* Drops keygen's stock on enclave eid (its entries are gone there), or
 * every stock on eid (it restarted). */
void coord_pool_drop(struct coord_pool *p, const char *keygen, uint32_t eid);
void coord_pool_drop_enclave(struct coord_pool *p, uint32_t eid);

/* Tops up every enclave of the keygen whose stock is below half the
 * target (one nonce_pool_fill each, at most one fill per keygen at a
 * time); called after a signing of the keygen, off its critical path. */
void coord_pool_refill(struct coord *c, const char *keygen, const uint32_t *enclaves, size_t n);

/* Counters (not in /metrics yet). */
void coord_pool_stats(struct coord_pool *p, struct coord_pool_stats *out);

#endif /* KM_GATEWAY_COORD_INTERNAL_H */
