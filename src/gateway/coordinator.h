/*
 * coordinator.h - drives keygen and signing sessions across the enclaves.
 *
 * Event-driven: a session is queued the moment its inputs are complete
 * (last participant registered, last approval given, session created, or
 * the previous step committed) and a worker runs its next step at once;
 * there is no polling tick. Each step is one parallel fan-out to the
 * enclaves followed by one SQLite transaction that records its outputs
 * (ciphertext only) and the next step, compare-and-set on the step number.
 *
 * Crash safety: the database says which step comes next; on start-up every
 * running session is queued again. A step re-run sends the same command ids
 * (fanout_command_id), so enclaves that already executed it answer from
 * their reply cache.
 *
 * Failures: transport errors and "busy" replies are retried with
 * exponential back-off up to coordinator.max_retries attempts per step,
 * then the session fails; any other error reply fails the session at once.
 * A failed session's error is readable in its status. Unfinished sessions
 * past expires_at fail as expired; completed keygens never expire.
 *
 * Isolation: a step claims each enclave it talks to; a hung enclave holds
 * at most coordinator.max_sessions_per_enclave workers, and once marked
 * unresponsive only one (coord_internal.h, coord_claim_enclaves).
 *
 * Long polling: status endpoints wait on coord_wait() until the session
 * changes or the timeout passes.
 */
#ifndef KM_GATEWAY_COORDINATOR_H
#define KM_GATEWAY_COORDINATOR_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "config/config.h"
#include "gateway/enclaves.h"
#include "store/store.h"

enum coord_kind {
    COORD_KEYGEN,
    COORD_SIGNING,
};

struct coord_stats {
    uint64_t steps_ok;
    uint64_t steps_retried;
    uint64_t sessions_completed[2]; /* by kind */
    uint64_t sessions_failed[2];
    uint64_t sessions_expired[2];
    unsigned queued;
    unsigned running;
    /* Nonce pools (coord_pool.c; zero when coordinator.nonce_pool_size is 0). */
    uint64_t pool_signings; /* plain signings that took pool entries (two rounds) */
    uint64_t pool_misses;   /* plain signings that found too little stock */
    uint64_t pool_drops;    /* stocks dropped after nonce_unavailable */
    uint64_t pool_filled;   /* entries received from nonce_pool_fill */
};

struct coord;

struct coord *coord_new(const struct cfg *cfg, struct store *store, struct enclave_mgr *em);

/* Queues every running session found in the store, then starts the
 * workers and the expiry sweeper. */
void coord_start(struct coord *c);

/* Stops taking work, lets running steps finish, joins the threads, frees. */
void coord_free(struct coord *c);

/* Queues a session to be advanced now. Idempotent while queued; a wake
 * during a run makes the worker look again afterwards. */
void coord_wake(struct coord *c, enum coord_kind kind, const char *id);

/* Marks a session as changed: wakes its long-poll waiters. */
void coord_changed(struct coord *c, const char *id);

/* The session's change generation, and a wait until it differs from seen
 * or timeout_ms passes. Returns true if it changed. */
uint64_t coord_generation(struct coord *c, const char *id);
bool coord_wait(struct coord *c, const char *id, uint64_t seen, uint32_t timeout_ms);

/*
 * The JSON documents the store keeps as text (a session's state, subsets,
 * items, results: store/store.h). coord_doc_load parses one: NULL for
 * NULL or malformed text (as an absent document). coord_doc_dump writes
 * one as the gateway has always stored them (compact, keys in insertion
 * order): malloc'd, NULL for a NULL doc or one that cannot be written (a
 * doc must be an object or array).
 */
json_t *coord_doc_load(const char *text);
char *coord_doc_dump(const json_t *doc);

/* Called by the enclave manager when an enclave restarted: its sessions
 * have been failed in the store; wake their waiters. */
void coord_enclave_restarted(struct coord *c, uint32_t enclave_id);

void coord_stats(struct coord *c, struct coord_stats *out);

#endif /* KM_GATEWAY_COORDINATOR_H */
