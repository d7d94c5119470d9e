/*
 * store.h - the enclave's session store: keygen and signing sessions by id,
 * with per-session turns, reference counts, limits and expiry.
 *
 * Concurrency model (docs/ARCHITECTURE.md "Enclave"):
 *  - One mutex guards the maps, reference counts, turns, expiry times and
 *    the `removed` flags. It is never held while a command runs.
 *  - Commands of one session run one at a time, in arrival order: a command
 *    takes a ticket when it looks the session up (store_acquire) and waits
 *    for its turn (store_turn_wait) before touching the session's data;
 *    store_turn_end passes the turn on. Different sessions run in parallel.
 *  - Session data is freed, and its secrets wiped, by the session's destroy
 *    callback when the session has been removed (clear_session, expiry,
 *    shutdown) and the last reference is released. Removal marks the session
 *    so that no new command finds it and waiting commands see it gone; a
 *    command already running finishes on intact data. Removing a keygen
 *    session also removes its signing sessions, which hold references to it.
 *  - A signing session reads its keygen session's data without the keygen's
 *    turn: a keygen session's data never changes once `completed`.
 *
 * Time: functions that compare with expiry times take now_ms (monotonic
 * milliseconds, clock_now_ms()) so tests can drive the clock.
 */
#ifndef KM_ENCLAVE_STORE_H
#define KM_ENCLAVE_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/uuid.h"

enum session_kind {
    SESSION_KEYGEN = 0,
    SESSION_SIGNING = 1,
};

#define STORE_NEVER UINT64_MAX

struct session {
    struct uuid id;
    enum session_kind kind;
    struct uuid keygen_id;       /* signing: its keygen session; keygen: its own id */
    int state;                   /* kind-specific; written with store_set_state */
    void *data;                  /* owned: freed by destroy */
    void (*destroy)(void *data); /* wipes and frees data; called without locks */

    /* Under the store lock. */
    uint64_t expires_ms; /* STORE_NEVER: no expiry */
    bool evictable;      /* may be removed to make room (a completed keygen) */
    uint64_t last_used_ms;
    unsigned refs; /* the map's, plus one per acquirer */
    bool removed;
    uint64_t next_ticket, serving;
    pthread_cond_t turn;
    struct session *hnext; /* hash chain */
};

struct store;

/* Creates a store holding at most max_sessions sessions (both kinds). */
struct store *store_new(size_t max_sessions);

/* Called for each removed session, without locks held. */
typedef void (*store_removed_fn)(void *ud, const struct session *s);

/*
 * Lets store_insert make room in a full store: it then removes the least
 * recently used evictable session that nothing holds (no command running,
 * no signing session referring to it), telling cb. A completed keygen is
 * evictable: the gateway restores it from its stored ciphertexts on demand
 * (keygen_restore), so enclave memory bounds the sessions live at once, not
 * the number of keygens a deployment holds.
 */
void store_set_evict_callback(struct store *st, store_removed_fn cb, void *ud);

/* Marks s evictable (or not). */
void store_set_evictable(struct store *st, struct session *s, bool evictable);

/* Removes every session (wiping its data) and frees the store. No command
 * may be running. NULL is a no-op. */
void store_free(struct store *st);

/*
 * Allocates a session shell that owns data (destroy(data) frees it). The
 * caller fills state; it is not in the store until store_insert.
 */
struct session *session_new(enum session_kind kind, const struct uuid *id,
                            const struct uuid *keygen_id, void *data, void (*destroy)(void *data));

/* Destroys a session that was never inserted (wipes its data). */
void session_discard(struct session *s);

/*
 * Inserts s, expiring at expires_ms. For a signing session, parent is its
 * acquired keygen session: the insert fails if the keygen was removed in
 * the meantime. On success the store owns s (the caller has no reference).
 * Returns: KM_OK; KM_ERR_EXISTS (a live session with this id and kind:
 *          *existing_state is its state); KM_ERR_LIMIT (store full and
 *          nothing evictable);
 *          KM_ERR_NOT_FOUND (parent was removed). On error the caller still
 *          owns s.
 */
int store_insert(struct store *st, struct session *s, const struct session *parent,
                 uint64_t expires_ms, uint64_t now_ms, int *existing_state) KM_WUR;

/*
 * Looks a live (not removed, not expired at now_ms) session up, takes a
 * reference and a ticket, and marks it used at now_ms (eviction order). Returns NULL if there is
 * none. The caller must store_turn_wait(s, *ticket) before touching s->data or s->state (even just
 * to give up: then store_turn_end), and store_release() at the end.
 */
struct session *store_acquire(struct store *st, enum session_kind kind, const struct uuid *id,
                              uint64_t now_ms, uint64_t *ticket);

/* Waits until it is ticket's turn on s. Returns false if s was removed
 * while waiting (the caller still holds the turn and must end it). */
bool store_turn_wait(struct store *st, struct session *s, uint64_t ticket);

/* Passes the turn to the next command of s. */
void store_turn_end(struct store *st, struct session *s);

/* Drops a reference; the last one of a removed session destroys it. */
void store_release(struct store *st, struct session *s);

/* Sets s's state. Only the command holding the turn changes it; the store
 * lock makes it readable by store_insert (an "exists in state X" error). */
void store_set_state(struct store *st, struct session *s, int state);

/* Sets s's expiry (e.g. STORE_NEVER when a keygen completes). */
void store_set_expiry(struct store *st, struct session *s, uint64_t expires_ms);

/*
 * Removes s (and, for a keygen session, its signing sessions). Returns true
 * if s was still in the store. cb (may be NULL) is told about each session
 * removed.
 */
bool store_remove(struct store *st, struct session *s, store_removed_fn cb, void *ud);

/* Removes every session expired at now_ms (and the signing sessions of an
 * expired keygen). Returns how many were removed. */
size_t store_reap(struct store *st, uint64_t now_ms, store_removed_fn cb, void *ud);

/* Live sessions of each kind. */
void store_counts(struct store *st, uint32_t *keygen, uint32_t *signing);

#endif /* KM_ENCLAVE_STORE_H */
