/*
 * replay.h - the replay cache of request authentication (auth.h): every
 * (auth key, nonce) pair a validly signed request used is refused for the
 * rest of its window, across restarts too.
 *
 * A claim is decided against the pairs held in memory and those already in
 * the database (a read), and costs the request no database write: a
 * background thread records new pairs in one transaction per batch, at the
 * latest GW_REPLAY_FLUSH_MS after the first one (at once when
 * GW_REPLAY_BATCH are waiting). Writers take turns on the database, so one
 * commit per batch instead of one per request matters under load.
 *
 * The price: a gateway that crashes (a clean stop records everything)
 * forgets the pairs of its last GW_REPLAY_FLUSH_MS. Replaying such a request
 * gains nothing: a create or initialize is refused by its id or state, an
 * approval or registration repeats the same data, a read reads.
 *
 * Several gateways on one PostgreSQL database (store_shared): each claim
 * is one insert that the database's key decides (store_auth_nonce_claim),
 * so a request replayed to another gateway is refused too.
 *
 * Thread-safe.
 */
#ifndef KM_GATEWAY_REPLAY_H
#define KM_GATEWAY_REPLAY_H

#include <stdint.h>

#include "common/err.h"
#include "store/store.h"

#define GW_REPLAY_FLUSH_MS 20
#define GW_REPLAY_BATCH    256
/* Pairs held in memory at most (a database that keeps failing): beyond,
 * claims fail with KM_ERR_LIMIT rather than growing without bound. */
#define GW_REPLAY_MAX_PENDING 65536

struct gw_replay;

/* Starts the recording thread. */
struct gw_replay *gw_replay_new(struct store *store);

/* Records what is pending, stops the thread and frees. NULL is a no-op. */
void gw_replay_free(struct gw_replay *r);

/*
 * Claims (key_hex, nonce_hex) until expires_at (Unix seconds). KM_OK the
 * first time; KM_ERR_EXISTS for a pair seen before; KM_ERR_INVALID if a
 * string is longer than store_auth_nonce holds; KM_ERR_LIMIT when too many
 * pairs wait to be recorded; a store error if the lookup fails.
 */
int gw_replay_claim(struct gw_replay *r, const char *key_hex, const char *nonce_hex,
                    int64_t expires_at) KM_WUR;

/* Test hook: a pause between a claim's in-memory mark and its database
 * check (0 in the product), to prove that a batch recorded meanwhile does
 * not make a fresh request look like a replay. */
extern uint32_t gw_replay_test_delay_ms;

#endif /* KM_GATEWAY_REPLAY_H */
