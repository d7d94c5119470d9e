/*
 * idem.h - the enclave's reply cache, keyed by command_id: every command
 * runs at most once, and a repeated command_id gets the first reply again
 * (docs/PROTOCOL.md "Conventions").
 *
 *  - idem_begin() either hands the command to the caller to run
 *    (IDEM_RUN: the caller must then call idem_finish), or returns the
 *    cached reply (IDEM_DONE). A duplicate that arrives while the first is
 *    still running waits for it (up to wait_ms, then IDEM_BUSY: retryable).
 *  - Each entry remembers a digest of the command name and arguments; the
 *    same command_id with other arguments is IDEM_CONFLICT.
 *  - Bounded: at most max_entries finished entries and max_bytes of cached
 *    replies; the oldest finished entries are evicted first. Running
 *    entries are never evicted (at most one per worker thread).
 *  - Entries name their session (and its keygen session), so clearing or
 *    expiring a session drops its entries (idem_drop_session).
 *
 * Replies hold no secret: results are ciphertexts or public values, error
 * messages never contain secrets. Thread-safe.
 */
#ifndef KM_ENCLAVE_IDEM_H
#define KM_ENCLAVE_IDEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/uuid.h"
#include "protocol/envelope.h"

#define IDEM_DIGEST_LEN 32

enum idem_status {
    IDEM_RUN = 0,  /* not seen before: run it, then idem_finish */
    IDEM_DONE,     /* *reply holds the cached reply */
    IDEM_CONFLICT, /* command_id already used with other arguments */
    IDEM_BUSY,     /* the first instance is still running after wait_ms */
};

/* A reply as cached: the result (ok) or the error. The result is held by
 * reference, not copied or dumped to text: nobody modifies a result once
 * its handler returned (the transport only encodes it), and jansson's
 * reference counts are atomic, so one object can be handed to any number
 * of replays. */
struct idem_reply {
    bool ok;
    json_t *result; /* one reference, when ok */
    struct env_error error;
};

struct idem;

struct idem *idem_new(size_t max_entries, size_t max_bytes);
void idem_free(struct idem *c);

/*
 * Looks command_id up. digest identifies the command and its arguments
 * (idem_digest). On IDEM_DONE *reply is filled (idem_reply_clear it).
 */
enum idem_status idem_begin(struct idem *c, const struct uuid *command_id,
                            const uint8_t digest[IDEM_DIGEST_LEN], uint32_t wait_ms,
                            struct idem_reply *reply);

/*
 * Records the reply of a command started with IDEM_RUN. session and keygen
 * (either may be NULL) name the sessions it belongs to. With cache false
 * (a retryable failure) the entry is dropped, so a retry runs again. The
 * cache takes its own reference to the result.
 */
void idem_finish(struct idem *c, const struct uuid *command_id, const struct uuid *session,
                 const struct uuid *keygen, const struct idem_reply *reply, bool cache);

/* Drops the finished entries of session id (as session or keygen). */
void idem_drop_session(struct idem *c, const struct uuid *id);

/* A tagged SHA-256 of cmd and args, with the object keys in sorted order
 * (so it does not depend on key order); stable within one process. */
void idem_digest(uint8_t out[IDEM_DIGEST_LEN], const char *cmd, const json_t *args);

void idem_reply_clear(struct idem_reply *r);

/* Finished entries held (for tests and stats). */
size_t idem_count(struct idem *c);

#endif /* KM_ENCLAVE_IDEM_H */
